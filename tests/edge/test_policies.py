"""Publish policy and telemetry readings: the small decisions of the pipeline (sample picking: test_samples.py)."""

import sys
import types

from edge import telemetry
from edge.cameras import PublishPolicy


def test_every_frame() -> None:
    policy = PublishPolicy("every", 1000)
    assert all(policy.should_publish("a", t) for t in range(5))


def test_on_label_change() -> None:
    policy = PublishPolicy("change", 1000)
    labels = ["a", "a", "b", "b", "a"]
    assert [policy.should_publish(label, i) for i, label in enumerate(labels)] == [True, False, True, False, True]


def test_at_most_every_interval() -> None:
    policy = PublishPolicy("interval", 500)
    times = [0.0, 0.1, 0.49, 0.5, 0.7, 1.01]
    assert [policy.should_publish("a", t) for t in times] == [True, False, False, True, False, True]


def test_off_a_jetson_telemetry_comes_from_psutil() -> None:
    stats = telemetry.system_stats()  # jetson-stats is installed; its service is not running here
    assert isinstance(stats, telemetry.PsutilStats)
    reading = stats.read()
    assert 0 <= reading["cpu_percent"] <= 100
    assert 0 < reading["memory_percent"] < 100


def test_on_a_jetson_telemetry_maps_jtop_readings(monkeypatch) -> None:
    class FakeJtop:  # the hardware edge: what jtop reports on a Jetson Orin
        def __init__(self) -> None:
            self.stats = {"GPU": 37.5, "Temp CPU": 48.1, "Temp GPU": 46.9, "Power TOT": 7321}

        def start(self) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setitem(sys.modules, "jtop", types.SimpleNamespace(jtop=FakeJtop))
    stats = telemetry.system_stats()
    reading = stats.read()
    assert isinstance(stats, telemetry.JetsonStats)
    assert reading["gpu_percent"] == 37.5
    assert reading["temperatures"] == {"CPU": 48.1, "GPU": 46.9}
    assert reading["power_mw"] == 7321
