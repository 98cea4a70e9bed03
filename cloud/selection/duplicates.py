"""Near-duplicate collapse: a camera pointed at one scene sends many frames of it; a person should
label that scene once. Two images are near-duplicates when their embeddings' cosine similarity is at
least a threshold."""

from __future__ import annotations

import numpy as np

DEFAULT_SIMILARITY = 0.95


def collapse(features: np.ndarray, similarity: float = DEFAULT_SIMILARITY) -> np.ndarray:
    """For each image, the index of the image it duplicates (itself for a representative). Images are
    taken in the given order: the first of a group represents it, so pass them in priority order."""
    x = np.asarray(features, np.float64)
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    representative = np.arange(len(x))
    kept: list[int] = []
    for i in range(len(x)):
        if kept:
            scores = unit[kept] @ unit[i]
            best = int(np.argmax(scores))
            if scores[best] >= similarity:
                representative[i] = kept[best]
                continue
        kept.append(i)
    return representative
