"""How far the labels a device predicts have moved from the ones its model was trained on: an
exponential moving histogram of its top-1 labels over about `frames` frames, compared with the
training images' labels (model.json `images.per_label`) by total variation distance. A bundle
without `per_label` (older ones) gives no distance."""

from __future__ import annotations

import threading

import numpy as np


class LabelDrift:
    def __init__(self, frames: int, floor: float, ceiling: float) -> None:
        self.alpha = 1.0 / frames
        self.floor = floor
        self.ceiling = ceiling
        self._state: tuple[np.ndarray, np.ndarray] | None = None  # (training, seen)
        self._lock = threading.Lock()  # a swap (the updater's thread) must not be undone by a frame in flight

    def expect(self, labels: list[str], per_label: dict[str, int]) -> None:
        """Compare from now on with a model's training images per label (none: no drift term); the
        histogram starts there, so a new model shows no drift until its own predictions move it."""
        counts = np.array([per_label.get(label, 0) for label in labels], np.float64)
        total = counts.sum()
        with self._lock:
            self._state = (counts / total, counts / total) if total > 0 else None

    @property
    def expected(self) -> np.ndarray | None:
        return None if self._state is None else self._state[0]

    def observe(self, probabilities: np.ndarray) -> None:
        """Count one frame's top-1 label (a frame of a model with another number of labels, the one just
        swapped out, does not count towards the new one)."""
        with self._lock:
            if self._state is None or len(self._state[1]) != len(probabilities):
                return
            training, seen = self._state
            seen = seen * (1 - self.alpha)
            seen[int(np.argmax(probabilities))] += self.alpha
            self._state = (training, seen)

    def distance(self) -> float | None:
        """Total variation distance (0-1) between the moving histogram and the training labels."""
        state = self._state
        return None if state is None else float(np.abs(state[1] - state[0]).sum() / 2)

    def level(self) -> float:
        """0 up to `floor`, 1 from `ceiling`, linear between."""
        distance = self.distance()
        if distance is None:
            return 0.0
        return float(np.clip((distance - self.floor) / (self.ceiling - self.floor), 0.0, 1.0))
