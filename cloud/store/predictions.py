"""The predictions table: rows as the aggregator batches and stores them (every read of them is a window:
cloud.store.windows). A prediction waits in a batch as a plain tuple of plain values,
the one layout below, because the garbage collector stops tracking such a tuple (not a named tuple's
instance), while thousands of pydantic models waiting in a batch made collections cost more than the
parsing itself. Nothing outside this module indexes one but the rollups, which read its first columns
(rollups.COLUMNS)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any, Final, NamedTuple

from pydantic_core import to_json

from cloud.store import cameras, devices, rollups
from cloud.store.cursor import Cursor

# The rollups' columns first: a stored row is what rollups.rows reads, as it is.
_COLUMNS = (*rollups.COLUMNS, "top_k", "received")
Row = tuple[str, int, float, str | None, str, str, str, float, float, float, str, float]
_DEVICE: Final = 0  # positions in _COLUMNS
_TS: Final = 2
_CAMERA: Final = 3
_MODEL_NAME: Final = 4
_MODEL_VERSION: Final = 5
_SCORE: Final = 7
_INFER_MS: Final = 8
_TOTAL_MS: Final = 9
_RECEIVED: Final = 11
_device = itemgetter(_DEVICE)
_key = itemgetter(_DEVICE, 1)  # (device_id, seq): a device's predictions in the order it made them
assert [_COLUMNS[i] for i in (_CAMERA, _MODEL_NAME, _SCORE, _INFER_MS, _TOTAL_MS, _RECEIVED)] == [
    "camera", "model_name", "score", "infer_ms", "total_ms", "received"
]  # fmt: skip

# One batch of a device's oldest rows, through its key (SQLite: PostgreSQL drops whole days). An index on ts
# alone would serve the whole fleet in one statement, but every insert would pay for it: 14 % of the writer.
_DELETE_BEFORE = (
    "DELETE FROM predictions WHERE rowid IN (SELECT rowid FROM predictions WHERE device_id = ? AND ts < ? LIMIT ?)"
)


def prediction_row(device_id: str, p: dict[str, Any], received: float) -> Row:
    """A device's prediction (alone or from a batch), as `protocol.predictions_data` reads it, as the
    values it is stored as, taken as soon as it arrives."""
    top_k = p["top_k"]
    best, model, latency = top_k[0], p["model"], p["latency_ms"]
    return (device_id, p["seq"], p["ts"], p.get("camera"), model["name"], model["version"], best["label"],
            best["score"], latency["infer"], latency["total"], to_json(top_k).decode(), received)  # fmt: skip


def captured(row: Row) -> float:
    """The row's capture time (`ts`)."""
    return row[_TS]


def device(row: Row) -> str:
    return row[_DEVICE]


def figures(rows: Sequence[Row]) -> list[tuple[str, float, float, float, float, float]]:
    """Each row's device, capture time, top-1 score, inference and capture-to-publish ms, and arrival time:
    what the service's histograms observe."""
    return [(r[_DEVICE], r[_TS], r[_SCORE], r[_INFER_MS], r[_TOTAL_MS], r[_RECEIVED]) for r in rows]


class Prepared(NamedTuple):
    """Rows sorted by device and seq (each device's run of them lands on the same few index pages), with
    what storing every one of them adds to the devices' and cameras' counters and to the rollups, worked out
    before the transaction: the ingest's batcher prepares the next batch while the writer commits the last,
    so that the writer's transaction runs SQL only (unless some rows were there already)."""

    rows: list[Row]
    seen: list[devices.Seen]
    cameras: Counter[tuple[str, str]]
    rollups: list[tuple]


def prepare(rows: Sequence[Row]) -> Prepared:
    rows = sorted(rows, key=_key)
    return _prepared(rows, rows)


def _prepared(rows: list[Row], stored: list[Row]) -> Prepared:
    return Prepared(stored, _seen(rows, stored), _by_camera(stored), rollups.rows(stored))


def insert(cur: Cursor, rows: Sequence[Row] | Prepared, received: float) -> Sequence[Row]:
    """Store each row once per (device_id, seq, ts) (a device resends a prediction with its capture time); in
    the same transaction, add the rows stored (not the duplicates) to their devices' and cameras' counters and
    to the rollups, and mark each device seen at `received` with the model of its newest prediction. Returns
    the rows stored (the rest were there already)."""
    prepared = rows if isinstance(rows, Prepared) else prepare(rows)
    stored = cur.insert_new("predictions", _COLUMNS, prepared.rows)
    if stored is not prepared.rows:
        prepared = _prepared(prepared.rows, sorted(stored, key=_key))
    devices.touch(cur, prepared.seen, received)
    cameras.touch(cur, prepared.cameras, received)
    rollups.write(cur, prepared.rollups)
    return prepared.rows


def _by_camera(stored: Sequence[Row]) -> Counter[tuple[str, str]]:
    """The rows stored of each named camera, by (device id, camera)."""
    return Counter((row[_DEVICE], row[_CAMERA]) for row in stored if row[_CAMERA] is not None)


def delete_before(cur: Cursor, device_id: str, before: float, limit: int) -> int:
    """Delete up to `limit` of the device's rows captured before `before`, the oldest first (SQLite); returns
    how many went. Counters and rollups keep them: nothing there is derived from the raw rows again."""
    return cur.execute(_DELETE_BEFORE, (device_id, before, limit))


def _seen(rows: Sequence[Row], stored: Sequence[Row]) -> list[devices.Seen]:
    """Each device of the batch, in id order (both sorted by device and seq): the model of its newest row
    and what its counters gain."""
    new = {device_id: list(group) for device_id, group in groupby(stored, _device)}
    seen = []
    for device_id, group in groupby(rows, _device):
        arrived = list(group)
        newest = max(arrived, key=itemgetter(_TS))
        mine = new.get(device_id, ())
        first, last = (mine[0][1], mine[-1][1]) if mine else (None, None)
        seen.append(devices.Seen(device_id, newest[_MODEL_NAME], newest[_MODEL_VERSION], len(mine), first, last,
                                 len(arrived) - len(mine)))  # fmt: skip
    return seen
