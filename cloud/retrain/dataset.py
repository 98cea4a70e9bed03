"""The training images: one sub-folder per label, split into train, validation and test sets by a
hash of each file's name exactly as retrain.py does, so adding images never moves another.

Each image is *seed* or *field* (`cloud.datasets.slice_of`). Field images are scarce and are what
the gate must judge on, so they have their own split percentages: by default none validate (the
validation set only reports, it steers nothing) and 20% test, twice the seed's share."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cloud.datasets import FIELD, SEED, slice_of
from cloud.retrain.errors import RetrainError
from common.images import is_image_file

log = logging.getLogger(__name__)

MAX_NUM_IMAGES_PER_CLASS = 2**27 - 1  # retrain.py's constant: keeps its splits for the same names
SPLITS = ("train", "validation", "test")
FEW_IMAGES = 20


def split_of(file_name: str, validation_percentage: float, testing_percentage: float) -> str:
    """retrain.py's rule: the name, without any `_nohash_` suffix, hashed with SHA1 to a percentage."""
    hash_name = re.sub(r"_nohash_.*$", "", file_name)
    hashed = int(hashlib.sha1(hash_name.encode()).hexdigest(), 16)
    percentage = (hashed % (MAX_NUM_IMAGES_PER_CLASS + 1)) * (100.0 / MAX_NUM_IMAGES_PER_CLASS)
    if percentage < validation_percentage:
        return "validation"
    if percentage < validation_percentage + testing_percentage:
        return "test"
    return "train"


@dataclass(frozen=True)
class Splits:
    """Percentages held out to validate and to test, for seed images and for field images."""

    validation: float = 10
    testing: float = 10
    field_validation: float = 0
    field_testing: float = 20

    @classmethod
    def of(cls, training: dict[str, object]) -> Splits:
        """The splits a bundle was trained with, from its model.json `training` flags."""
        defaults = cls()
        return cls(
            *(
                float(str(training.get(f"{name}_percentage", getattr(defaults, name))))
                for name in ("validation", "testing", "field_validation", "field_testing")
            )
        )

    def split_of(self, path: Path) -> str:
        if slice_of(path) == SEED:
            return split_of(path.name, self.validation, self.testing)
        return split_of(path.name, self.field_validation, self.field_testing)


@dataclass(frozen=True)
class ImageRecord:
    path: Path
    label: int
    split: str

    @property
    def slice(self) -> str:
        return slice_of(self.path)


@dataclass
class Dataset:
    root: Path
    labels: list[str]
    records: list[ImageRecord]
    ignored: list[Path] = field(default_factory=list)

    def indices(self, split: str) -> list[int]:
        return [i for i, r in enumerate(self.records) if r.split == split]

    def drop(self, paths: set[Path]) -> None:
        """Forget images that turned out not to decode."""
        self.records = [r for r in self.records if r.path not in paths]


def scan(image_dir: Path, splits: Splits) -> Dataset:
    root = Path(image_dir)
    if not root.is_dir():
        raise RetrainError(f"image folder {root} does not exist")
    labels: list[str] = []
    records: list[ImageRecord] = []
    ignored: list[Path] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in folder.iterdir() if p.is_file())
        ignored.extend(p for p in files if not is_image_file(p))
        images = [p for p in files if is_image_file(p)]
        if not images:
            log.warning("label folder %s has no images; skipped", folder.name)
            continue
        if len(images) < FEW_IMAGES:
            log.warning("label %s has only %d images; accuracy will suffer", folder.name, len(images))
        label = len(labels)
        labels.append(folder.name)
        records.extend(ImageRecord(p, label, splits.split_of(p)) for p in images)
    if ignored:
        log.info("ignored %d files that are not images (e.g. %s)", len(ignored), ignored[0].name)
    if not labels:
        raise RetrainError(f"no images found in {root}: expected one sub-folder of images per label")
    if len(labels) < 2:
        raise RetrainError(f"only one label ({labels[0]}) in {root}: a classifier needs at least two")
    return Dataset(root, labels, records, ignored)


def check_trainable(dataset: Dataset) -> None:
    """Every label needs training images; after corrupt images are dropped, one may have none left."""
    counts = [0] * len(dataset.labels)
    for r in dataset.records:
        if r.split == "train":
            counts[r.label] += 1
    empty = [dataset.labels[i] for i, n in enumerate(counts) if n == 0]
    if empty:
        raise RetrainError(f"no training images for label(s) {', '.join(empty)}: add images or lower the splits")


def draw_probabilities(records: list[ImageRecord], indices: np.ndarray, field_weight: float) -> np.ndarray | None:
    """How likely each of these images is to be drawn into a training batch: a field image
    `field_weight` times as likely as a seed image, so a few hundred labelled samples are not
    drowned by thousands of seed images. None when all are equally likely: then batches are drawn
    exactly as retrain.py drew them."""
    weights = np.array([field_weight if records[i].slice == FIELD else 1.0 for i in indices])
    if np.all(weights == 1.0):
        return None
    return weights / weights.sum()
