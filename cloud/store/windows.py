"""Reads of the predictions over a sliding window, by capture time (`ts`), in SQL that SQLite and
PostgreSQL share. A window's whole minutes come from the minute rollups (cloud.store.rollups), the whole
ten seconds of its first minute from the ten-second ones, and only its first few seconds from the raw
rows, through the (device_id, ts) index: each read costs the devices times the window's minutes (plus
ten seconds of rows), whatever history the store holds. What the rollups cannot answer (a
low-confidence threshold other than the one they count, a histogram, latency ranks) reads the raw rows
of the window alone, through the same index."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from typing import NamedTuple

from cloud.store import devices
from cloud.store.db import Database
from cloud.store.schema import LOW

# GROUP BY keeps the fleet to one round trip per table.
_RAW_GROUPS = """SELECT device_id, model_name, model_version, label, COUNT(*), SUM(score),
    SUM(CASE WHEN score < ? THEN 1 ELSE 0 END), MIN(ts), MAX(ts), SUM(infer_ms), SUM(total_ms)
    FROM predictions WHERE device_id IN ({devices}) AND ts >= ? AND ts < ?
    GROUP BY device_id, model_name, model_version, label"""

# The same groups from the window's whole tens (of its first minute), then its whole minutes (schema.WIDTHS).
_ROLLUP_GROUPS = """SELECT device_id, model_name, model_version, label, SUM(predictions), SUM(score_sum), SUM(low),
    MIN(first_ts), MAX(last_ts), SUM(infer_ms_sum), SUM(total_ms_sum) FROM (
        SELECT * FROM prediction_rollups WHERE device_id IN ({devices}) AND width = 10 AND bucket >= ? AND bucket < ?
        UNION ALL
        SELECT * FROM prediction_rollups WHERE device_id IN ({devices}) AND width = 60 AND bucket >= ?) parts
    GROUP BY device_id, model_name, model_version, label"""

# Nearest-rank percentiles: window functions are in SQLite (3.25+) and PostgreSQL alike.
_RANKED = """SELECT ri, rt, infer_ms, total_ms FROM (
    SELECT infer_ms, total_ms, ROW_NUMBER() OVER (ORDER BY infer_ms) AS ri, ROW_NUMBER() OVER (ORDER BY total_ms) AS rt
    FROM predictions WHERE device_id = ? AND ts >= ?) ranked
    WHERE ri IN ({ranks}) OR rt IN ({ranks})"""


class LabelGroup(NamedTuple):
    """A device's predictions of one label by one model version in (part of) the window."""

    device_id: str
    model_name: str
    model_version: str
    label: str
    predictions: int
    score_sum: float
    low: int  # scored under the threshold asked for
    first_ts: float
    last_ts: float
    infer_ms_sum: float
    total_ms_sum: float


class Ranked(NamedTuple):
    """A prediction's rank by inference latency and by total latency (1 for the fastest), and both latencies."""

    infer_rank: int
    total_rank: int
    infer_ms: float
    total_ms: float


class Confidence(NamedTuple):
    """A model's predictions across the fleet: how many, and their mean top-1 score (None for none)."""

    predictions: int
    mean: float | None


def label_groups(db: Database, device_ids: Sequence[str], since: float, low_threshold: float) -> list[LabelGroup]:
    """The window's predictions by device, model version and label; a group may come in two parts (its
    first seconds, and its whole tens and minutes), which the caller adds up."""
    if not device_ids:
        return []
    marks = ", ".join("?" for _ in device_ids)
    raw = _RAW_GROUPS.format(devices=marks)
    if low_threshold != LOW:
        return _groups(db, raw, (low_threshold, *device_ids, since, math.inf))
    minute, ten = int(-(-since // 60)), int(-(-since // 10))  # the first of each that starts at or after `since`
    rollups = (*device_ids, ten, minute * 6, *device_ids, minute)
    return _groups(db, raw, (LOW, *device_ids, since, ten * 10)) + _groups(
        db, _ROLLUP_GROUPS.format(devices=marks), rollups
    )


def _groups(db: Database, sql: str, params: Sequence[object]) -> list[LabelGroup]:
    groups = [LabelGroup(*row) for row in db.query(sql, params)]
    return [
        g._replace(predictions=int(g.predictions), low=int(g.low)) for g in groups
    ]  # SUMs: ints whatever the driver


def label_counts(db: Database, device_id: str, since: float) -> dict[str, int]:
    """How often the device predicted each label since `since`, by label."""
    counts: dict[str, int] = {}
    for g in label_groups(db, [device_id], since, LOW):
        counts[g.label] = counts.get(g.label, 0) + g.predictions
    return dict(sorted(counts.items()))


def confidence(db: Database, model_name: str, since: float) -> Confidence:
    """Every version of `model_name` across the fleet since `since`."""
    groups = [g for g in label_groups(db, devices.ids(db), since, LOW) if g.model_name == model_name]
    n = sum(g.predictions for g in groups)
    return Confidence(n, sum(g.score_sum for g in groups) / n if n else None)


@cache
def _histogram(bins: int) -> str:
    """A histogram of top-1 scores in portable SQL (no FLOOR in SQLite, CAST rounds in PostgreSQL)."""
    return "SELECT {} FROM predictions WHERE device_id = ? AND ts >= ?".format(
        ", ".join(
            f"SUM(CASE WHEN score >= {i / bins} AND (score < {(i + 1) / bins} OR {i + 1} = {bins}) THEN 1 ELSE 0 END)"
            for i in range(bins)
        )
    )


def score_histogram(db: Database, device_id: str, since: float, bins: int) -> list[int]:
    """The device's predictions per bin of the top-1 score, `bins` equal bins over [0, 1]."""
    return [int(c or 0) for c in db.query(_histogram(bins), (device_id, since))[0]]


def ranked(db: Database, device_id: str, since: float, ranks: Sequence[int]) -> list[Ranked]:
    """The predictions whose rank by inference or by total latency is one of `ranks`."""
    sql = _RANKED.format(ranks=", ".join("?" for _ in ranks))
    return [Ranked(*row) for row in db.query(sql, (device_id, since, *ranks, *ranks))]
