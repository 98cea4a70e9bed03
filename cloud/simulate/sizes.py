"""How many images per label does a model need? The seed alone, its training images cut to at most N
per label (the same random N for every size, so a larger set holds the smaller), each trained as
the retrainer would and measured on the seed's test images."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from cloud.simulate.features import Images
from cloud.simulate.training import Recipe, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Size:
    max_per_label: int
    train_images: list[int]  # per repeat: fewer than max x labels where a label has fewer
    accuracy: list[float]  # per repeat, on the seed's test images

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracy))


def _at_most(images: Images, train_split: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """At most `n` training images of each label: a prefix of one shuffled order per label."""
    order = rng.permutation(train_split)
    return np.concatenate([order[images.y[order] == label][:n] for label in np.unique(images.y)])


def curve(images: Images, classes: int, sizes: list[int], recipe: Recipe, seeds: list[int]) -> list[Size]:
    train_split, test = images.where("train"), images.where("test")
    rows: list[Size] = []
    for n in sorted(set(sizes)):
        used, accuracy = [], []
        for seed in seeds:
            chosen = _at_most(images, train_split, n, np.random.default_rng(seed))
            model = train(
                images.x[chosen], images.y[chosen], [images.records[i] for i in chosen], classes, recipe, seed
            )
            used.append(len(chosen))
            accuracy.append(model.accuracy(images.x[test], images.y[test]))
        rows.append(Size(n, used, accuracy))
        log.info("%d images per label (%d in all): test accuracy %.4f", n, used[0], rows[-1].mean)
    return rows
