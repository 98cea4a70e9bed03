"""Every image of the simulation through the real base network once: the seed, the pool and the
held-out field images, with the retrainer's bottleneck cache, so a second simulation computes none."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cloud.retrain import architectures
from cloud.retrain.bottlenecks import BottleneckCache, compute
from cloud.retrain.dataset import ImageRecord, Splits, scan
from cloud.retrain.errors import RetrainError
from cloud.simulate.config import SimulateConfig

log = logging.getLogger(__name__)


@dataclass
class Images:
    """Images of one folder: their records (path as the retrainer would file it, label, split), features."""

    records: list[ImageRecord]
    x: np.ndarray
    y: np.ndarray

    def where(self, split: str) -> np.ndarray:
        return np.array([i for i, r in enumerate(self.records) if r.split == split], np.int64)


@dataclass
class Data:
    labels: list[str]
    seed: Images
    pool: Images | None
    eval: Images | None


def _sample(sha: str) -> Path:
    """A labelled pool image is filed as a sample is: by its content hash, which makes it *field*."""
    return Path(f"{sha}.jpg")


def _folder(root: Path, labels: list[str] | None, splits: Splits) -> tuple[list[str], list[ImageRecord]]:
    dataset = scan(root, splits)
    if labels is None:
        return dataset.labels, dataset.records
    if unknown := sorted(set(dataset.labels) - set(labels)):
        raise RetrainError(f"{root} has labels the seed lacks: {', '.join(unknown)}")
    index = [labels.index(name) for name in dataset.labels]
    return labels, [ImageRecord(r.path, index[r.label], r.split) for r in dataset.records]


def load(cfg: SimulateConfig) -> Data:
    arch = architectures.parse(cfg.architecture)
    base = architectures.load_base(arch, cfg.weights, cfg.seed)
    extractor = architectures.feature_extractor(arch, base)
    dim = int(extractor.output_shape[-1])
    network = architectures.fingerprint(arch, base)
    cache = BottleneckCache(cfg.bottleneck_dir, network, dim, {"architecture": arch.name, "weights": cfg.weights})
    splits = Splits(cfg.validation_percentage, cfg.testing_percentage, 0, cfg.field_testing_percentage)

    def images(root: Path, labels: list[str] | None, field: bool) -> tuple[list[str], Images]:
        labels, records = _folder(root, labels, splits)
        bn = compute([r.path for r in records], extractor, arch.size, cache, cfg.bottleneck_batch_size, cfg.workers)
        skipped = {path for path, _ in bn.skipped}
        records = [r for r in records if r.path not in skipped]
        if field:
            records = [
                ImageRecord(_sample(sha), r.label, splits.split_of(_sample(sha)))
                for r, sha in zip(records, bn.shas, strict=True)
            ]
        log.info("%s: %d images, %d computed, %d cached", root, len(records), bn.computed, bn.cached)
        return labels, Images(records, bn.features, np.array([r.label for r in records], np.int64))

    labels, seed = images(cfg.seed_dir, None, field=False)
    pool = images(cfg.pool_dir, labels, field=True)[1] if cfg.pool_dir else None
    held_out = images(cfg.eval_dir, labels, field=False)[1] if cfg.eval_dir else None
    return Data(labels, seed, pool, held_out)
