"""The ingest's own counters and histograms, each instance's own (Prometheus adds up the instances'):
a prometheus_client collector that `GET /metrics` registers beside the store's figures
(cloud/api/gauges.py)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from cloud.aggregator.histograms import Histogram

COUNTERS = {
    "messages_in": "MQTT messages received",
    "commits": "batches committed to the store",
    "stored": "predictions stored",
    "duplicates": "predictions received again and not stored twice",
    "samples_stored": "samples stored",
    "store_errors": "batches the database refused (retried, not acknowledged)",
    "samples_labelled": "samples a person labelled",
    "samples_discarded": "samples a person discarded",
    "samples_expired": "samples nobody labelled, deleted after --sample-retain-days",
    "too_old": "predictions captured before --retain-days ago, refused (their first copy may be gone)",
    "predictions_expired": "raw predictions deleted after --retain-days (SQLite)",
    "prediction_partitions_dropped": "days of raw predictions dropped after --retain-days (PostgreSQL)",
}
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
INFER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
TOTAL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


class Observation(NamedTuple):
    """Predictions as the histograms take them: values by device index (`names[groups[i]]`)."""

    names: list[str]
    groups: np.ndarray
    lag: np.ndarray
    infer_s: np.ndarray
    total_s: np.ndarray
    score: np.ndarray


def observation(predictions: Sequence[tuple[str, float, float, float, float, float]]) -> Observation | None:
    """(device, capture time, top-1 score, inference ms, capture-to-publish ms, arrival time) of each
    prediction, as `Metrics.record` counts them, worked out without its lock (the ingest's batcher does it for the
    next batch while the writer commits the last); None for no predictions."""
    if not predictions:
        return None
    devices, ts, score, infer_ms, total_ms, received = zip(*predictions, strict=True)
    index: dict[str, int] = {}
    groups = np.array([index.setdefault(device, len(index)) for device in devices])
    lag = np.maximum(np.array(received) - np.array(ts), 0.0)
    return Observation(list(index), groups, lag, np.array(infer_ms) / 1000, np.array(total_ms) / 1000, np.array(score))


class Metrics(Collector):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self._lag = Histogram(
            "edgeloop_ingest_lag_seconds", "time from a prediction's capture to its arrival here", LAG_BUCKETS
        )
        self._infer = Histogram(
            "edgeloop_device_inference_seconds", "time in the device's backend, as it reported", INFER_BUCKETS, "device"
        )
        self._total = Histogram(
            "edgeloop_device_capture_to_publish_seconds",
            "time from capture to publish on the device, as it reported",
            TOTAL_BUCKETS,
            "device",
        )
        self._confidence = Histogram(
            "edgeloop_device_confidence", "top-1 score of each prediction received", CONFIDENCE_BUCKETS, "device"
        )

    def add(self, **counts: int) -> None:
        with self._lock:
            self.counts.update(counts)

    def reject(self, reason: str) -> None:
        with self._lock:
            self.rejected[reason] += 1

    def record(self, observed: Observation | None) -> None:
        """The predictions a batch stored (a redelivery is observed once, when first stored: confidence and
        latency count each prediction once), as `observation` worked them out: only the bucket counts are
        added here, under the lock."""
        if observed is None:
            return
        with self._lock:
            self._lag.observe(observed.lag, np.zeros(len(observed.lag), dtype=np.int64), [""])
            self._infer.observe(observed.infer_s, observed.groups, observed.names)
            self._total.observe(observed.total_s, observed.groups, observed.names)
            self._confidence.observe(observed.score, observed.groups, observed.names)

    def collect(self) -> Iterator[Metric]:
        """From a copy taken under the lock: the writer waits for the copy, not for the rendering."""
        with self._lock:
            counts, rejections = dict(self.counts), sorted(self.rejected.items())
            histograms = [h.copy() for h in (self._lag, self._infer, self._total, self._confidence)]
        for name, documentation in COUNTERS.items():
            yield CounterMetricFamily(f"edgeloop_{name}", documentation, counts.get(name, 0))
        rejected = CounterMetricFamily("edgeloop_rejected", "messages rejected, by reason", labels=["reason"])
        for reason, count in rejections:
            rejected.add_metric([reason], count)
        yield rejected
        for histogram in histograms:
            yield histogram.family()
