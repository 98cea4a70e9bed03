"""Reads of the predictions over a sliding window, by capture time (`ts`), in SQL that SQLite and
PostgreSQL share. A window's whole minutes come from the minute rollups (cloud.store.rollups), the whole
ten seconds of its first minute from the ten-second ones, and only its first few seconds from the raw
rows, through the (device_id, ts) index: each read costs the devices times the window's minutes (plus
ten seconds of rows), whatever history the store holds. What the rollups cannot answer (a
low-confidence threshold other than the one they count, a histogram, latency ranks) reads the raw rows
of the window alone, through the same index. Each read may keep to one of a device's cameras."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from typing import NamedTuple

from cloud.store import devices
from cloud.store.db import Database
from cloud.store.schema import LOW

# GROUP BY keeps the fleet to one round trip per table; a camera of '' is a device's only one, as in the rollups.
_RAW_GROUPS = """SELECT device_id, COALESCE(camera, '') AS cam, model_name, model_version, label, COUNT(*), SUM(score),
    SUM(CASE WHEN score < ? THEN 1 ELSE 0 END), MIN(ts), MAX(ts), SUM(infer_ms), SUM(total_ms)
    FROM predictions WHERE device_id IN ({devices}) AND ts >= ? AND ts < ?{camera}
    GROUP BY device_id, cam, model_name, model_version, label"""

# The same groups from the window's whole tens (of its first minute), then its whole minutes (schema.WIDTHS).
_ROLLUP_GROUPS = """SELECT device_id, camera, model_name, model_version, label, SUM(predictions), SUM(score_sum),
    SUM(low), MIN(first_ts), MAX(last_ts), SUM(infer_ms_sum), SUM(total_ms_sum) FROM (
        SELECT * FROM prediction_rollups
        WHERE device_id IN ({devices}) AND width = 10 AND bucket >= ? AND bucket < ?{camera}
        UNION ALL
        SELECT * FROM prediction_rollups WHERE device_id IN ({devices}) AND width = 60 AND bucket >= ?{camera}) parts
    GROUP BY device_id, camera, model_name, model_version, label"""

# Nearest-rank percentiles: window functions are in SQLite (3.25+) and PostgreSQL alike.
_RANKED = """SELECT ri, rt, infer_ms, total_ms FROM (
    SELECT infer_ms, total_ms, ROW_NUMBER() OVER (ORDER BY infer_ms) AS ri, ROW_NUMBER() OVER (ORDER BY total_ms) AS rt
    FROM predictions WHERE device_id = ? AND ts >= ?{camera}) ranked
    WHERE ri IN ({ranks}) OR rt IN ({ranks})"""

_CAMERA = " AND camera = ?"  # what keeps a read to one camera, with the camera's name as its last parameter


class LabelGroup(NamedTuple):
    """A device's predictions of one label by one model version from one camera in (part of) the window."""

    device_id: str
    camera: str  # '' for a device's only camera, which predictions do not name
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


def label_groups(
    db: Database, device_ids: Sequence[str], since: float, low_threshold: float, camera: str | None = None
) -> list[LabelGroup]:
    """The window's predictions by device, camera, model version and label (of one camera only, when
    named); a group may come in two parts (its first seconds, and its whole tens and minutes), which the
    caller adds up."""
    if not device_ids:
        return []
    marks = ", ".join("?" for _ in device_ids)
    only, clause = ((camera,), _CAMERA) if camera is not None else ((), "")
    raw = _RAW_GROUPS.format(devices=marks, camera=clause)
    if low_threshold != LOW:
        return _groups(db, raw, (low_threshold, *device_ids, since, math.inf, *only))
    minute, ten = int(-(-since // 60)), int(-(-since // 10))  # the first of each that starts at or after `since`
    rollups = (*device_ids, ten, minute * 6, *only, *device_ids, minute, *only)
    return _groups(db, raw, (LOW, *device_ids, since, ten * 10, *only)) + _groups(
        db, _ROLLUP_GROUPS.format(devices=marks, camera=clause), rollups
    )


def _groups(db: Database, sql: str, params: Sequence[object]) -> list[LabelGroup]:
    groups = [LabelGroup(*row) for row in db.query(sql, params)]
    return [
        g._replace(predictions=int(g.predictions), low=int(g.low)) for g in groups
    ]  # SUMs: ints whatever the driver


def label_counts(db: Database, device_id: str, since: float, camera: str | None = None) -> dict[str, int]:
    """How often the device (or one of its cameras) predicted each label since `since`, by label."""
    counts: dict[str, int] = {}
    for g in label_groups(db, [device_id], since, LOW, camera):
        counts[g.label] = counts.get(g.label, 0) + g.predictions
    return dict(sorted(counts.items()))


def confidence(db: Database, model_name: str, since: float) -> Confidence:
    """Every version of `model_name` across the fleet since `since`."""
    groups = [g for g in label_groups(db, devices.ids(db), since, LOW) if g.model_name == model_name]
    n = sum(g.predictions for g in groups)
    return Confidence(n, sum(g.score_sum for g in groups) / n if n else None)


@cache
def _histogram(bins: int, one_camera: bool) -> str:
    """A histogram of top-1 scores in portable SQL (no FLOOR in SQLite, CAST rounds in PostgreSQL)."""
    return "SELECT {} FROM predictions WHERE device_id = ? AND ts >= ?{}".format(
        ", ".join(
            f"SUM(CASE WHEN score >= {i / bins} AND (score < {(i + 1) / bins} OR {i + 1} = {bins}) THEN 1 ELSE 0 END)"
            for i in range(bins)
        ),
        _CAMERA if one_camera else "",
    )


def score_histogram(db: Database, device_id: str, since: float, bins: int, camera: str | None = None) -> list[int]:
    """The device's (or one camera's) predictions per bin of the top-1 score, `bins` equal bins over [0, 1]."""
    params = (device_id, since) if camera is None else (device_id, since, camera)
    return [int(c or 0) for c in db.query(_histogram(bins, camera is not None), params)[0]]


def ranked(db: Database, device_id: str, since: float, ranks: Sequence[int], camera: str | None = None) -> list[Ranked]:
    """The predictions (of one camera, when named) whose rank by inference or by total latency is one of `ranks`."""
    sql = _RANKED.format(ranks=", ".join("?" for _ in ranks), camera=_CAMERA if camera is not None else "")
    only = () if camera is None else (camera,)
    return [Ranked(*row) for row in db.query(sql, (device_id, since, *only, *ranks, *ranks))]
