"""A strategy's order of a pool with near-duplicates collapsed: what a person is offered to label next,
each offer standing for the near-duplicates it hides."""

from __future__ import annotations

import numpy as np

from cloud.selection import duplicates, strategies

ROUNDS = 3  # tries at most: the strategy asked for `want`, then twice and four times as many


def rank(
    strategy: str,
    want: int,
    features: np.ndarray,
    probabilities: np.ndarray,
    labelled: np.ndarray,
    similarity: float = duplicates.DEFAULT_SIMILARITY,
    seed: int = 0,
) -> list[tuple[int, int]]:
    """(pool index, near-duplicates it stands for) of up to `want` distinct images, in the order to
    label them. The pool is given newest first.

    The strategy orders `want` images (its cost grows with how many it is asked for); the rest follow
    newest first; then duplicates collapse onto the first of their group in that order. When the
    strategy's images collapsed onto fewer than `want` while distinct ones remain in the rest, it is
    asked for more; what is still missing after the last round is the rest's distinct images, newest
    first."""
    n = len(features)
    k = min(want, n)
    while True:
        head = strategies.select(strategy, k, features, probabilities, labelled, seed)
        sequence = np.concatenate([head, np.setdiff1d(np.arange(n), head)])
        representative = duplicates.collapse(features[sequence], similarity)
        offered = np.flatnonzero(representative == np.arange(n))
        from_head = int((offered < len(head)).sum())
        if from_head >= want or from_head == len(offered) or k >= n or k >= want << (ROUNDS - 1):
            break
        k = min(n, 2 * k)
    stands_for = np.bincount(representative, minlength=n) - 1
    return [(int(sequence[p]), int(stands_for[p])) for p in offered[:want]]
