"""The sweep in TensorBoard: every run's combination as HParams (so the HParams dashboard lines
the runs up against their accuracy and times), and the learning curves read back for the chart."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api as hp

from cloud.sweep.table import Row

log = logging.getLogger(__name__)

# (tag, group: the run's sub-folder holding it, shown as)
METRICS = (
    ("accuracy", "validation", "validation accuracy"),
    ("accuracy", "train", "train accuracy"),
    ("test_accuracy", "", "test accuracy"),
    ("bottleneck_s", "", "bottleneck time (s)"),
    ("train_s", "", "training time (s)"),
)


@contextlib.contextmanager
def _writing(folder: Path) -> Iterator[None]:
    writer = tf.summary.create_file_writer(str(folder))
    try:
        with writer.as_default():
            yield
    finally:
        writer.close()


def write_hparams(logdir: Path, axes: dict[str, list[Any]], rows: list[Row]) -> None:
    """One HParams session per finished run, in the run's own folder under `logdir`."""
    hparams = {key: hp.HParam(key, hp.Discrete(sorted(set(values)))) for key, values in axes.items()}
    with _writing(logdir):
        hp.hparams_config(
            hparams=list(hparams.values()),
            metrics=[hp.Metric(tag, group=group or None, display_name=shown) for tag, group, shown in METRICS],
        )
    finished = [row for row in rows if row.ok]
    for row in finished:
        step = int(row.params["how_many_training_steps"])
        with _writing(logdir / row.name):
            hp.hparams({hparams[key]: value for key, value in row.params.items()}, trial_id=row.name)
            for tag in ("test_accuracy", "bottleneck_s", "train_s"):
                if (value := getattr(row, tag)) is not None:
                    tf.summary.scalar(tag, value, step=step)
    log.info("hparams of %d runs in %s", len(finished), logdir)


def curve(folder: Path, tag: str = "accuracy") -> tuple[list[int], list[float]]:
    """Steps and values of one scalar, as TensorBoard reads them from the event files in `folder`."""
    acc = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    acc.Reload()
    events = acc.Tensors(tag) if tag in acc.Tags()["tensors"] else []
    return [e.step for e in events], [float(tf.make_ndarray(e.tensor_proto)) for e in events]
