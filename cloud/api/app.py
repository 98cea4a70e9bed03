"""The HTTP API (FastAPI, so the OpenAPI schema is at /openapi.json). Reads come straight from the
store; nothing here writes what devices sent."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse
from pydantic import BaseModel, Field

from cloud.aggregator.drift import DriftBasis, fleet_drift
from cloud.aggregator.metrics import Metrics
from cloud.aggregator.windows import LOW_CONFIDENCE, fleet_windows
from cloud.aggregator.writer import sample_path
from cloud.api import gauges
from cloud.api.window import Confidence, Window, confidence_report, window_report
from cloud.store import Database
from edge import protocol

SAMPLE_ID = re.compile(r"^[0-9a-f]{64}$")
DASHBOARD = Path(__file__).with_name("dashboard.html")


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
    message: str | None
    window: float = Field(description="seconds behind the window_ fields and drift")
    window_predictions: int
    window_fps: float | None
    drift: float | None = Field(description="Jensen–Shannon distance (base 2) to the model's training labels")
    drift_basis: DriftBasis


class SampleOut(BaseModel):
    id: str
    device_id: str
    seq: int
    ts: float
    predicted: str
    score: float
    reason: str
    status: str
    label: str | None
    model: protocol.ModelRef
    url: str


DEVICES = """SELECT d.device_id, d.state, d.last_seen, d.model_name, d.model_version, d.device_group, d.backend,
    d.fps, d.message, COALESCE(p.n, 0), COALESCE(p.lo, 0), COALESCE(p.hi, 0)
    FROM devices d LEFT JOIN (
        SELECT device_id, COUNT(*) AS n, MIN(seq) AS lo, MAX(seq) AS hi FROM predictions GROUP BY device_id
    ) p ON p.device_id = d.device_id ORDER BY d.device_id"""
WINDOW = Query(None, gt=0, description="seconds back from now (default: the service's window)")
LOW = Query(LOW_CONFIDENCE, ge=0, le=1, description="a top-1 score under this is low confidence")


def create_app(
    db: Database, metrics: Metrics, data_dir: Path, routers: Sequence[APIRouter] = (), window_s: float = 300.0
) -> FastAPI:
    """`window_s`: the window of /metrics, and of /api/devices and /window when a request names none."""
    app = FastAPI(title="edgeloop", description="fleet predictions, samples and models")
    for extra in routers:
        app.include_router(extra)

    def fleet(seconds: float):
        """The devices' rows, their windows and their drift."""
        rows = db.query(DEVICES)
        windows = fleet_windows(db, [r[0] for r in rows], time.time() - seconds)
        return rows, windows, fleet_drift(db, windows.values())

    @app.get("/api/devices", response_model=list[Device])
    def devices(window: float | None = WINDOW) -> list[Device]:
        seconds = window or window_s
        rows, windows, drifts = fleet(seconds)
        return [
            Device(
                device_id=row[0],
                state=row[1],
                last_seen=row[2],
                model=protocol.ModelRef(name=row[3], version=row[4]) if row[3] else None,
                device_group=row[5],
                backend=row[6],
                fps=row[7],
                message=row[8],
                predictions=row[9],
                missing=(row[11] - row[10] + 1 - row[9]) if row[9] else 0,  # gaps in seq
                window=seconds,
                window_predictions=windows[row[0]].total.predictions,
                window_fps=windows[row[0]].fps,
                drift=drifts[row[0]].value,
                drift_basis=drifts[row[0]].basis,
            )
            for row in rows
        ]

    @app.get("/api/devices/{device_id}/labels", response_model=dict[str, int])
    def labels(device_id: str, window: float = Query(3600, gt=0, description="seconds back from now")) -> dict:
        rows = db.query(
            "SELECT label, COUNT(*) FROM predictions WHERE device_id = ? AND ts >= ? GROUP BY label ORDER BY label",
            (device_id, time.time() - window),
        )
        return dict(rows)

    @app.get("/api/devices/{device_id}/confidence", response_model=Confidence)
    def confidence(
        device_id: str,
        window: float = Query(3600, gt=0, description="seconds back from now"),
        low_threshold: float = LOW,
    ) -> Confidence:
        since = time.time() - window
        return confidence_report(db, fleet_windows(db, [device_id], since, low_threshold)[device_id])

    @app.get("/api/devices/{device_id}/window", response_model=Window)
    def device_window(device_id: str, window: float | None = WINDOW, low_threshold: float = LOW) -> Window:
        """Counts, confidence, latency, fps and label drift of one device over a sliding window."""
        telemetry = db.query("SELECT fps FROM devices WHERE device_id = ?", (device_id,))
        if not telemetry:
            raise HTTPException(404, "no such device")
        seconds = window or window_s
        found = fleet_windows(db, [device_id], time.time() - seconds, low_threshold)
        return window_report(db, found[device_id], seconds, fleet_drift(db, found.values())[device_id], telemetry[0][0])

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> str:
        return DASHBOARD.read_text()

    @app.get("/api/samples", response_model=list[SampleOut])
    def samples(status: Literal["unlabelled", "labelled"] = "unlabelled", limit: int = Query(100, ge=1, le=1000)):
        rows = db.query(
            """SELECT id, device_id, seq, ts, predicted, score, reason, status, label, model_name, model_version
               FROM samples WHERE status = ? ORDER BY received DESC LIMIT ?""",
            (status, limit),
        )
        columns = ("id", "device_id", "seq", "ts", "predicted", "score", "reason", "status", "label")
        return [
            SampleOut(
                **dict(zip(columns, r[:9], strict=True)),
                model=protocol.ModelRef(name=r[9], version=r[10]),
                url=f"/samples/{r[0]}.jpg",
            )
            for r in rows
        ]

    @app.get("/samples/{sample_id}.jpg", response_class=FileResponse)
    def sample_picture(sample_id: str) -> FileResponse:
        path = sample_path(data_dir, sample_id) if SAMPLE_ID.match(sample_id) else None
        if path is None or not path.is_file():
            raise HTTPException(404, "no such sample")
        return FileResponse(path, media_type="image/jpeg")

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus() -> str:
        rows, windows, drifts = fleet(window_s)
        per_device = {r[0]: gauges.values(windows[r[0]], drifts[r[0]], r[7]) for r in rows}
        return metrics.render() + gauges.render(per_device, window_s, LOW_CONFIDENCE)

    return app
