"""Reads of the predictions over a sliding window, by capture time (`ts`): one grouped query for the
whole fleet, and a device's score histogram and latency ranks, in SQL that SQLite and PostgreSQL share."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import NamedTuple

from cloud.store.db import Database

# The index (device_id, ts) serves each device's range; GROUP BY keeps the fleet to one round trip.
_GROUPS = """SELECT device_id, model_name, model_version, label, COUNT(*), SUM(score),
    SUM(CASE WHEN score < ? THEN 1 ELSE 0 END), MIN(ts), MAX(ts), SUM(infer_ms), SUM(total_ms)
    FROM predictions WHERE device_id IN ({devices}) AND ts >= ?
    GROUP BY device_id, model_name, model_version, label"""

# Nearest-rank percentiles: window functions are in SQLite (3.25+) and PostgreSQL alike.
_RANKED = """SELECT ri, rt, infer_ms, total_ms FROM (
    SELECT infer_ms, total_ms, ROW_NUMBER() OVER (ORDER BY infer_ms) AS ri, ROW_NUMBER() OVER (ORDER BY total_ms) AS rt
    FROM predictions WHERE device_id = ? AND ts >= ?) ranked
    WHERE ri IN ({ranks}) OR rt IN ({ranks})"""


class LabelGroup(NamedTuple):
    """A device's predictions of one label by one model version in the window."""

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


def label_groups(db: Database, device_ids: Sequence[str], since: float, low_threshold: float) -> list[LabelGroup]:
    if not device_ids:
        return []
    sql = _GROUPS.format(devices=", ".join("?" for _ in device_ids))
    groups = [LabelGroup(*row) for row in db.query(sql, (low_threshold, *device_ids, since))]
    return [g._replace(low=int(g.low)) for g in groups]  # a SUM: an int whatever type the driver hands back


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
