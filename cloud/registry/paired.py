"""Two models on the same images: McNemar's exact test on the images where exactly one of them is
right. Two accuracies side by side cannot tell a real gain from the luck of a small test set; the
paired test counts only the disagreements, which is where the evidence is."""

from __future__ import annotations

from math import comb

import numpy as np


def compare(candidate_correct: np.ndarray, promoted_correct: np.ndarray) -> tuple[int, int, float]:
    """(b, c, p): b images only the candidate gets right, c only the promoted one, and the two-sided
    exact p-value of b against c under "neither model is better" (each disagreement a coin toss)."""
    candidate, promoted = np.asarray(candidate_correct, bool), np.asarray(promoted_correct, bool)
    if candidate.shape != promoted.shape:
        raise ValueError(f"paired results differ in shape: {candidate.shape} vs {promoted.shape}")
    b = int(np.sum(candidate & ~promoted))
    c = int(np.sum(~candidate & promoted))
    n = b + c
    if n == 0:
        return b, c, 1.0
    tail = sum(comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return b, c, min(1.0, 2 * tail)
