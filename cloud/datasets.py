"""`DATA_DIR/datasets/<model>/`: a model's training images, one folder per label. That folder is what
makes a model part of the loop: labels file pictures into it, triggers train what is there, the
gate measures candidates on it. Shared by the packages that read it, so none imports another for it."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from common import protocol

log = logging.getLogger(__name__)

DATASETS = "datasets"
SAMPLE_ID = re.compile(r"\A[0-9a-f]{64}\Z")  # a sample's content hash; \Z: "$" would let a trailing newline through
SEED, FIELD = "seed", "field"


def slice_of(path: Path) -> str:
    """A labelled sample is filed under its id (the JPEG's sha256): that name makes an image *field*,
    something a camera saw; every other image was put in the dataset by a person: *seed*."""
    return FIELD if SAMPLE_ID.match(path.stem) else SEED


def dataset_dir(data_dir: Path, model: str) -> Path:
    return data_dir / DATASETS / model


def dataset_prefix(model: str) -> str:
    """Where a model's training images are, relative to the data directory: how the samples table
    records a labelled sample's `dataset_path`."""
    return f"{DATASETS}/{model}/"


def models(data_dir: Path) -> list[str]:
    """A model exists for the cloud when its dataset folder does."""
    root = data_dir / DATASETS
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _valid(p.name))


def _valid(name: str) -> bool:
    try:
        protocol.check_id(name, "model name")
    except protocol.ProtocolError:
        log.warning("ignoring the dataset folder %r: not a valid model name", name)
        return False
    return True
