"""Writing one batch of ingested messages in one transaction: predictions stored once per
(device_id, seq) (a redelivery counts as a duplicate), devices and their cameras upserted, samples filed by content
hash under the data directory (never by a name a device chose)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cloud.aggregator.parse import DeviceUpdate, Sample
from cloud.store import Database
from cloud.store import cameras as camera_store
from cloud.store import devices as device_store
from cloud.store import predictions as prediction_store
from cloud.store import samples as sample_store


@dataclass
class Batch:
    predictions: list[prediction_store.Row] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    updates: list[DeviceUpdate] = field(default_factory=list)
    prepared: prediction_store.Prepared | None = None  # the predictions as `prepare` left them

    def prepare(self) -> prediction_store.Prepared:
        """Work out what storing the predictions adds (prediction_store.prepare) ahead of the transaction."""
        self.prepared = prediction_store.prepare(self.predictions)
        return self.prepared

    def __len__(self) -> int:
        return len(self.predictions) + len(self.samples) + len(self.updates)

    def refuse_older(self, oldest_ts: float) -> list[prediction_store.Row]:
        """Take out the predictions captured before `oldest_ts` (past the raw rows' retention: their first
        copy may be gone, so storing them again would count them twice); returns them."""
        old = [p for p in self.predictions if prediction_store.captured(p) < oldest_ts]
        if old:
            self.predictions = [p for p in self.predictions if prediction_store.captured(p) >= oldest_ts]
            self.prepared = None
        return old

    def singles(self):
        """One batch per message, to find the one a database refuses."""
        yield from (Batch(predictions=[p]) for p in self.predictions)
        yield from (Batch(samples=[s]) for s in self.samples)
        yield from (Batch(updates=[u]) for u in self.updates)


def sample_path(data_dir: Path, sample_id: str) -> Path:
    return data_dir / "samples" / sample_id[:2] / f"{sample_id}.jpg"


def file_sample(data_dir: Path, sample: Sample) -> None:
    """Write the picture under its content hash, whole or not at all; one already there is left as it is."""
    path = sample_path(data_dir, sample.id)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(sample.jpeg)
    os.replace(tmp, path)


def write(db: Database, data_dir: Path, batch: Batch) -> tuple[Sequence[prediction_store.Row], int]:
    """Commit the batch; returns (the predictions stored, how many were duplicates)."""
    received = time.time()
    for sample in batch.samples:
        file_sample(data_dir, sample)  # before the commit: a stored row always has its picture
    with db.transaction() as cur:
        rows = batch.predictions if batch.prepared is None else batch.prepared
        stored = prediction_store.insert(cur, rows, received)
        for sample in batch.samples:
            m = sample.meta
            sample_store.insert(
                cur, sample_id=sample.id, device_id=m.device_id, seq=m.seq, ts=m.ts, received=received,
                model_name=m.model.name, model_version=m.model.version, predicted=m.top_k[0].label,
                score=m.top_k[0].score, reason=m.reason, size=len(sample.jpeg), camera=m.camera,
            )  # fmt: skip
        for update in batch.updates:
            device_store.upsert(cur, update.device_id, received, _columns(update))
            camera_store.report(cur, update.device_id, update.cameras)
    return stored, len(batch.predictions) - len(stored)


def _columns(update: DeviceUpdate) -> dict:
    """A status says everything about the device (a cleared message is None); telemetry only what it has."""
    return update.values if update.kind == "status" else {k: v for k, v in update.values.items() if v is not None}
