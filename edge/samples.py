"""Which frames are worth a person's label: those the model was unsure of (top-1 score under a
threshold) and a small random share of the rest, at most N a minute per device."""

from __future__ import annotations

import random
import time


class Sampler:
    def __init__(self, threshold: float, random_share: float, per_minute: int, seed: int | None = None) -> None:
        self.threshold = threshold
        self.random_share = random_share
        self.per_minute = per_minute
        self._rng = random.Random(seed)
        self._tokens = float(per_minute)
        self._last = time.monotonic()
        self.counts = {"low_confidence": 0, "random": 0, "rate_limited": 0}

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.per_minute, self._tokens + (now - self._last) * self.per_minute / 60.0)
        self._last = now

    def pick(self, top_score: float) -> str | None:
        """The reason to send this frame as a sample, or None."""
        if top_score < self.threshold:
            reason = "low_confidence"
        elif self._rng.random() < self.random_share:
            reason = "random"
        else:
            return None
        self._refill()
        if self._tokens < 1:
            self.counts["rate_limited"] += 1
            return None
        self._tokens -= 1
        self.counts[reason] += 1
        return reason
