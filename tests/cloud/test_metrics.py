"""The pieces of `/metrics` that no running service shows cheaply: a histogram's buckets at their
bounds, and the gauges of telemetry that is odd (a figure that is not a number, a device that sent
none, a row that is not JSON)."""

import json

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cloud.aggregator.histograms import Histogram
from cloud.aggregator.metrics import Metrics, observation
from cloud.api import telemetry_gauges


def samples(*collected) -> dict[tuple[str, tuple], float]:
    text = "".join(generate_latest(_registry(c)).decode() for c in collected)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text)
            for s in f.samples}  # fmt: skip


def _registry(collector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


class _Families:
    def __init__(self, rows) -> None:
        self.rows = rows

    def collect(self):
        return telemetry_gauges.families(self.rows)


def test_a_value_on_a_bound_is_counted_in_that_bucket_and_each_label_keeps_its_own() -> None:
    histogram = Histogram("x_seconds", "x", [0.1, 0.5], "device")
    histogram.observe(np.array([0.1, 0.2, 0.5, 7.0]), np.array([0, 0, 1, 1]), ["a", "b"])
    histogram.observe(np.array([0.05]), np.array([0]), ["b"])
    family = histogram.family()
    buckets = [(s.labels["le"], s.value) for s in family.samples if s.name.endswith("_bucket")]
    assert buckets[:3] == [("0.1", 1), ("0.5", 2), ("+Inf", 2)]  # a: 0.1 on its bound, then 0.2
    assert buckets[3:] == [("0.1", 1), ("0.5", 2), ("+Inf", 3)]  # b: 0.05, 0.5, 7.0


def test_the_ingest_observes_lag_latency_and_confidence_and_counts_rejections_by_reason() -> None:
    metrics = Metrics()
    metrics.record(observation([("cam-1", 100.0, 0.3, 4.0, 30.0, 100.2), ("cam-1", 100.0, 0.9, 6.0, 30.0, 99.0)]))
    metrics.reject("schema")
    metrics.reject("schema")
    found = samples(metrics)
    assert found["edgeloop_ingest_lag_seconds_count", ()] == 2
    assert found["edgeloop_ingest_lag_seconds_sum", ()] == pytest.approx(0.2)  # a clock ahead of ours counts as 0
    assert found["edgeloop_device_inference_seconds_sum", (("device", "cam-1"),)] == pytest.approx(0.01)
    assert found["edgeloop_device_confidence_bucket", (("device", "cam-1"), ("le", "0.5"))] == 1
    assert found["edgeloop_rejected_total", (("reason", "schema"),)] == 2
    assert not any(name == "edgeloop_rejected_total" and not labels for name, labels in found)


def test_telemetry_gauges_take_numbers_only_and_skip_what_is_not() -> None:
    jetson = {
        "system": {
            "gpu_percent": 50,
            "power_mw": 4000,
            "cpu_percent": "high",
            "temperatures": {"GPU": 41.5, "bad": None},
        },
        "outbox": {"pending": 2},
        "updates": {"rejected": 1, "rejected replayed": 1, "swapped": 3},
    }
    pc = {"system": {"cpu_percent": 12.0, "temperatures": []}, "updates": "none"}
    found = samples(_Families([("jetson-1", json.dumps(jetson)), ("pc-1", json.dumps(pc)), ("broken", "{")]))
    assert found["edgeloop_device_gpu_ratio", (("device", "jetson-1"),)] == 0.5
    assert found["edgeloop_device_power_watts", (("device", "jetson-1"),)] == 4.0
    assert found["edgeloop_device_temperature_celsius", (("device", "jetson-1"), ("sensor", "GPU"))] == 41.5
    assert found["edgeloop_device_cpu_ratio", (("device", "pc-1"),)] == 0.12
    assert ("edgeloop_device_cpu_ratio", (("device", "jetson-1"),)) not in found, "not a number: left out"
    assert found["edgeloop_device_model_updates_rejected_total", (("device", "jetson-1"), ("reason", "replayed"))] == 1
    assert found["edgeloop_device_model_updates_total", (("device", "jetson-1"), ("outcome", "swapped"))] == 3
    assert not [key for key in found if key[1] and key[1][0] == ("device", "broken")]
