"""What a simulation found: per strategy, the field accuracy after each round, averaged over its runs,
beside the two lines that frame it (the seed alone, and the whole pool labelled)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cloud.simulate.loop import Run
from cloud.simulate.sizes import Size


@dataclass
class Curve:
    """One strategy's runs (one per repeat seed), read as a learning curve that starts at 0 labels."""

    strategy: str
    runs: list[Run]

    @property
    def _rounds(self) -> int:
        return min(len(r.rounds) for r in self.runs)

    @property
    def labels(self) -> list[int]:
        return [0] + [self.runs[0].rounds[i].labels for i in range(self._rounds)]

    def _mean(self, what: str) -> list[float]:
        start = float(np.mean([r.seed_only for r in self.runs]))
        return [start] + [float(np.mean([getattr(r.rounds[i], what) for r in self.runs])) for i in range(self._rounds)]

    @property
    def promoted(self) -> list[float]:
        return self._mean("promoted")

    @property
    def candidate(self) -> list[float]:
        return self._mean("candidate")

    @property
    def rejected(self) -> int:
        """Candidates the gate turned down, over all runs."""
        return sum(not round_.passed for r in self.runs for round_ in r.rounds)


@dataclass
class LoopResult:
    labels: list[str]
    seed_train: int
    pool_images: int
    representatives: int  # pool images left after near-duplicate collapse, before any label
    eval_images: int
    whole_pool_train: int  # field train images when the whole pool is labelled
    whole_pool: list[float]  # its field accuracy, per repeat
    curves: list[Curve] = field(default_factory=list)

    @property
    def reference(self) -> float:
        return float(np.mean(self.whole_pool))

    def curve(self, strategy: str) -> Curve | None:
        return next((c for c in self.curves if c.strategy == strategy), None)

    def at_budget(self, strategy: str) -> dict[str, float | None]:
        """The strategy's last promoted accuracy, as a share of the whole pool's and against random's."""
        curve = self.curve(strategy)
        if curve is None:
            return {}
        last = curve.promoted[-1]
        random = self.curve("random")
        return {
            "labels": curve.labels[-1],
            "promoted": last,
            "of_whole_pool": last / self.reference if self.reference else None,
            "over_random": last - random.promoted[-1] if random else None,
        }


@dataclass
class SizesResult:
    labels: list[str]
    test_images: int
    sizes: list[Size]
