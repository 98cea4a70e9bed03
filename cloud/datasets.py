"""`DATA_DIR/datasets/<model>/`: a model's training images, one folder per label. That folder is what
makes a model part of the loop: labels file pictures into it, triggers train what is there, the
gate measures candidates on it. Shared by the packages that read it, so none imports another for it."""

from __future__ import annotations

import logging
from pathlib import Path

from common import protocol

log = logging.getLogger(__name__)

DATASETS = "datasets"


def dataset_dir(data_dir: Path, model: str) -> Path:
    return data_dir / DATASETS / model


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
