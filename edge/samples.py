"""Which frames are worth a person's label: those the model is unsure of, and a random share of the
rest that grows while the labels the device predicts drift from the ones it was trained on; never
a near-copy of a recent sample, and at most N a minute per device.

A bare top-1 threshold misses most mistakes in a shifted field (there, 82% of the wrong answers
scored 0.5 or more): the margin between the two best labels, or the entropy, also catches a model
that is sure of the wrong one of two, and the drift-driven random share finds the rest."""

from __future__ import annotations

import random
import time

import numpy as np

from edge.config import UNCERTAINTY_THRESHOLDS, EdgeConfig
from edge.label_drift import LabelDrift
from edge.near_duplicates import NearDuplicates, signature


def confidence(probabilities: np.ndarray, by: str) -> float:
    """How sure the model is, on one scale (0-1) for every measure: the top-1 score ("top1"), the top-1
    minus the top-2 score ("margin"), or 1 minus the entropy divided by its most, log(labels) ("entropy")."""
    p = np.asarray(probabilities, np.float64)
    if by == "top1":
        return float(p.max())
    if len(p) < 2:
        return 1.0
    if by == "margin":
        second, first = np.partition(p, -2)[-2:]
        return float(first - second)
    q = np.clip(p, 1e-12, 1.0)
    return float(1.0 + (q * np.log(q)).sum() / np.log(len(p)))


class Sampler:
    def __init__(
        self,
        *,
        per_minute: int,
        uncertainty: str,
        threshold: float,
        random_share: float,
        random_max: float,
        drift: LabelDrift,
        duplicates: NearDuplicates,
        seed: int | None = None,
    ) -> None:
        self.per_minute = per_minute
        self.uncertainty = uncertainty
        self.threshold = threshold
        self.random_share = random_share
        self.random_max = max(random_max, random_share)
        self.drift = drift
        self.duplicates = duplicates
        self._rng = random.Random(seed)
        self._tokens = float(per_minute)
        self._last = time.monotonic()
        self.counts = {"low_confidence": 0, "random": 0, "drift": 0, "rate_limited": 0, "near_duplicate": 0}

    @classmethod
    def of(cls, cfg: EdgeConfig, seed: int | None = None) -> Sampler:
        threshold = cfg.sample_threshold
        return cls(
            per_minute=cfg.samples_per_minute,
            uncertainty=cfg.sample_uncertainty,
            threshold=UNCERTAINTY_THRESHOLDS[cfg.sample_uncertainty] if threshold is None else threshold,
            random_share=cfg.sample_random_share,
            random_max=cfg.sample_random_max,
            drift=LabelDrift(cfg.sample_drift_frames, cfg.sample_drift_floor, cfg.sample_drift_ceiling),
            duplicates=NearDuplicates(cfg.sample_duplicate_distance, cfg.sample_duplicate_memory),
            seed=seed,
        )

    def expect(self, labels: list[str], per_label: dict[str, int]) -> None:
        """A model trained on `per_label` images of each of its `labels` runs now: measure drift from them."""
        self.drift.expect(labels, per_label)

    def observe(self, probabilities: np.ndarray) -> None:
        """Every classified frame, published or not: the histogram of predicted labels."""
        self.drift.observe(probabilities)

    def share(self) -> float:
        """The random share now: the base, up to `random_max` as the labels drift."""
        return self.random_share + (self.random_max - self.random_share) * self.drift.level()

    def pick(self, probabilities: np.ndarray, image: np.ndarray) -> str | None:
        """The reason to send this frame as a sample, or None."""
        reason = self._reason(probabilities)
        if reason is None:
            return None
        sig = signature(image)
        if self.duplicates.seen(sig):
            self.counts["near_duplicate"] += 1
            return None
        self._refill()
        if self._tokens < 1:
            self.counts["rate_limited"] += 1
            return None
        self._tokens -= 1
        self.duplicates.remember(sig)
        self.counts[reason] += 1
        return reason

    def figures(self) -> dict[str, int | float]:
        """For telemetry: samples by reason, frames held back and why, the random share and the drift."""
        distance = self.drift.distance()
        drift = {} if distance is None else {"label_drift": round(distance, 4)}
        return {**self.counts, "random_share": round(self.share(), 5), **drift}

    def _reason(self, probabilities: np.ndarray) -> str | None:
        if confidence(probabilities, self.uncertainty) < self.threshold:
            return "low_confidence"
        draw = self._rng.random()
        if draw < self.random_share:
            return "random"
        if draw < self.share():
            return "drift"
        return None

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.per_minute, self._tokens + (now - self._last) * self.per_minute / 60.0)
        self._last = now
