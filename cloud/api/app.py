"""The HTTP API (FastAPI, so the OpenAPI schema is at /openapi.json; the interactive docs are off: they
load their scripts from a CDN). Reads come straight from the store; nothing here writes what devices
sent. Every request passes the guard (cloud/api/guard.py) and the access policy (cloud/api/auth.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from pydantic import BaseModel, Field

from cloud.aggregator.drift import DriftBasis, fleet_drift
from cloud.aggregator.metrics import Metrics
from cloud.aggregator.windows import LOW_CONFIDENCE, fleet_windows
from cloud.api import gauges, samples
from cloud.api.auth import Access, protect
from cloud.api.guard import Guard, page_policy
from cloud.api.window import Confidence, Window, confidence_report, window_report
from cloud.selection.queue import Queue
from cloud.store import Database
from cloud.store import cameras as camera_store
from cloud.store import devices as device_store
from cloud.store import windows as window_store
from common import protocol

DASHBOARD = Path(__file__).with_name("dashboard.html")
ANYONE = Access()  # no token: every read and write open
RATE_S = 60.0  # a camera's rate is over the last minute: one that stopped shows 0 within it


class Camera(BaseModel):
    """One of a device's named cameras (a device with one camera names none and lists none)."""

    name: str
    predictions: int = Field(description="stored, all time")
    rate: float = Field(description=f"predictions per second over the last {RATE_S:g} seconds (by capture time)")
    last_seen: float | None = Field(description="when its newest prediction arrived; None: only telemetry named it")
    fps: float | None = Field(description="frames it classified per second, as its device's latest telemetry said")
    dropped: int | None = Field(description="frames replaced by a newer one before inference took them (telemetry)")
    reopens: int | None = Field(description="times its source was opened again after failing (telemetry)")


class Device(BaseModel):
    device_id: str
    state: str
    last_seen: float
    model: protocol.ModelRef | None
    device_group: str | None
    backend: str | None
    fps: float | None
    predictions: int
    missing: int
    duplicates: int = Field(description="predictions received again and not stored twice")
    message: str | None
    window: float = Field(description="seconds behind the window_ fields and drift")
    window_predictions: int
    window_fps: float | None
    drift: float | None = Field(description="Jensen–Shannon distance (base 2) to the model's training labels")
    drift_basis: DriftBasis
    cameras: list[Camera] = Field(description="its named cameras, by name (empty: it has one camera)")


WINDOW = Query(None, gt=0, description="seconds back from now (default: the service's window)")
CAMERA = Query(None, min_length=1, max_length=64, description="only this camera's predictions (default: all of them)")
LOW = Query(LOW_CONFIDENCE, ge=0, le=1, description="a top-1 score under this is low confidence")


def create_app(
    db: Database,
    metrics: Metrics,
    data_dir: Path,
    routers: Sequence[APIRouter] = (),
    window_s: float = 300.0,
    access: Access = ANYONE,
    queue: Queue | None = None,
) -> FastAPI:
    """`window_s`: the window of /metrics, and of /api/devices and /window when a request names none;
    `access`: who may read and write (the default: anyone); `queue`: the labelling queue's order (None:
    the default policy)."""
    app = FastAPI(title="edgeloop", description="fleet predictions, samples and models", docs_url=None, redoc_url=None)
    protect(app, access)
    app.add_middleware(Guard, access=access)
    scraped = CollectorRegistry()  # the app's own, not prometheus_client's global one: a test runs several
    ProcessCollector(registry=scraped)
    scraped.register(metrics)
    scraped.register(gauges.Fleet(db, window_s))
    for extra in routers:
        app.include_router(extra)

    def fleet(seconds: float):
        """The devices' rows, their windows and their drift."""
        rows = device_store.fleet(db)
        windows = fleet_windows(db, [r.device_id for r in rows], time.time() - seconds)
        return rows, windows, fleet_drift(db, windows.values())

    def cameras() -> dict[str, list[Camera]]:
        """Each device's named cameras with their rate over the last minute (the rollups' tens, for those
        devices only)."""
        named = camera_store.fleet(db)
        minute = fleet_windows(db, list(named), time.time() - RATE_S)
        return {
            device_id: [
                Camera(
                    name=c.camera,
                    predictions=c.predictions,
                    rate=minute[device_id].cameras[c.camera] / RATE_S,
                    last_seen=c.last_seen,
                    fps=c.fps,
                    dropped=None if c.dropped is None else int(c.dropped),
                    reopens=None if c.reopens is None else int(c.reopens),
                )
                for c in listed
            ]
            for device_id, listed in named.items()
        }

    @app.get("/api/devices", response_model=list[Device])
    def devices(window: float | None = WINDOW) -> list[Device]:
        seconds = window or window_s
        rows, windows, drifts = fleet(seconds)
        named = cameras()
        return [
            Device(
                device_id=row.device_id,
                state=row.state,
                last_seen=row.last_seen,
                model=protocol.ModelRef(name=row.model_name, version=row.model_version) if row.model_name else None,
                device_group=row.device_group,
                backend=row.backend,
                fps=row.fps,
                message=row.message,
                predictions=row.predictions,
                missing=row.missing,
                duplicates=row.duplicates,
                window=seconds,
                window_predictions=windows[row.device_id].total.predictions,
                window_fps=windows[row.device_id].fps,
                drift=drifts[row.device_id].value,
                drift_basis=drifts[row.device_id].basis,
                cameras=named.get(row.device_id, []),
            )
            for row in rows
        ]

    @app.get("/api/devices/{device_id}/labels", response_model=dict[str, int])
    def labels(
        device_id: str,
        window: float = Query(3600, gt=0, description="seconds back from now"),
        camera: str | None = CAMERA,
    ) -> dict:
        return window_store.label_counts(db, device_id, time.time() - window, camera)

    @app.get("/api/devices/{device_id}/confidence", response_model=Confidence)
    def confidence(
        device_id: str,
        window: float = Query(3600, gt=0, description="seconds back from now"),
        low_threshold: float = LOW,
        camera: str | None = CAMERA,
    ) -> Confidence:
        since = time.time() - window
        return confidence_report(db, fleet_windows(db, [device_id], since, low_threshold, camera)[device_id])

    @app.get("/api/devices/{device_id}/window", response_model=Window)
    def device_window(
        device_id: str, window: float | None = WINDOW, low_threshold: float = LOW, camera: str | None = CAMERA
    ) -> Window:
        """Counts, confidence, latency, fps and label drift of one device (or one of its cameras) over a
        sliding window."""
        device = device_store.get(db, device_id)
        if device is None:
            raise HTTPException(404, "no such device")
        seconds = window or window_s
        found = fleet_windows(db, [device_id], time.time() - seconds, low_threshold, camera)
        fps = device.fps
        if camera is not None:
            named = camera_store.get(db, device_id, camera)
            fps = named.fps if named else None
        return window_report(db, found[device_id], seconds, fleet_drift(db, found.values())[device_id], fps)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> HTMLResponse:
        html = DASHBOARD.read_text()
        return HTMLResponse(html, headers={"Content-Security-Policy": page_policy(html)})

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus() -> Response:
        """The Prometheus text format: the ingest's counters and histograms, the fleet's figures from the
        store (cloud/api/gauges.py), the process's CPU and memory."""
        return Response(generate_latest(scraped), media_type=CONTENT_TYPE_LATEST)

    app.include_router(samples.router(db, data_dir, metrics, queue or Queue(db, data_dir)))
    return app
