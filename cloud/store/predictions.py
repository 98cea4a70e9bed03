"""The predictions table: rows as the aggregator batches and stores them (every read of them is a window:
cloud.store.windows). A prediction waits in a batch as a plain tuple of plain values,
the one layout below, because the garbage collector stops tracking such a tuple (not a named tuple's
instance), while thousands of pydantic models waiting in a batch made collections cost more than the
parsing itself. Nothing outside this module indexes one."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any, Final

from pydantic_core import to_json

from cloud.store import cameras, devices, rollups
from cloud.store.db import Cursor

_COLUMNS = ("device_id", "seq", "ts", "model_name", "model_version", "label", "score", "top_k", "infer_ms",
            "total_ms", "received", "camera")  # fmt: skip
Row = tuple[str, int, float, str, str, str, float, str, float, float, float, str | None]
_DEVICE: Final = 0  # positions in _COLUMNS
_TS: Final = 2
_MODEL_NAME: Final = 3
_MODEL_VERSION: Final = 4
_SCORE: Final = 6
_INFER_MS: Final = 8
_TOTAL_MS: Final = 9
_RECEIVED: Final = 10

_INSERT = f"INSERT INTO predictions ({', '.join(_COLUMNS)})"
# No conflict target: the unique key is (device_id, seq) on SQLite, (device_id, seq, ts) on PostgreSQL's partitions.
_RETURNING = f"ON CONFLICT DO NOTHING RETURNING {', '.join(rollups.COLUMNS)}"
# One batch of the oldest rows, through the index on ts (SQLite: PostgreSQL drops whole days).
_DELETE_BEFORE = "DELETE FROM predictions WHERE rowid IN (SELECT rowid FROM predictions WHERE ts < ? LIMIT ?)"


def prediction_row(device_id: str, p: dict[str, Any], received: float) -> Row:
    """A device's prediction (alone or from a batch), as `protocol.predictions_data` reads it, as the
    values it is stored as, taken as soon as it arrives."""
    top_k = p["top_k"]
    best, model, latency = top_k[0], p["model"], p["latency_ms"]
    return (device_id, p["seq"], p["ts"], model["name"], model["version"], best["label"], best["score"],
            to_json(top_k).decode(), latency["infer"], latency["total"], received, p.get("camera"))  # fmt: skip


def captured(row: Row) -> float:
    """The row's capture time (`ts`)."""
    return row[_TS]


def device(row: Row) -> str:
    return row[_DEVICE]


def figures(rows: Sequence[Row]) -> list[tuple[str, float, float, float, float, float]]:
    """Each row's device, capture time, top-1 score, inference and capture-to-publish ms, and arrival time:
    what the service's histograms observe."""
    return [(r[_DEVICE], r[_TS], r[_SCORE], r[_INFER_MS], r[_TOTAL_MS], r[_RECEIVED]) for r in rows]


def insert(cur: Cursor, rows: Sequence[Row], received: float) -> int:
    """Store each row once per (device_id, seq); in the same transaction, add the rows stored (not the
    duplicates) to their devices' and cameras' counters and to the rollups, and mark each device seen at
    `received` with the model of its newest prediction. Returns the rows stored (the rest were there already)."""
    stored = cur.insert_returning(_INSERT, rows, _RETURNING)
    devices.touch(cur, _seen(rows, stored), received)
    cameras.touch(cur, _by_camera(stored), received)
    rollups.add(cur, stored)
    return len(stored)


def _by_camera(stored: Sequence[rollups.Stored]) -> Counter[tuple[str, str]]:
    """The rows stored of each named camera, by (device id, camera)."""
    return Counter((device_id, camera) for device_id, _seq, _ts, camera, *_ in stored if camera is not None)


def delete_before(cur: Cursor, before: float, limit: int) -> int:
    """Delete up to `limit` of the rows captured before `before`, the oldest first (SQLite); returns how
    many went. Counters and rollups keep them: nothing there is derived from the raw rows again."""
    return cur.execute(_DELETE_BEFORE, (before, limit))


def _seen(rows: Sequence[Row], stored: Sequence[rollups.Stored]) -> list[devices.Seen]:
    """Each device of the batch, in id order: the model of its newest row and what its counters gain."""
    latest: dict[str, Row] = {}
    arrived: Counter[str] = Counter()
    for row in rows:
        arrived[row[_DEVICE]] += 1
        if row[_DEVICE] not in latest or row[_TS] > latest[row[_DEVICE]][_TS]:
            latest[row[_DEVICE]] = row
    seqs: dict[str, list[int]] = defaultdict(list)
    for device_id, seq, *_ in stored:
        seqs[device_id].append(seq)
    seen = []
    for device_id, row in sorted(latest.items()):
        new = seqs[device_id]
        first, last = (min(new), max(new)) if new else (None, None)
        seen.append(devices.Seen(device_id, row[_MODEL_NAME], row[_MODEL_VERSION], len(new), first, last,
                                 arrived[device_id] - len(new)))  # fmt: skip
    return seen
