"""Writing one batch of ingested messages in one transaction: predictions stored once per
(device_id, seq) (a redelivery counts as a duplicate), devices upserted, samples filed by content
hash under the data directory (never by a name a device chose)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import TypeAdapter

from cloud.aggregator.parse import DeviceUpdate, Sample
from cloud.store import Database
from common import protocol

_TOP_K = TypeAdapter(list[protocol.Score])

INSERT_PREDICTIONS = """INSERT INTO predictions
    (device_id, seq, ts, model_name, model_version, label, score, top_k, infer_ms, total_ms, received)"""
TOUCH_DEVICE = """INSERT INTO devices (device_id, last_seen, model_name, model_version) VALUES (?, ?, ?, ?)
    ON CONFLICT (device_id) DO UPDATE SET last_seen = MAX2(devices.last_seen, excluded.last_seen),
    model_name = excluded.model_name, model_version = excluded.model_version"""
INSERT_SAMPLE = """INSERT INTO samples
    (id, device_id, seq, ts, received, model_name, model_version, predicted, score, reason, bytes)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"""


PredictionRow = tuple[str, int, float, str, str, str, float, str, float, float, float]
DEVICE, SEQ, TS, MODEL_NAME, MODEL_VERSION = range(5)


def prediction_row(p: protocol.Prediction, received: float) -> PredictionRow:
    """A prediction as the values it is stored as, taken as soon as it arrives: a tuple of plain
    values is one the garbage collector stops tracking, while thousands of pydantic models waiting
    in a batch made collections cost more than the parsing itself."""
    best = p.top_k[0]
    top_k = _TOP_K.serializer.to_json(p.top_k).decode()
    return (p.device_id, p.seq, p.ts, p.model.name, p.model.version, best.label, best.score, top_k,
            p.latency_ms.infer, p.latency_ms.total, received)  # fmt: skip


@dataclass
class Batch:
    predictions: list[PredictionRow] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    updates: list[DeviceUpdate] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.predictions) + len(self.samples) + len(self.updates)

    def singles(self):
        """One batch per message, to find the one a database refuses."""
        yield from (Batch(predictions=[p]) for p in self.predictions)
        yield from (Batch(samples=[s]) for s in self.samples)
        yield from (Batch(updates=[u]) for u in self.updates)


def sample_path(data_dir: Path, sample_id: str) -> Path:
    return data_dir / "samples" / sample_id[:2] / f"{sample_id}.jpg"


def _file_sample(data_dir: Path, sample: Sample) -> None:
    path = sample_path(data_dir, sample.id)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(sample.jpeg)
    os.replace(tmp, path)


def write(db: Database, data_dir: Path, batch: Batch) -> tuple[int, int]:
    """Commit the batch; returns (predictions stored, duplicates)."""
    received = time.time()
    for sample in batch.samples:
        _file_sample(data_dir, sample)  # before the commit: a stored row always has its picture
    latest: dict[str, PredictionRow] = {}
    for row in batch.predictions:
        if row[DEVICE] not in latest or row[TS] > latest[row[DEVICE]][TS]:
            latest[row[DEVICE]] = row
    touches = [(d, received, row[MODEL_NAME], row[MODEL_VERSION]) for d, row in sorted(latest.items())]
    with db.transaction() as cur:
        stored = cur.insert_rows(INSERT_PREDICTIONS, batch.predictions, "ON CONFLICT (device_id, seq) DO NOTHING")
        cur.executemany(TOUCH_DEVICE, touches)
        for sample in batch.samples:
            m = sample.meta
            cur.execute(
                INSERT_SAMPLE,
                (sample.id, m.device_id, m.seq, m.ts, received, m.model.name, m.model.version,
                 m.top_k[0].label, m.top_k[0].score, m.reason, len(sample.jpeg)),
            )  # fmt: skip
        for update in batch.updates:
            _update_device(cur, update, received)
    return stored, len(batch.predictions) - stored


def _update_device(cur, update: DeviceUpdate, received: float) -> None:
    # a status says everything about the device (a cleared message is None); telemetry only what it has
    columns = update.values if update.kind == "status" else {k: v for k, v in update.values.items() if v is not None}
    names = ["device_id", "last_seen", *columns]
    placeholders = ", ".join("?" for _ in names)
    assignments = ", ".join(f"{name} = excluded.{name}" for name in ["last_seen", *columns])
    cur.execute(
        f"INSERT INTO devices ({', '.join(names)}) VALUES ({placeholders}) "
        f"ON CONFLICT (device_id) DO UPDATE SET {assignments}",
        (update.device_id, received, *columns.values()),
    )
