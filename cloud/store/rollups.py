"""The prediction_rollups table: the predictions of each device, model version and label per bucket of
a minute and of ten seconds, added to by the writer in the transaction that stores the rows, so that a
window of any length costs its minutes (and the tens and seconds of its first minute), never the rows
behind them. Only rows actually stored are added (a duplicate never is), and nothing here is derived
from the raw rows later: deleting old raw rows leaves every bucket as it is."""

from __future__ import annotations

from collections.abc import Iterable

from cloud.store.db import Cursor
from cloud.store.schema import LOW, WIDTHS

# What the writer hands over of each stored row, in this order (as its INSERT … RETURNING gives them).
COLUMNS = ("device_id", "seq", "ts", "model_name", "model_version", "label", "score", "infer_ms", "total_ms")
Stored = tuple[str, int, float, str, str, str, float, float, float]

_INSERT = """INSERT INTO prediction_rollups (device_id, width, bucket, model_name, model_version, label, predictions,
    score_sum, low, first_ts, last_ts, infer_ms_sum, total_ms_sum)"""
_ADD = """ON CONFLICT (device_id, width, bucket, model_name, model_version, label) DO UPDATE SET
    predictions = prediction_rollups.predictions + excluded.predictions,
    score_sum = prediction_rollups.score_sum + excluded.score_sum,
    low = prediction_rollups.low + excluded.low,
    first_ts = MIN2(prediction_rollups.first_ts, excluded.first_ts),
    last_ts = MAX2(prediction_rollups.last_ts, excluded.last_ts),
    infer_ms_sum = prediction_rollups.infer_ms_sum + excluded.infer_ms_sum,
    total_ms_sum = prediction_rollups.total_ms_sum + excluded.total_ms_sum"""


def bucket(ts: float, width: int) -> int:
    """The bucket a capture time falls in: floor(ts / width), exactly as the schema's backfill computes it."""
    return int(ts // width)


def add(cur: Cursor, stored: Iterable[Stored]) -> None:
    """Add rows just stored to their buckets: one upsert per bucket and group, in key order (two
    instances adding to the same buckets then lock them in the same order)."""
    groups: dict[tuple[str, int, int, str, str, str], list] = {}
    for device_id, _seq, ts, model_name, model_version, label, score, infer_ms, total_ms in stored:
        for width in WIDTHS:
            key = (device_id, width, bucket(ts, width), model_name, model_version, label)
            group = groups.get(key)
            if group is None:
                groups[key] = [1, score, int(score < LOW), ts, ts, infer_ms, total_ms]
            else:
                group[0] += 1
                group[1] += score
                group[2] += score < LOW
                group[3] = min(group[3], ts)
                group[4] = max(group[4], ts)
                group[5] += infer_ms
                group[6] += total_ms
    cur.insert_rows(_INSERT, [(*key, *group) for key, group in sorted(groups.items())], _ADD)
