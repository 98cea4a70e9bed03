"""Sliding-window aggregates of the stored predictions, by prediction time (`ts`): what each device
predicted lately, how sure it was, how fast it ran. One grouped query serves the whole fleet (the
fleet table and /metrics); the histogram and the latency percentiles are read for one device."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

from cloud.store import Database
from cloud.store import windows as window_store
from common import protocol

log = logging.getLogger(__name__)

BINS = 10
LOW_CONFIDENCE = window_store.LOW  # a top-1 score under this is low confidence, unless a caller says otherwise
PERCENTILES = (50, 95)


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
    """One device's predictions since `since` (of one camera, when `camera` names one): overall, per
    label, per model version, and how many each camera made ('' for a device's only camera)."""

    device_id: str
    since: float
    low_threshold: float
    camera: str | None = None
    total: Tally = field(default_factory=Tally)
    cameras: Counter[str] = field(default_factory=Counter)
    labels: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    versions: dict[protocol.ModelRef, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    version_last_ts: dict[protocol.ModelRef, float] = field(default_factory=dict)
    first_ts: float | None = None
    last_ts: float | None = None
    last_label: str | None = None  # the newest prediction's
    infer_ms_sum: float = 0.0
    total_ms_sum: float = 0.0

    @property
    def fps(self) -> float | None:
        """Predictions per second over the time they span: n predictions are n - 1 intervals."""
        if self.total.predictions < 2 or self.last_ts is None or self.first_ts is None or self.last_ts == self.first_ts:
            return None
        return (self.total.predictions - 1) / (self.last_ts - self.first_ts)

    @property
    def latest_model(self) -> protocol.ModelRef | None:
        """The version of the newest prediction: the model the device runs now."""
        return max(self.version_last_ts, key=self.version_last_ts.__getitem__, default=None)

    def add(self, group: window_store.LabelGroup) -> None:
        """The predictions of one label by one model version."""
        model = _model(group.model_name, group.model_version)
        n, scores, low = group.predictions, group.score_sum, group.low
        self.total.add(n, scores, low)
        self.cameras[group.camera] += n
        self.labels[group.label].add(n, scores, low)
        self.versions[model][group.label] += n
        self.version_last_ts[model] = max(group.last_ts, self.version_last_ts.get(model, group.last_ts))
        self.first_ts = group.first_ts if self.first_ts is None else min(self.first_ts, group.first_ts)
        if self.last_ts is None or group.last_ts > self.last_ts:
            self.last_ts, self.last_label = group.last_ts, group.label
        self.infer_ms_sum += group.infer_ms_sum
        self.total_ms_sum += group.total_ms_sum


@lru_cache(maxsize=1024)
def _model(name: str, version: str) -> protocol.ModelRef:
    """One instance per version: dicts keyed by it then match by identity, not by pydantic's slow __eq__."""
    return protocol.ModelRef(name=name, version=version)


def fleet_windows(
    db: Database,
    device_ids: list[str],
    since: float,
    low_threshold: float = LOW_CONFIDENCE,
    camera: str | None = None,
) -> dict[str, DeviceWindow]:
    """Each device's window (an empty one for a device with no prediction in it), of one camera when named."""
    windows = {d: DeviceWindow(d, since, low_threshold, camera) for d in device_ids}
    for group in window_store.label_groups(db, device_ids, since, low_threshold, camera):
        windows[group.device_id].add(group)
    return windows


def histogram(db: Database, window: DeviceWindow) -> tuple[list[float], list[int]]:
    """Lower edge of each bin of the top-1 score, and the window's predictions in it."""
    counts = window_store.score_histogram(db, window.device_id, window.since, BINS, window.camera)
    return [i / BINS for i in range(BINS)], counts


def latency_percentiles(db: Database, window: DeviceWindow) -> dict[str, dict[int, float]]:
    """{"infer": {50: ms, 95: ms}, "total": {…}} by nearest rank (the smallest value at or above p% of them)."""
    n = window.total.predictions
    if not n:
        return {"infer": {}, "total": {}}
    ranks = {p: -(-p * n // 100) for p in PERCENTILES}
    rows = window_store.ranked(db, window.device_id, window.since, list(ranks.values()), window.camera)
    by_rank = {"infer": {r.infer_rank: r.infer_ms for r in rows}, "total": {r.total_rank: r.total_ms for r in rows}}
    return {kind: {p: values[rank] for p, rank in ranks.items() if rank in values} for kind, values in by_rank.items()}
