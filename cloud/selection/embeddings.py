"""The base network's embeddings of sample pictures: the bottlenecks the retrainer computes, from the
same network (a bundle's architecture and base weights) into the same on-disk cache, so a picture's
features are computed once, whether the queue orders it first or a training uses it first. A
sample's id is the sha256 of its JPEG, which is the cache's key."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from common.bundle import ModelMeta

if TYPE_CHECKING:
    import keras

    from cloud.retrain.bottlenecks import BottleneckCache

log = logging.getLogger(__name__)

BATCH = 64
WORKERS = 2


@dataclass(frozen=True)
class Embedded:
    ids: list[str]  # the pictures that decoded, in the order asked
    features: np.ndarray  # [len(ids), D]
    unreadable: dict[str, str]  # id -> why it was skipped


@dataclass
class _Network:
    extractor: keras.Model
    size: int
    cache: BottleneckCache
    known: dict[str, np.ndarray] = field(default_factory=dict)  # the features last asked for, in memory
    unreadable: dict[str, str] = field(default_factory=dict)  # pictures that failed, not read again


def _load(architecture: str, weights: str, seed: int, root: Path) -> _Network:
    """The retrainer's base network and cache; TensorFlow is imported here, on the first ordered queue,
    so a service that never orders one starts without it."""
    from cloud.retrain import architectures
    from cloud.retrain.bottlenecks import BottleneckCache

    arch = architectures.parse(architecture)
    base = architectures.load_base(arch, weights, seed)
    extractor = architectures.feature_extractor(arch, base)
    network = architectures.fingerprint(arch, base)
    dim = int(extractor.output_shape[-1])
    cache = BottleneckCache(root, network, dim, {"architecture": arch.name, "weights": weights})
    log.info("queue embeddings: %s with weights %s (network %s)", arch.name, weights, network)
    return _Network(extractor, arch.size, cache)


class Embeddings:
    """Base networks by (architecture, weights, seed), each loaded once, on first use."""

    def __init__(self, bottleneck_dir: Path) -> None:
        self.root = bottleneck_dir
        self._networks: dict[tuple[str, str, int], _Network] = {}
        self._lock = threading.Lock()

    def _network(self, meta: ModelMeta) -> _Network:
        weights, seed = meta.training.get("weights", "imagenet"), meta.training.get("seed", 0)
        key = (meta.architecture, str(weights), seed if isinstance(seed, int) else 0)  # the retrainer's defaults
        if key not in self._networks:
            self._networks[key] = _load(*key, self.root)
        return self._networks[key]

    def load(self, meta: ModelMeta) -> None:
        """Load the base network `meta` was trained on now, so that a failure (RetrainError, OSError,
        ValueError) raises here."""
        with self._lock:
            self._network(meta)

    def embed(self, meta: ModelMeta, pictures: dict[str, Path]) -> Embedded:
        """The features of `pictures` ({sample id: JPEG}) by the base network `meta` was trained on;
        only those in neither memory nor the disk cache go through the network."""
        from cloud.retrain.bottlenecks import compute

        with self._lock:
            network = self._network(meta)
            known = {i: network.known[i] for i in pictures if i in network.known}
            unreadable = {i: network.unreadable[i] for i in pictures if i in network.unreadable}
            todo = {pictures[i]: i for i in pictures if i not in known and i not in unreadable}
            if todo:
                found = compute(list(todo), network.extractor, network.size, network.cache, BATCH, WORKERS)
                failed = dict(found.skipped)
                kept = [path for path in todo if path not in failed]
                known |= {todo[path]: vector for path, vector in zip(kept, found.features, strict=True)}
                unreadable |= {todo[path]: why for path, why in failed.items()}
            network.known, network.unreadable = known, unreadable  # memory holds what the last call asked for
        ids = [i for i in pictures if i in known]
        features = np.stack([known[i] for i in ids]) if ids else np.zeros((0, network.cache.dim), np.float32)
        return Embedded(ids, features, unreadable)
