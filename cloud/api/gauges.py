"""The fleet's figures for `GET /metrics`, read from the store at scrape time, so that every instance
sharing a fleet reports the same numbers (the ingest's counters and histograms are each instance's own):
the devices' counters and state, the label drift over the service's window, the devices' latest
telemetry (cloud/api/telemetry_gauges.py) and the training jobs. Reads are one row per device (the
counters the writer keeps, the rollups of one window) and one per model and job state. A figure with
no value (no predictions in the window, no registered model) is left out, as Prometheus expects."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from cloud.aggregator.drift import fleet_drift
from cloud.aggregator.windows import fleet_windows
from cloud.api import telemetry_gauges
from cloud.store import Database
from cloud.store import devices as device_store
from cloud.store import jobs as job_store

FINISHED = ("succeeded", "failed")  # counted for ever; the other states come and go


class Fleet(Collector):
    """`window_s`: the window of the label drift."""

    def __init__(self, db: Database, window_s: float) -> None:
        self.db = db
        self.window_s = window_s

    def collect(self) -> Iterator[Metric]:
        yield from self._devices()
        yield from telemetry_gauges.families(device_store.telemetry(self.db))
        yield from self._training()

    def _devices(self) -> Iterator[Metric]:
        rows = device_store.fleet(self.db)
        windows = fleet_windows(self.db, [r.device_id for r in rows], time.time() - self.window_s)
        drifts = fleet_drift(self.db, windows.values())
        device = ["device"]
        up = GaugeMetricFamily("edgeloop_device_up", "1 while the device's status says online", labels=device)
        seen = GaugeMetricFamily(
            "edgeloop_device_last_seen_timestamp_seconds", "when the device was last heard from", labels=device
        )
        model = InfoMetricFamily(
            "edgeloop_device_model", "the model, backend and rollout group the device last reported",
            labels=["device", "model", "version", "backend", "group"],
        )  # fmt: skip
        predictions = CounterMetricFamily("edgeloop_device_predictions", "predictions stored", labels=device)
        duplicates = CounterMetricFamily(
            "edgeloop_device_duplicates", "predictions received again and not stored twice", labels=device
        )
        missing = GaugeMetricFamily(
            "edgeloop_device_missing", "predictions never received: gaps in seq between the lowest and highest stored",
            labels=device,
        )  # fmt: skip
        fps = GaugeMetricFamily("edgeloop_device_fps", "frames per second the device last reported", labels=device)
        drift = GaugeMetricFamily(
            "edgeloop_device_label_drift",
            f"Jensen-Shannon distance of the last {self.window_s:g} s's labels to the training labels",
            labels=device,
        )
        for row in rows:
            ids = [row.device_id]
            up.add_metric(ids, float(row.state == "online"))
            seen.add_metric(ids, row.last_seen)
            if row.model_name:
                labels = [row.model_name, row.model_version or "", row.backend or "", row.device_group or ""]
                model.add_metric([row.device_id, *labels], {})
            predictions.add_metric(ids, row.predictions)
            duplicates.add_metric(ids, row.duplicates)
            missing.add_metric(ids, row.missing)
            if row.fps is not None:
                fps.add_metric(ids, row.fps)
            if (value := drifts[row.device_id].value) is not None:
                drift.add_metric(ids, value)
        yield from (up, seen, model, predictions, duplicates, missing, fps, drift)

    def _training(self) -> Iterator[Metric]:
        active = GaugeMetricFamily(
            "edgeloop_training_jobs", "training jobs queued or running", labels=["model", "state"]
        )
        finished = CounterMetricFamily(
            "edgeloop_training_jobs_finished", "training jobs finished, by outcome", labels=["model", "state"]
        )
        counts: dict[str, dict[str, int]] = {}
        for name, state, count in job_store.counts(self.db):
            counts.setdefault(name, dict.fromkeys(FINISHED, 0))[state] = count
        for name, states in counts.items():
            for state, count in states.items():
                (finished if state in FINISHED else active).add_metric([name, state], count)
        yield from (active, finished)
