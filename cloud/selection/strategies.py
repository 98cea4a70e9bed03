"""Selection strategies: given a pool of unlabelled images (their embeddings and the current model's
probabilities) and the field images already labelled, the order in which to label them.

- `random`: the baseline every other strategy must beat on a learning curve.
- `uncertainty`: smallest margin between the top two labels first. Under a shift a model is often
  confidently wrong, so this alone under-samples its mistakes.
- `diversity`: typical images of the pool's clusters not yet covered by a label (TypiClust,
  Hacohen et al. 2022): k-means over the embeddings, the densest image of each uncovered cluster,
  largest clusters first. Strong with small budgets.
- `hybrid`: BADGE (Ash et al. 2020): k-means++ seeding over gradient embeddings (p - onehot(argmax p))
  ⊗ x, whose length grows with uncertainty and whose direction is the image's content and predicted
  label: uncertain and diverse at once. The default: on simulated fields (`python -m cloud
  simulate-loop`, docs/field-loop.md) it is the only strategy ahead of random at 250 labels."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)

STRATEGIES = ("random", "uncertainty", "diversity", "hybrid")
DEFAULT_STRATEGY = "hybrid"
KMEANS_ITERATIONS = 10
DENSITY_NEIGHBOURS = 20


def margin(probabilities: np.ndarray) -> np.ndarray:
    """Top-1 less top-2 probability per image: 0 is a coin toss, 1 is certainty."""
    if probabilities.shape[1] < 2:
        return np.ones(len(probabilities))
    top = np.sort(probabilities, axis=1)
    return top[:, -1] - top[:, -2]


def _squared_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d = (x * x).sum(1)[:, None] - 2 * x @ centres.T + (centres * centres).sum(1)[None, :]
    return np.maximum(d, 0.0)


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator, start: np.ndarray | None = None) -> list[int]:
    """k-means++ seeding: each next point drawn with probability proportional to its squared distance
    from the points chosen so far (and from `start`, points already labelled)."""
    n = len(x)
    chosen: list[int] = []
    nearest = _squared_distances(x, start).min(1) if start is not None and len(start) else None
    if nearest is None:
        first = int(np.argmax((x * x).sum(1)))  # BADGE starts from the largest gradient: the most uncertain
        chosen.append(first)
        nearest = _squared_distances(x, x[[first]])[:, 0]
    while len(chosen) < min(k, n):
        total = nearest.sum()
        if total <= 0:  # every remaining point coincides with a chosen one
            rest = np.setdiff1d(np.arange(n), chosen)
            chosen.extend(int(i) for i in rng.permutation(rest)[: k - len(chosen)])
            break
        pick = int(rng.choice(n, p=nearest / total))
        chosen.append(pick)
        nearest = np.minimum(nearest, _squared_distances(x, x[[pick]])[:, 0])
    return chosen


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Lloyd's iterations from a k-means++ start; the cluster of each point."""
    centres = x[_kmeans_pp(x, k, rng)]
    assign = np.zeros(len(x), np.int64)
    for _ in range(KMEANS_ITERATIONS):
        assign = _squared_distances(x, centres).argmin(1)
        for c in range(len(centres)):
            members = x[assign == c]
            if len(members):
                centres[c] = members.mean(0)
    return assign


def _typicality(x: np.ndarray) -> np.ndarray:
    """Inverse mean distance to the nearest neighbours: high in the dense middle of a cluster."""
    if len(x) < 2:
        return np.ones(len(x))
    d = np.sqrt(_squared_distances(x, x))
    k = min(DENSITY_NEIGHBOURS, len(x) - 1)
    nearest = np.sort(d, axis=1)[:, 1 : k + 1]
    return 1.0 / (nearest.mean(1) + 1e-9)


def _random(k: int, x: np.ndarray, p: np.ndarray, labelled: np.ndarray, rng: np.random.Generator) -> list[int]:
    return [int(i) for i in rng.permutation(len(x))[:k]]


def _uncertainty(k: int, x: np.ndarray, p: np.ndarray, labelled: np.ndarray, rng: np.random.Generator) -> list[int]:
    return [int(i) for i in np.argsort(margin(p), kind="stable")[:k]]


def _diversity(k: int, x: np.ndarray, p: np.ndarray, labelled: np.ndarray, rng: np.random.Generator) -> list[int]:
    both = np.concatenate([x, labelled]) if len(labelled) else x
    clusters = _kmeans(both, min(len(both), len(labelled) + k), rng)
    pool_clusters, covered = clusters[: len(x)], set(clusters[len(x) :].tolist())
    sizes = np.bincount(pool_clusters, minlength=clusters.max() + 1)
    chosen: list[int] = []
    for c in np.argsort(-sizes, kind="stable"):
        members = np.flatnonzero(pool_clusters == c)
        if c in covered or not len(members):
            continue
        chosen.append(int(members[np.argmax(_typicality(x[members]))]))
        if len(chosen) == k:
            return chosen
    rest = np.setdiff1d(np.arange(len(x)), chosen)  # fewer uncovered clusters than k: fill by uncertainty
    return chosen + [int(rest[i]) for i in _uncertainty(k - len(chosen), x[rest], p[rest], labelled, rng)]


def gradient_embedding(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """BADGE's embedding: the softmax layer's loss gradient if the predicted label were the truth."""
    onehot = np.zeros_like(p)
    onehot[np.arange(len(p)), p.argmax(1)] = 1.0
    return ((p - onehot)[:, :, None] * x[:, None, :]).reshape(len(x), -1)


def _hybrid(k: int, x: np.ndarray, p: np.ndarray, labelled: np.ndarray, rng: np.random.Generator) -> list[int]:
    """k-means++ from the origin, as if a centre were there: a confident image's gradient is near zero
    (its label would teach the layer little), so the many confident images are covered from the start
    instead of drawing picks by their number alone."""
    g = gradient_embedding(x, p)
    return _kmeans_pp(g, k, rng, start=np.zeros((1, g.shape[1])))


Strategy = Callable[[int, np.ndarray, np.ndarray, np.ndarray, np.random.Generator], list[int]]
_REGISTRY: dict[str, Strategy] = {
    "random": _random,
    "uncertainty": _uncertainty,
    "diversity": _diversity,
    "hybrid": _hybrid,
}


def select(
    strategy: str,
    k: int,
    features: np.ndarray,
    probabilities: np.ndarray,
    labelled: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Indices of up to `k` pool images, in the order to label them.

    features: [N, D] embeddings of the pool; probabilities: [N, C] from the current model; labelled:
    [M, D] embeddings of the field images already labelled (diversity avoids what they cover)."""
    if strategy not in _REGISTRY:
        raise ValueError(f"unknown selection strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    if len(features) != len(probabilities):
        raise ValueError(f"{len(features)} embeddings but {len(probabilities)} probability rows")
    k = min(k, len(features))
    if k <= 0:
        return np.zeros(0, np.int64)
    x = np.asarray(features, np.float64)
    done = np.zeros((0, x.shape[1])) if labelled is None else np.asarray(labelled, np.float64).reshape(-1, x.shape[1])
    chosen = _REGISTRY[strategy](k, x, np.asarray(probabilities, np.float64), done, np.random.default_rng(seed))
    return np.array(chosen, np.int64)
