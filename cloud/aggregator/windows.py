"""Sliding-window aggregates of the stored predictions, by prediction time (`ts`): what each device
predicted lately, how sure it was, how fast it ran. One grouped query serves the whole fleet (the
fleet table and /metrics); the histogram and the latency percentiles are read for one device."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from cloud.store import Database
from common import protocol

log = logging.getLogger(__name__)

BINS = 10
LOW_CONFIDENCE = 0.5  # a top-1 score under this is a low-confidence prediction, unless a caller says otherwise
PERCENTILES = (50, 95)

# The index (device_id, ts) serves each device's range; GROUP BY keeps the fleet to one round trip.
GROUPS = """SELECT device_id, model_name, model_version, label, COUNT(*), SUM(score),
    SUM(CASE WHEN score < ? THEN 1 ELSE 0 END), MIN(ts), MAX(ts), SUM(infer_ms), SUM(total_ms)
    FROM predictions WHERE device_id IN ({devices}) AND ts >= ?
    GROUP BY device_id, model_name, model_version, label"""

# A histogram of top-1 scores in portable SQL (no FLOOR in SQLite, CAST rounds in PostgreSQL).
HISTOGRAM = "SELECT {} FROM predictions WHERE device_id = ? AND ts >= ?".format(
    ", ".join(
        f"SUM(CASE WHEN score >= {i / BINS} AND (score < {(i + 1) / BINS} OR {i + 1} = {BINS}) THEN 1 ELSE 0 END)"
        for i in range(BINS)
    )
)

# Nearest-rank percentiles: window functions are in SQLite (3.25+) and PostgreSQL alike.
RANKED = """SELECT ri, rt, infer_ms, total_ms FROM (
    SELECT infer_ms, total_ms, ROW_NUMBER() OVER (ORDER BY infer_ms) AS ri, ROW_NUMBER() OVER (ORDER BY total_ms) AS rt
    FROM predictions WHERE device_id = ? AND ts >= ?) ranked
    WHERE ri IN ({ranks}) OR rt IN ({ranks})"""


@dataclass
class Tally:
    """Predictions of one group: how many, their summed top-1 score, how many under the threshold."""

    predictions: int = 0
    score_sum: float = 0.0
    low: int = 0

    def add(self, predictions: int, score_sum: float, low: int) -> None:
        self.predictions += predictions
        self.score_sum += score_sum
        self.low += low

    @property
    def mean(self) -> float | None:
        return self.score_sum / self.predictions if self.predictions else None

    @property
    def low_share(self) -> float | None:
        return self.low / self.predictions if self.predictions else None


@dataclass
class DeviceWindow:
    """One device's predictions since `since`: overall, per label, per model version."""

    device_id: str
    since: float
    low_threshold: float
    total: Tally = field(default_factory=Tally)
    labels: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    versions: dict[protocol.ModelRef, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    version_last_ts: dict[protocol.ModelRef, float] = field(default_factory=dict)
    first_ts: float | None = None
    last_ts: float | None = None
    infer_ms_sum: float = 0.0
    total_ms_sum: float = 0.0

    @property
    def fps(self) -> float | None:
        """Predictions per second over the time they span: n predictions are n - 1 intervals."""
        if self.total.predictions < 2 or self.last_ts == self.first_ts:
            return None
        return (self.total.predictions - 1) / (self.last_ts - self.first_ts)

    @property
    def latest_model(self) -> protocol.ModelRef | None:
        """The version of the newest prediction: the model the device runs now."""
        return max(self.version_last_ts, key=self.version_last_ts.__getitem__, default=None)

    def add(self, model: protocol.ModelRef, label: str, row: tuple) -> None:
        """One row of GROUPS: the predictions of one label by one model version."""
        n, scores, low, lo, hi, infer_ms, total_ms = row
        low = int(low)
        self.total.add(n, scores, low)
        self.labels[label].add(n, scores, low)
        self.versions[model][label] += n
        self.version_last_ts[model] = max(hi, self.version_last_ts.get(model, hi))
        self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
        self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)
        self.infer_ms_sum += infer_ms
        self.total_ms_sum += total_ms


def fleet_windows(
    db: Database, device_ids: list[str], since: float, low_threshold: float = LOW_CONFIDENCE
) -> dict[str, DeviceWindow]:
    """Each device's window (an empty one for a device with no prediction in it)."""
    windows = {d: DeviceWindow(d, since, low_threshold) for d in device_ids}
    if not device_ids:
        return windows
    sql = GROUPS.format(devices=", ".join("?" for _ in device_ids))
    for device_id, name, version, label, *row in db.query(sql, (low_threshold, *device_ids, since)):
        windows[device_id].add(protocol.ModelRef(name=name, version=version), label, tuple(row))
    return windows


def histogram(db: Database, device_id: str, since: float) -> tuple[list[float], list[int]]:
    """Lower edge of each bin of the top-1 score, and the predictions in it."""
    row = db.query(HISTOGRAM, (device_id, since))[0]
    return [i / BINS for i in range(BINS)], [int(c or 0) for c in row]


def latency_percentiles(db: Database, window: DeviceWindow) -> dict[str, dict[int, float]]:
    """{"infer": {50: ms, 95: ms}, "total": {…}} by nearest rank (the smallest value at or above p% of them)."""
    n = window.total.predictions
    if not n:
        return {"infer": {}, "total": {}}
    ranks = {p: -(-p * n // 100) for p in PERCENTILES}
    sql = RANKED.format(ranks=", ".join("?" for _ in ranks))
    rows = db.query(sql, (window.device_id, window.since, *ranks.values(), *ranks.values()))
    by_rank = {"infer": {ri: infer for ri, _, infer, _ in rows}, "total": {rt: total for _, rt, _, total in rows}}
    return {kind: {p: values[rank] for p, rank in ranks.items() if rank in values} for kind, values in by_rank.items()}
