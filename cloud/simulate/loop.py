"""The loop as the service runs it, in rounds, on images whose labels are known: the promoted model
scores the unlabelled pool, near-duplicates collapse, a strategy picks a round's worth among the
representatives, a person labels them (here: the folder's truth), a candidate is trained on the
seed and the field labels so far, and the gate decides whether it replaces the promoted model.
What counts is the promoted model's accuracy on held-out field images after each round."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from cloud.datasets import FIELD
from cloud.registry.gate import GatePolicy, decide
from cloud.selection.duplicates import collapse
from cloud.selection.strategies import select
from cloud.simulate.features import Data
from cloud.simulate.training import Model, Recipe, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Round:
    labels: int  # field images labelled so far
    field_train: int
    field_test: int
    candidate: float  # the candidate's accuracy on the held-out field images
    promoted: float  # the promoted model's, after the gate
    passed: bool
    rule: str
    p_value: float | None


@dataclass
class Run:
    strategy: str
    seed: int
    seed_only: float  # the first promoted model's field accuracy: trained on the seed alone
    rounds: list[Round] = field(default_factory=list)


def representatives(x: np.ndarray, labelled: list[int], similarity: float) -> np.ndarray:
    """Unlabelled pool images worth a label: each is the first of its near-duplicates, and none
    duplicates an image already labelled."""
    unlabelled = np.setdiff1d(np.arange(len(x)), labelled)
    order = np.concatenate([np.array(labelled, np.int64), unlabelled])
    representative = collapse(x[order], similarity)
    rest = np.arange(len(labelled), len(order))
    return unlabelled[representative[rest] == rest]


def gate_step(
    candidate: Model, promoted: Model, x: np.ndarray, y: np.ndarray, field: np.ndarray, policy: GatePolicy
) -> dict:
    """The service's gate on the current test images (the seed's and the field labels' test split):
    both models on the same images, the field judged first by the paired test."""
    return decide(candidate.correct(x, y), promoted.correct(x, y), field, policy)


class Simulation:
    """One field: the seed, the pool, the held-out field images, and how every candidate is trained."""

    def __init__(self, data: Data, recipe: Recipe, policy: GatePolicy, similarity: float) -> None:
        if data.pool is None or data.eval is None:
            raise ValueError("the loop needs a pool and held-out field images")
        self.seed, self.pool, self.eval = data.seed, data.pool, data.eval
        self.classes = len(data.labels)
        self.recipe, self.policy, self.similarity = recipe, policy, similarity
        self.seed_train, self.seed_test = self.seed.where("train"), self.seed.where("test")

    def _train(self, field_images: np.ndarray, seed: int) -> Model:
        """Seed train images plus these pool images, drawn with the field weight."""
        x = np.concatenate([self.seed.x[self.seed_train], self.pool.x[field_images]])
        y = np.concatenate([self.seed.y[self.seed_train], self.pool.y[field_images]])
        records = [self.seed.records[i] for i in self.seed_train] + [self.pool.records[i] for i in field_images]
        return train(x, y, records, self.classes, self.recipe, seed)

    def _split(self, images: list[int] | np.ndarray, split: str) -> np.ndarray:
        return np.array([i for i in images if self.pool.records[i].split == split], np.int64)

    def field_accuracy(self, model: Model) -> float:
        return model.accuracy(self.eval.x, self.eval.y)

    def base(self, seed: int) -> Model:
        return self._train(np.zeros(0, np.int64), seed)

    def whole_pool(self, seed: int) -> Model:
        """The reference: every pool image labelled, its train split trained on."""
        return self._train(self._split(np.arange(len(self.pool.records)), "train"), seed)

    def _gate(self, candidate: Model, promoted: Model, labelled: list[int]) -> dict:
        field_test = self._split(labelled, "test")
        x = np.concatenate([self.seed.x[self.seed_test], self.pool.x[field_test]])
        y = np.concatenate([self.seed.y[self.seed_test], self.pool.y[field_test]])
        is_field = np.arange(len(y)) >= len(self.seed_test)
        return gate_step(candidate, promoted, x, y, is_field, self.policy)

    def choose(self, strategy: str, k: int, promoted: Model, labelled: list[int], seed: int) -> np.ndarray:
        candidates = representatives(self.pool.x, labelled, self.similarity)
        x = self.pool.x[candidates]
        picked = select(strategy, k, x, promoted.probabilities(x), self.pool.x[labelled], seed)
        return candidates[picked]

    def run(self, strategy: str, base: Model, budget: int, round_size: int, seed: int) -> Run:
        promoted, labelled = base, list[int]()
        run = Run(strategy, seed, self.field_accuracy(base))
        while len(labelled) < budget:
            chosen = self.choose(
                strategy, min(round_size, budget - len(labelled)), promoted, labelled, seed + len(run.rounds)
            )
            if not len(chosen):
                log.info("%s: the pool has nothing left to label after %d labels", strategy, len(labelled))
                break
            labelled.extend(int(i) for i in chosen)
            candidate = self._train(self._split(labelled, "train"), seed)
            verdict = self._gate(candidate, promoted, labelled)
            if verdict["passed"]:
                promoted = candidate
            run.rounds.append(
                Round(
                    labels=len(labelled),
                    field_train=len(self._split(labelled, "train")),
                    field_test=len(self._split(labelled, "test")),
                    candidate=self.field_accuracy(candidate),
                    promoted=self.field_accuracy(promoted),
                    passed=verdict["passed"],
                    rule=verdict["rule"],
                    p_value=verdict["slices"][FIELD].get("p_value"),
                )
            )
            log.info("%s seed %d, %d labels: %s", strategy, seed, len(labelled), verdict["why"])
        return run
