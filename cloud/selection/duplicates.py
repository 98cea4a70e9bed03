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
    kept_index = np.zeros(len(x), np.int64)
    kept = np.empty_like(unit)  # the representatives so far, in rows 0..n-1: a view each time, no copy
    n = 0
    for i in range(len(x)):
        if n:
            scores = kept[:n] @ unit[i]
            best = int(np.argmax(scores))
            if scores[best] >= similarity:
                representative[i] = kept_index[best]
                continue
        kept[n] = unit[i]
        kept_index[n] = i
        n += 1
    return representative
