"""Bottlenecks: the frozen base's features for each image, computed in batches while other threads
read and decode the next images, and cached on disk by image content and network fingerprint, so
a second training on the same images (under any label or file name) computes none."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import keras
import numpy as np
import tensorflow as tf

from cloud.retrain.progress import Progress
from common import images

log = logging.getLogger(__name__)


class BottleneckCache:
    """One float32 file per image under `<root>/<network fingerprint>/<sha[:2]>/<sha>`; writes are
    atomic, so trainings running side by side share the cache safely."""

    def __init__(self, root: Path, network: str, dim: int, description: dict[str, object]) -> None:
        self.dim = dim
        self.dir = Path(root).expanduser() / network
        self.dir.mkdir(parents=True, exist_ok=True)
        info = self.dir / "network.json"
        if not info.exists():
            info.write_text(json.dumps(description, indent=2))

    def _path(self, sha: str) -> Path:
        return self.dir / sha[:2] / f"{sha}.f32"

    def get(self, sha: str) -> np.ndarray | None:
        try:
            vector = np.fromfile(self._path(sha), np.float32)
        except (FileNotFoundError, ValueError):
            return None
        if vector.shape != (self.dim,):
            log.warning("bottleneck %s has a wrong size; recomputing it", self._path(sha))
            return None
        return vector

    def put(self, sha: str, vector: np.ndarray) -> None:
        path = self._path(sha)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        np.asarray(vector, np.float32).tofile(tmp)
        os.replace(tmp, path)


@dataclass
class Bottlenecks:
    features: np.ndarray  # [kept images, D], aligned with the dataset's records after bad ones are dropped
    shas: list[str]
    computed: int
    cached: int
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    pixels: np.ndarray | None = None  # decoded uint8 images, when the caller needs them again


@dataclass
class _Loaded:
    path: Path
    sha: str = ""
    vector: np.ndarray | None = None
    pixels: np.ndarray | None = None
    error: str | None = None


def _load(path: Path, cache: BottleneckCache, size: int, keep_pixels: bool) -> _Loaded:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _Loaded(path, error=str(exc))
    item = _Loaded(path, hashlib.sha256(data).hexdigest())
    item.vector = cache.get(item.sha)
    if item.vector is None or keep_pixels:
        try:
            item.pixels = images.fit(images.decode_rgb(data), size, size)
        except images.ImageError as exc:
            item.error = str(exc)
    return item


def _prefetched(pool: ThreadPoolExecutor, fn, paths: list[Path], chunk: int) -> Iterator[list[_Loaded]]:
    """Chunks of loaded images, the next chunk loading while the caller works on this one."""
    chunks = [paths[i : i + chunk] for i in range(0, len(paths), chunk)]
    pending: list[list[Future[_Loaded]]] = []
    for i in range(len(chunks)):
        while len(pending) < 2 and i + len(pending) < len(chunks):
            pending.append([pool.submit(fn, p) for p in chunks[i + len(pending)]])
        yield [f.result() for f in pending.pop(0)]


def forward_fn(extractor: keras.Model, size: int):
    """A compiled batched forward pass: the fastest way to run a Keras model on a TF backend."""

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8)], reduce_retracing=True)
    def forward(batch):
        return extractor(batch, training=False)

    return forward


def compute(
    paths: list[Path],
    extractor: keras.Model,
    size: int,
    cache: BottleneckCache,
    batch_size: int = 64,
    workers: int = 4,
    keep_pixels: bool = False,
) -> Bottlenecks:
    forward = forward_fn(extractor, size)
    features: list[np.ndarray] = []
    shas: list[str] = []
    pixels: list[np.ndarray] = []
    skipped: list[tuple[Path, str]] = []
    computed = cached = 0
    with (
        ThreadPoolExecutor(workers) as pool,
        Progress(len(paths), "bottlenecks", "image") as bar,
    ):
        for chunk in _prefetched(pool, lambda p: _load(p, cache, size, keep_pixels), paths, batch_size):
            good = []
            for item in chunk:
                if item.error:
                    log.warning("skipping %s: %s", item.path, item.error)
                    skipped.append((item.path, item.error))
                else:
                    good.append(item)
            todo = [item for item in good if item.vector is None]
            if todo:
                vectors = forward(np.stack([cast(np.ndarray, item.pixels) for item in todo])).numpy()
                for item, vector in zip(todo, vectors, strict=True):
                    item.vector = vector
                    cache.put(item.sha, vector)
            computed += len(todo)
            cached += len(good) - len(todo)
            features.extend(cast(np.ndarray, item.vector) for item in good)
            shas.extend(item.sha for item in good)
            if keep_pixels:
                pixels.extend(cast(np.ndarray, item.pixels) for item in good)
            bar.update(len(chunk))
    log.info("bottlenecks: %d computed, %d cached, %d skipped", computed, cached, len(skipped))
    return Bottlenecks(
        features=np.stack(features) if features else np.zeros((0, 0), np.float32),
        shas=shas,
        computed=computed,
        cached=cached,
        skipped=skipped,
        pixels=np.stack(pixels) if keep_pixels and pixels else None,
    )
