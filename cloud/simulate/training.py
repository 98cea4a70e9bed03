"""A training in the simulation is the retrainer's head-only training on cached bottlenecks: the same
new layer, the same plain gradient descent on random batches, the same `--field-weight` draw."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import keras
import numpy as np

from cloud.retrain.dataset import ImageRecord, draw_probabilities
from cloud.retrain.head import Summaries, bottleneck_batches, new_head, train_head

log = logging.getLogger(__name__)

BATCH = 1024


@dataclass(frozen=True)
class Recipe:
    """What a training takes from the options: every candidate of a simulation is trained alike."""

    steps: int
    learning_rate: float
    batch_size: int
    field_weight: float


@dataclass
class Model:
    head: keras.layers.Dense

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        if not len(x):
            return np.zeros((0, int(self.head.units)), np.float32)
        return np.concatenate([np.asarray(self.head(x[i : i + BATCH])) for i in range(0, len(x), BATCH)])

    def correct(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.probabilities(x).argmax(1) == y

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(self.correct(x, y).mean()) if len(y) else 0.0


def train(x: np.ndarray, y: np.ndarray, records: list[ImageRecord], classes: int, recipe: Recipe, seed: int) -> Model:
    """A new head trained on these images (all of them: the caller passes the training split)."""
    everything = np.arange(len(x))
    p = draw_probabilities(records, everything, recipe.field_weight)
    next_batch = bottleneck_batches(x, y.astype(np.int32), everything, recipe.batch_size, p)
    head = new_head(x.shape[1], classes, seed)
    no_validation = (np.zeros((0, x.shape[1]), np.float32), np.zeros(0, np.int32))
    train_head(head, next_batch, no_validation, recipe.steps, recipe.learning_rate, recipe.steps, Summaries(None), seed)
    return Model(head)
