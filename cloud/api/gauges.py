"""Per-device gauges for `GET /metrics`, read from the store's counters and rollups at scrape time, so
that every instance sharing a fleet reports the same numbers (the ingest counters are each instance's own).
A gauge with no value (no predictions in the window, no registered model) is left out, as
Prometheus expects, rather than written as a made-up number."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from cloud.aggregator.drift import Drift
from cloud.aggregator.windows import DeviceWindow
from cloud.store.devices import FleetDevice

log = logging.getLogger(__name__)

GAUGES = {
    "edgeloop_device_predictions": "predictions stored, all time",
    "edgeloop_device_missing": "predictions never received: gaps in seq between the lowest and highest stored",
    "edgeloop_device_duplicates": "predictions received again and not stored twice, all time",
    "edgeloop_device_window_predictions": "predictions captured in the last {window} s",
    "edgeloop_device_window_mean_confidence": "mean top-1 score of the last {window} s",
    "edgeloop_device_window_low_confidence_share": "share of the last {window} s's predictions scored under {low}",
    "edgeloop_device_window_fps": "predictions per second over the last {window} s",
    "edgeloop_device_fps": "frames per second the device last reported",
    "edgeloop_device_label_drift": "Jensen-Shannon distance of the last {window} s's labels to the training labels",
}


def escape(value: str) -> str:
    """A label value in the text format: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def values(device: FleetDevice, window: DeviceWindow, drift: Drift) -> dict[str, float | None]:
    return {
        "edgeloop_device_predictions": device.predictions,
        "edgeloop_device_missing": device.missing,
        "edgeloop_device_duplicates": device.duplicates,
        "edgeloop_device_window_predictions": window.total.predictions,
        "edgeloop_device_window_mean_confidence": window.total.mean,
        "edgeloop_device_window_low_confidence_share": window.total.low_share,
        "edgeloop_device_window_fps": window.fps,
        "edgeloop_device_fps": device.fps,
        "edgeloop_device_label_drift": drift.value,
    }


def render(devices: Mapping[str, Mapping[str, float | None]], window_s: float, low_threshold: float) -> str:
    """`devices`: device id -> gauge name -> value (None: not written)."""
    lines = []
    for name, help_text in GAUGES.items():
        lines += [
            f"# HELP {name} {help_text.format(window=f'{window_s:g}', low=low_threshold)}",
            f"# TYPE {name} gauge",
        ]
        lines += [
            f'{name}{{device="{escape(device)}"}} {gauges[name]}'
            for device, gauges in sorted(devices.items())
            if gauges[name] is not None
        ]
    return "\n".join(lines) + "\n"
