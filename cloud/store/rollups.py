"""The prediction_rollups table: the predictions of each device, camera, model version and label per bucket of
a minute and of ten seconds, added to by the writer in the transaction that stores the rows, so that a
window of any length costs its minutes (and the tens and seconds of its first minute), never the rows
behind them. Only rows actually stored are added (a duplicate never is), and nothing here is derived
from the raw rows later: deleting old raw rows leaves every bucket as it is."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from cloud.store.cursor import Cursor
from cloud.store.schema import LOW, WIDTHS

# What a stored row begins with, in this order (the predictions module's rows do; what follows is not read here).
COLUMNS = ("device_id", "seq", "ts", "camera", "model_name", "model_version", "label", "score", "infer_ms", "total_ms")
Stored = tuple[Any, ...]

_COLUMNS = ("device_id", "width", "bucket", "camera", "model_name", "model_version", "label", "predictions",
            "score_sum", "low", "first_ts", "last_ts", "infer_ms_sum", "total_ms_sum")  # fmt: skip
_ADD = """ON CONFLICT (device_id, width, bucket, camera, model_name, model_version, label) DO UPDATE SET
    predictions = prediction_rollups.predictions + excluded.predictions,
    score_sum = prediction_rollups.score_sum + excluded.score_sum,
    low = prediction_rollups.low + excluded.low,
    first_ts = MIN2(prediction_rollups.first_ts, excluded.first_ts),
    last_ts = MAX2(prediction_rollups.last_ts, excluded.last_ts),
    infer_ms_sum = prediction_rollups.infer_ms_sum + excluded.infer_ms_sum,
    total_ms_sum = prediction_rollups.total_ms_sum + excluded.total_ms_sum"""


MINUTE, TEN = WIDTHS
_Key = tuple[str, int, str, str, str, str]  # device_id, bucket, camera ('' for none), model_name, model_version, label


def bucket(ts: float, width: int) -> int:
    """The bucket a capture time falls in: floor(ts / width), exactly as the schema's backfill computes it."""
    return int(ts // width)


def rows(stored: Iterable[Stored]) -> list[tuple]:
    """What rows add to their buckets, one upsert per bucket and group, in key order (two instances adding
    to the same buckets then lock them in the same order): the tens from the rows, the minutes from the
    tens (minute m holds tens 6m to 6m + 5 exactly)."""
    by_ten: dict[_Key, list[Stored]] = defaultdict(list)
    for row in stored:
        by_ten[(row[0], int(row[2] // TEN), row[3] or "", row[4], row[5], row[6])].append(row)
    tens = {key: _sums(rows) for key, rows in by_ten.items()}
    minutes: dict[_Key, list] = {}
    for (device_id, ten, *group), sums in tens.items():
        _fold(minutes, (device_id, ten // (MINUTE // TEN), *group), *sums)
    upserts = [(key[0], TEN, *key[1:], *sums) for key, sums in tens.items()]
    upserts += [(key[0], MINUTE, *key[1:], *sums) for key, sums in minutes.items()]
    return sorted(upserts)


def write(cur: Cursor, upserts: list[tuple]) -> None:
    """Add the upserts `rows` worked out to their buckets."""
    cur.insert_rows("prediction_rollups", _COLUMNS, upserts, _ADD)


def _sums(rows: list[Stored]) -> list:
    """One bucket's sums from its rows, column by column (builtins over columns, not a step per row)."""
    _device, _seq, ts, _camera, _name, _version, _label, score, infer_ms, total_ms, *_ = zip(*rows, strict=True)
    return [len(rows), sum(score), sum(s < LOW for s in score), min(ts), max(ts), sum(infer_ms), sum(total_ms)]


def delete_before(cur: Cursor, device_id: str, width: int, before: int, span: int) -> int:
    """Delete the device's buckets of `width` numbered under `before`, at most the `span` oldest numbers of
    them (a short transaction, through the primary key); returns the rows deleted, 0 once none is left."""
    cur.execute("SELECT MIN(bucket) FROM prediction_rollups WHERE device_id = ? AND width = ?", (device_id, width))
    (lowest,) = cur.fetchall()[0]
    if lowest is None or lowest >= before:
        return 0
    return cur.execute(
        "DELETE FROM prediction_rollups WHERE device_id = ? AND width = ? AND bucket < ?",
        (device_id, width, min(before, lowest + span)),
    )


def _fold(groups: dict[_Key, list], key, n, score_sum, low, first_ts, last_ts, infer_ms_sum, total_ms_sum) -> None:
    group = groups.get(key)
    if group is None:
        groups[key] = [n, score_sum, low, first_ts, last_ts, infer_ms_sum, total_ms_sum]
        return
    group[0] += n
    group[1] += score_sum
    group[2] += low
    if first_ts < group[3]:
        group[3] = first_ts
    if last_ts > group[4]:
        group[4] = last_ts
    group[5] += infer_ms_sum
    group[6] += total_ms_sum
