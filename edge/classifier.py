"""A bundle plus a backend: frames of any size in, top-k labels out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common import images, protocol
from common.bundle import Bundle
from edge import backends


@dataclass(frozen=True)
class Classification:
    """A label and the model's score for it, as the backend gave it (a broken model's may be NaN): the
    pipeline checks it before it becomes the wire's protocol.Score."""

    label: str
    score: float


class Classifier:
    def __init__(self, bundle: Bundle, backend: str = "auto") -> None:
        self.bundle = bundle
        self.backend = backends.create(backend, bundle)
        self.labels = bundle.meta.labels
        self.model_ref = protocol.ModelRef(name=bundle.meta.name, version=bundle.meta.version)
        self.size = (bundle.meta.input.height, bundle.meta.input.width)

    def probabilities(self, frames: list[np.ndarray]) -> np.ndarray:
        """RGB uint8 frames of any size -> [N, labels] probabilities."""
        return self.backend.predict(np.stack([images.fit(f, *self.size) for f in frames]))

    def probabilities_of_files(self, paths: list[Path], batch: int = 32) -> np.ndarray:
        """[N, labels] for image files, read and classified `batch` at a time (an unreadable file raises
        images.ImageError)."""
        rows = [
            self.probabilities([images.read_rgb(p) for p in paths[i : i + batch]]) for i in range(0, len(paths), batch)
        ]
        return np.concatenate(rows) if rows else np.zeros((0, len(self.labels)), np.float32)

    def top_k(self, probabilities: np.ndarray, k: int) -> list[Classification]:
        order = np.argsort(-probabilities, kind="stable")[:k]
        return [Classification(self.labels[i], float(probabilities[i])) for i in order]

    def classify(self, frame: np.ndarray, k: int = 5) -> list[Classification]:
        return self.top_k(self.probabilities([frame])[0], k)
