"""Progress of the long loops (bottlenecks, training, fine-tuning): tqdm's bar on a terminal; without
one (k8s, a training job's log file), where tqdm switches itself off, an INFO line every ~10%."""

from __future__ import annotations

import logging
import time
from types import TracebackType

from tqdm import tqdm

log = logging.getLogger(__name__)

STEPS = 10  # log lines per loop without a terminal


class Progress:
    def __init__(self, total: int, desc: str, unit: str) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.done = 0
        self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False, disable=None)
        self._logged = 0  # tenths of the total logged so far
        self._start = time.monotonic()
        self._postfix: dict[str, float] = {}

    def set_postfix(self, **values: float) -> None:
        self._postfix = values
        self._bar.set_postfix(values)

    def update(self, n: int = 1) -> None:
        self.done += n
        self._bar.update(n)
        if self._bar.disable and self.total > 0 and self.done * STEPS // self.total > self._logged:
            self._logged = self.done * STEPS // self.total
            self._log()

    def _log(self) -> None:
        elapsed = time.monotonic() - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = f", ~{(self.total - self.done) / rate:.0f} s left" if rate and self.done < self.total else ""
        extra = "".join(f", {k} {v:.3f}" for k, v in self._postfix.items())
        log.info(
            "%s: %d/%d %ss (%d%%), %.1f %ss/s%s%s",
            self.desc, self.done, self.total, self.unit, 100 * self.done // self.total, rate, self.unit, left, extra,
        )  # fmt: skip

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._bar.close()
