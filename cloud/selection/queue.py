"""The labelling queue in a chosen order: each model's newest unlabelled samples (a bounded pool),
ordered by a selection strategy over the embeddings of the base network its promoted version was
trained on and that version's probabilities (the edge's TFLite classifier), near-duplicates
collapsed. A model without a usable promoted version keeps the newest-first order."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cloud.aggregator.writer import sample_path
from cloud.options import DEFAULT_QUEUE_ORDER, DEFAULT_QUEUE_POOL, QueueOrder
from cloud.registry.versions import Registry
from cloud.retrain.errors import RetrainError
from cloud.selection import duplicates
from cloud.selection.embeddings import Embeddings
from cloud.selection.ranking import rank
from cloud.store import Database
from cloud.store import samples as sample_store
from cloud.store.samples import StoredSample
from common import bundle
from edge.backends.base import BackendUnavailable
from edge.classifier import Classifier

log = logging.getLogger(__name__)

LOAD_ERRORS = (bundle.BundleError, BackendUnavailable, RetrainError, OSError, ValueError)


@dataclass(frozen=True)
class QueuePolicy:
    order: QueueOrder = DEFAULT_QUEUE_ORDER  # when a request names none; newest, or a strategy
    pool: int = DEFAULT_QUEUE_POOL
    similarity: float = duplicates.DEFAULT_SIMILARITY
    seed: int = 0


@dataclass(frozen=True)
class Offer:
    sample: StoredSample
    duplicates: int = 0  # near-duplicates it stands for, hidden from the queue


@dataclass(frozen=True)
class ModelQueue:
    model: str
    order: str  # the strategy, or "newest" and why
    offers: list[Offer]
    unreadable: int = 0  # pictures that would not decode: offered last, unordered


@dataclass
class _Promoted:
    version: str
    meta: bundle.ModelMeta
    classifier: Classifier
    known: dict[str, np.ndarray] = field(default_factory=dict)  # probabilities of the pool last ordered

    def probabilities(self, samples: dict[str, Path]) -> np.ndarray:
        """[N, labels] for these pictures (decodable ones: the embeddings have read them already)."""
        todo = [i for i in samples if i not in self.known]
        rows = self.classifier.probabilities_of_files([samples[i] for i in todo])
        self.known |= dict(zip(todo, rows, strict=True))
        self.known = {i: self.known[i] for i in samples}
        return np.stack([self.known[i] for i in samples]) if samples else np.zeros((0, len(self.meta.labels)))


class Queue:
    def __init__(self, db: Database, data_dir: Path, policy: QueuePolicy | None = None) -> None:
        self.db, self.data_dir = db, data_dir
        self.policy = policy or QueuePolicy()
        self.registry = Registry(db, data_dir)
        self.embeddings = Embeddings(data_dir / "bottlenecks")
        self._promoted: dict[str, _Promoted] = {}
        self._failed: dict[tuple[str, str], str] = {}  # (model, version) that would not load: why
        self._last: dict[tuple[str, str], tuple[tuple, ModelQueue]] = {}  # the last answer, and what it came from
        self._lock = threading.Lock()  # one ordering at a time: they share the caches and the CPU

    def offers(self, strategy: str, limit: int, model: str | None = None) -> list[ModelQueue]:
        """Up to `limit` unlabelled samples of `model` (None: of every model, one after the other by
        name, until there are `limit`)."""
        models = [model] if model is not None else sample_store.models_with(self.db, "unlabelled")
        queues: list[ModelQueue] = []
        with self._lock:
            for name in models:
                left = limit - sum(len(q.offers) for q in queues)
                if left <= 0:
                    break
                queues.append(self._model_queue(name, strategy, left))
        return queues

    def _model_queue(self, model: str, strategy: str, limit: int) -> ModelQueue:
        pool = sample_store.with_status(self.db, "unlabelled", self.policy.pool, model)
        promoted = self._load(model)
        if isinstance(promoted, str):
            return ModelQueue(model, f"newest ({promoted})", [Offer(s) for s in pool[:limit]])
        labelled = sample_store.with_status(self.db, "labelled", self.policy.pool, model)
        inputs = (promoted.version, limit, [s.id for s in pool], [s.id for s in labelled])
        last = self._last.get((model, strategy))
        if last is None or last[0] != inputs:  # anything new: order again
            last = inputs, self._ordered(model, strategy, limit, promoted, pool, labelled)
            self._last[(model, strategy)] = last
        return last[1]

    def _ordered(
        self,
        model: str,
        strategy: str,
        limit: int,
        promoted: _Promoted,
        pool: list[StoredSample],
        labelled: list[StoredSample],
    ) -> ModelQueue:
        pictures = {s.id: sample_path(self.data_dir, s.id) for s in [*pool, *labelled]}
        embedded = self.embeddings.embed(promoted.meta, pictures)
        row = {sample_id: n for n, sample_id in enumerate(embedded.ids)}
        readable = [s for s in pool if s.id in row]
        unreadable = [s for s in pool if s.id not in row]
        features = embedded.features[[row[s.id] for s in readable]]
        done = embedded.features[[row[s.id] for s in labelled if s.id in row]]
        probabilities = promoted.probabilities({s.id: pictures[s.id] for s in readable})
        p = self.policy
        ranked = rank(strategy, limit, features, probabilities, done, p.similarity, p.seed) if readable else []
        offers = [Offer(readable[i], hidden) for i, hidden in ranked] + [Offer(s) for s in unreadable]
        log.info(
            "queue of %s by %s: %d offered of %d unlabelled (%d unreadable) against %d labelled, version %s",
            model, strategy, min(limit, len(offers)), len(pool), len(unreadable), len(done), promoted.version,
        )  # fmt: skip
        return ModelQueue(model, strategy, offers[:limit], len(unreadable))

    def _load(self, model: str) -> _Promoted | str:
        """The model's promoted version, loaded once; or why the queue cannot be ordered by it."""
        version = self.registry.promoted(model)
        if version is None:
            return "no promoted model"
        current = self._promoted.get(model)
        if current is not None and current.version == version.version:
            return current
        if (model, version.version) in self._failed:
            return self._failed[(model, version.version)]
        try:
            loaded = bundle.load(self.registry.bundle_dir(model, version.version))
            self.embeddings.load(loaded.meta)
            self._promoted[model] = _Promoted(version.version, loaded.meta, Classifier(loaded, "tflite"))
        except LOAD_ERRORS as exc:
            why = self._failed[(model, version.version)] = f"cannot load the promoted model {version.version}"
            log.warning("queue of %s ordered newest first: %s: %s", model, why, exc)
            return why
        return self._promoted[model]
