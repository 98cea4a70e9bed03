"""The predictions table: rows as the aggregator batches and stores them, and the reads of it that are
not windows (cloud.store.windows). A prediction waits in a batch as a plain tuple of plain values,
the one layout below, because the garbage collector stops tracking such a tuple (not a named tuple's
instance), while thousands of pydantic models waiting in a batch made collections cost more than the
parsing itself. Nothing outside this module indexes one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple

from pydantic import TypeAdapter

from cloud.store import devices
from cloud.store.db import Cursor, Database
from common import protocol

_COLUMNS = ("device_id", "seq", "ts", "model_name", "model_version", "label", "score", "top_k", "infer_ms",
            "total_ms", "received")  # fmt: skip
Row = tuple[str, int, float, str, str, str, float, str, float, float, float]
_DEVICE: Final = 0  # positions in _COLUMNS
_TS: Final = 2
_MODEL_NAME: Final = 3
_MODEL_VERSION: Final = 4

_INSERT = f"INSERT INTO predictions ({', '.join(_COLUMNS)})"
_TOP_K = TypeAdapter(list[protocol.Score])


class Confidence(NamedTuple):
    """A model's predictions across the fleet: how many, and their mean top-1 score (None for none)."""

    predictions: int
    mean: float | None


def prediction_row(device_id: str, p: protocol.BatchedPrediction, received: float) -> Row:
    """A device's prediction (alone or from a batch) as the values it is stored as, taken as soon as it arrives."""
    best = p.top_k[0]
    top_k = _TOP_K.serializer.to_json(p.top_k).decode()
    return (device_id, p.seq, p.ts, p.model.name, p.model.version, best.label, best.score, top_k,
            p.latency_ms.infer, p.latency_ms.total, received)  # fmt: skip


def newest_ts(rows: Sequence[Row]) -> float:
    """The latest capture time among the rows (there must be one)."""
    return max(row[_TS] for row in rows)


def insert(cur: Cursor, rows: Sequence[Row], received: float) -> int:
    """Store each row once per (device_id, seq), and mark each device seen at `received` with the model
    of its newest prediction. Returns the rows stored (the rest were there already: duplicates)."""
    latest: dict[str, Row] = {}
    for row in rows:
        if row[_DEVICE] not in latest or row[_TS] > latest[row[_DEVICE]][_TS]:
            latest[row[_DEVICE]] = row
    seen = [(d, row[_MODEL_NAME], row[_MODEL_VERSION]) for d, row in sorted(latest.items())]
    stored = cur.insert_rows(_INSERT, rows, "ON CONFLICT (device_id, seq) DO NOTHING")
    devices.touch(cur, seen, received)
    return stored


def label_counts(db: Database, device_id: str, since: float) -> dict[str, int]:
    """How often the device predicted each label since `since` (by capture time), by label."""
    rows = db.query(
        "SELECT label, COUNT(*) FROM predictions WHERE device_id = ? AND ts >= ? GROUP BY label ORDER BY label",
        (device_id, since),
    )
    return dict(rows)


def confidence(db: Database, model_name: str, since: float) -> Confidence:
    rows = db.query(
        "SELECT COUNT(*), AVG(score) FROM predictions WHERE model_name = ? AND ts >= ?", (model_name, since)
    )
    return Confidence(*rows[0])
