"""One device's window report (`GET /api/devices/{id}/window`) as pydantic models, so that the
OpenAPI schema documents every field, built from the aggregates and the drift."""

from __future__ import annotations

import logging

from pydantic import BaseModel, Field

from cloud.aggregator import windows
from cloud.aggregator.drift import Drift, DriftBasis
from cloud.store import Database
from common import protocol

log = logging.getLogger(__name__)


class Confidence(BaseModel):
    predictions: int
    mean: float
    low_threshold: float
    low_share: float
    bins: list[float] = Field(description="lower edge of each bin of the top-1 score")
    counts: list[int]


class LabelWindow(BaseModel):
    label: str
    predictions: int
    mean_confidence: float
    low_share: float = Field(description="share of this label's predictions scored under low_threshold")


class LatencyWindow(BaseModel):
    mean: float | None
    p50: float | None
    p95: float | None = Field(description="nearest rank: the smallest value at or above 95% of the window's")


class Window(BaseModel):
    device_id: str
    camera: str | None = Field(description="the one camera of the device it counts; None: all of them")
    window: float = Field(description="seconds back from now, by the predictions' capture time (ts)")
    since: float
    predictions: int
    first_ts: float | None
    last_ts: float | None
    confidence: Confidence
    labels: list[LabelWindow]
    infer_ms: LatencyWindow
    total_ms: LatencyWindow
    fps: float | None = Field(description="predictions per second between the window's first and last prediction")
    telemetry_fps: float | None = Field(description="the frame rate the device (or the camera) last reported")
    model: protocol.ModelRef | None = Field(description="the version of the newest prediction: drift's basis")
    drift: float | None = Field(description="Jensen–Shannon distance (base 2) to the model's training labels")
    drift_basis: DriftBasis = Field(description="training_labels when drift is a number, else why it is null")


def confidence_report(db: Database, window: windows.DeviceWindow) -> Confidence:
    """What /confidence always returned (mean and low share 0 for an empty window), now also inside /window."""
    bins, counts = windows.histogram(db, window)
    return Confidence(
        predictions=window.total.predictions,
        mean=window.total.mean or 0.0,
        low_threshold=window.low_threshold,
        low_share=window.total.low_share or 0.0,
        bins=bins,
        counts=counts,
    )


def window_report(
    db: Database, window: windows.DeviceWindow, seconds: float, drift: Drift, telemetry_fps: float | None
) -> Window:
    """The whole window of one device; the histogram and the percentiles cost a query each, so only here."""
    n = window.total.predictions
    percentiles = windows.latency_percentiles(db, window)
    latency = {
        kind: LatencyWindow(mean=total / n if n else None, p50=percentiles[kind].get(50), p95=percentiles[kind].get(95))
        for kind, total in (("infer", window.infer_ms_sum), ("total", window.total_ms_sum))
    }
    return Window(
        device_id=window.device_id,
        camera=window.camera,
        window=seconds,
        since=window.since,
        predictions=n,
        first_ts=window.first_ts,
        last_ts=window.last_ts,
        confidence=confidence_report(db, window),
        labels=[
            LabelWindow(label=label, predictions=t.predictions, mean_confidence=t.mean, low_share=t.low_share)
            for label, t in sorted(window.labels.items())
        ],
        infer_ms=latency["infer"],
        total_ms=latency["total"],
        fps=window.fps,
        telemetry_fps=telemetry_fps,
        model=drift.model,
        drift=drift.value,
        drift_basis=drift.basis,
    )
