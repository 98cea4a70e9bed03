"""A person's decision on a sample: a label, which makes its JPEG a training image of its model at
`datasets/<model>/<label>/<sample id>.jpg` (the folder-per-label layout the retrainer reads), or a
discard. The samples row keeps the provenance: device, seq, prediction, score, model version, the
label, when it was decided (`labelled_at`) and where the image went (`dataset_path`).

The file name is the content hash, never anything a device sent; labels and model names are checked
as ids because they become folder names. A sample of a model that has no `datasets/<model>/` folder
is refused (UnknownModel): that folder is what makes a model part of the loop, and a serve with
--train-new-models would start training one on a single click's image. The picture under `samples/`
stays where it is (the dataset copy is a hard link where the file system allows), so a later
relabel or discard always starts from the original."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path

from cloud.aggregator.writer import sample_path
from cloud.datasets import SAMPLE_ID, dataset_dir
from cloud.store import Cursor, Database
from cloud.store import samples as sample_store
from common import protocol

log = logging.getLogger(__name__)


class UnknownSample(LookupError):
    """No sample has that id (or the id cannot be one)."""


class LabelError(ValueError):
    """A label, or a sample's model name, that cannot become a folder name."""


class UnknownModel(LabelError):
    """The sample's model has no training images folder: it is not a model of the loop."""


def check_sample_id(sample_id: str) -> str:
    if not SAMPLE_ID.match(sample_id):
        raise UnknownSample(f"{sample_id[:80]!r} is not a sample id (64 lowercase hex digits)")
    return sample_id


def model_dir(data_dir: Path, model: str) -> Path:
    try:
        return dataset_dir(data_dir, protocol.check_id(model, "model name"))
    except protocol.ProtocolError as exc:
        raise LabelError(str(exc)) from exc


def labels_for(data_dir: Path, model: str) -> list[str]:
    """The label folders of a model's training images, sorted: the choices a person is offered."""
    folder = model_dir(data_dir, model)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def label(db: Database, data_dir: Path, sample_id: str, name: str) -> str:
    """Label a sample (again: the image moves to the new label's folder); returns its dataset path."""
    check_sample_id(sample_id)
    try:
        protocol.check_id(name, "label")
    except protocol.ProtocolError as exc:
        raise LabelError(str(exc)) from exc
    with db.transaction() as cur:
        placed = _locked(cur, sample_id)
        model, old = placed.model_name, placed.dataset_path
        folder = model_dir(data_dir, model)
        if not folder.is_dir():
            raise UnknownModel(
                f"model {model} has no {folder.relative_to(data_dir)}/ folder: create it to train {model}"
            )
        target = folder / name / f"{sample_id}.jpg"
        _place(sample_path(data_dir, sample_id), target)
        relative = target.relative_to(data_dir).as_posix()
        sample_store.decide(cur, sample_id, "labelled", name, time.time(), relative)
        if old and old != relative:
            (data_dir / old).unlink(missing_ok=True)
    log.info("sample %s of %s labelled %s", sample_id[:12], model, name)
    return relative


def discard(db: Database, data_dir: Path, sample_id: str) -> None:
    """Not worth training on: the sample leaves the queue and, if it was labelled, the training images."""
    check_sample_id(sample_id)
    with db.transaction() as cur:
        old = _locked(cur, sample_id).dataset_path
        sample_store.decide(cur, sample_id, "discarded", None, time.time(), None)
        if old:
            (data_dir / old).unlink(missing_ok=True)
    log.info("sample %s discarded", sample_id[:12])


def _locked(cur: Cursor, sample_id: str) -> sample_store.Placement:
    """The sample, its row locked until the transaction ends: of two people deciding on it at once, the
    last one wins and only its file is left."""
    placed = sample_store.lock(cur, sample_id)
    if placed is None:
        raise UnknownSample(f"no sample {sample_id}")
    return placed


def _place(source: Path, target: Path) -> None:
    """Link (or copy, across file systems) to a hidden name, then rename: never half an image. A target
    already there is this very picture (named by its hash); renaming a link onto it would do nothing."""
    if not source.is_file():
        raise UnknownSample(f"the picture of sample {source.stem} is missing")
    if target.is_file():
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise LabelError(f"{target.parent.name!r} is a file in the model's dataset, not a label folder") from exc
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
