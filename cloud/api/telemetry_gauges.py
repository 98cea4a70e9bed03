"""Gauges and counters from each device's latest telemetry (kept as it arrived in the devices table):
a Jetson's GPU load, temperatures and power, any device's CPU and memory, its outbox and its model
updates. A figure the device did not send (a PC has no GPU load) is left out; a counter the device
keeps starts again from 0 when it restarts, which Prometheus's rate() expects."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

log = logging.getLogger(__name__)

REJECTED = "rejected "  # the updates' figures by reason: "rejected <reason>" (edge/updates.py)
# (name, documentation, key in "system", what it is divided by to be in the unit)
SYSTEM = (
    ("edgeloop_device_gpu_ratio", "GPU load (jetson-stats)", "gpu_percent", 100),
    ("edgeloop_device_cpu_ratio", "CPU load", "cpu_percent", 100),
    ("edgeloop_device_memory_ratio", "memory in use", "memory_percent", 100),
    ("edgeloop_device_power_watts", "power drawn by the board (jetson-stats)", "power_mw", 1000),
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def families(rows: Iterable[tuple[str, str]]) -> Iterator[Metric]:
    """`rows`: (device id, its latest telemetry's JSON)."""
    device = ["device"]
    system = {name: GaugeMetricFamily(name, doc, labels=device) for name, doc, _, _ in SYSTEM}
    temperature = GaugeMetricFamily(
        "edgeloop_device_temperature_celsius", "temperature by sensor", labels=["device", "sensor"]
    )
    pending = GaugeMetricFamily("edgeloop_device_outbox_pending", "predictions waiting in the outbox", labels=device)
    dropped = CounterMetricFamily(
        "edgeloop_device_outbox_dropped",
        "predictions the outbox dropped (full), since the device started",
        labels=device,
    )
    updates = CounterMetricFamily(
        "edgeloop_device_model_updates",
        "model announcements received, swapped in and rejected, since the device started",
        labels=["device", "outcome"],
    )
    rejected = CounterMetricFamily(
        "edgeloop_device_model_updates_rejected",
        "model updates rejected, by reason (a failed download among them), since the device started",
        labels=["device", "reason"],
    )
    for device_id, text in rows:
        try:
            telemetry = _dict(json.loads(text))
        except ValueError:
            log.warning("unreadable telemetry stored for %s", device_id)
            continue
        stats = _dict(telemetry.get("system"))
        for name, _, key, divisor in SYSTEM:
            if (value := _number(stats.get(key))) is not None:
                system[name].add_metric([device_id], value / divisor)
        for sensor, value in sorted(_dict(stats.get("temperatures")).items()):
            if (reading := _number(value)) is not None:
                temperature.add_metric([device_id, sensor], reading)
        outbox = _dict(telemetry.get("outbox"))
        if (value := _number(outbox.get("pending"))) is not None:
            pending.add_metric([device_id], value)
        if (value := _number(outbox.get("dropped"))) is not None:
            dropped.add_metric([device_id], value)
        for key, count in sorted(_dict(telemetry.get("updates")).items()):
            if (value := _number(count)) is None:
                continue
            if key.startswith(REJECTED):
                rejected.add_metric([device_id, key.removeprefix(REJECTED)], value)
            elif key != "rejected":
                updates.add_metric([device_id, key], value)
    yield from system.values()
    yield from (temperature, pending, dropped, updates, rejected)
