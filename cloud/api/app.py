"""The HTTP API (FastAPI, so the OpenAPI schema is at /openapi.json). Reads come straight from the
store; nothing here writes what devices sent."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel

from cloud.aggregator.metrics import Metrics
from cloud.api import samples
from cloud.store import Database
from edge import protocol

DASHBOARD = Path(__file__).with_name("dashboard.html")
LOW_CONFIDENCE = 0.5
BINS = 10


class Device(BaseModel):
    device_id: str
    state: str
    last_seen: float
    model: protocol.ModelRef | None
    backend: str | None
    fps: float | None
    predictions: int
    missing: int
    message: str | None


class Confidence(BaseModel):
    predictions: int
    mean: float
    low_threshold: float
    low_share: float
    bins: list[float]  # lower edge of each bin of the top-1 score
    counts: list[int]


DEVICES = """SELECT d.device_id, d.state, d.last_seen, d.model_name, d.model_version, d.backend, d.fps, d.message,
    COALESCE(p.n, 0), COALESCE(p.lo, 0), COALESCE(p.hi, 0)
    FROM devices d LEFT JOIN (
        SELECT device_id, COUNT(*) AS n, MIN(seq) AS lo, MAX(seq) AS hi FROM predictions GROUP BY device_id
    ) p ON p.device_id = d.device_id ORDER BY d.device_id"""


# A histogram of top-1 scores in portable SQL (no FLOOR in SQLite, CAST rounds in PostgreSQL).
CONFIDENCE = "SELECT COUNT(*), SUM(score), {} FROM predictions WHERE device_id = ? AND ts >= ?".format(
    ", ".join(
        f"SUM(CASE WHEN score >= {i / BINS} AND (score < {(i + 1) / BINS} OR {i + 1} = {BINS}) THEN 1 ELSE 0 END)"
        for i in range(BINS)
    )
)


def create_app(db: Database, metrics: Metrics, data_dir: Path, routers: Sequence[APIRouter] = ()) -> FastAPI:
    app = FastAPI(title="edgeloop", description="fleet predictions, samples and models")
    for extra in routers:
        app.include_router(extra)

    @app.get("/api/devices", response_model=list[Device])
    def devices() -> list[Device]:
        return [
            Device(
                device_id=row[0],
                state=row[1],
                last_seen=row[2],
                model=protocol.ModelRef(name=row[3], version=row[4]) if row[3] else None,
                backend=row[5],
                fps=row[6],
                message=row[7],
                predictions=row[8],
                missing=(row[10] - row[9] + 1 - row[8]) if row[8] else 0,  # gaps in seq
            )
            for row in db.query(DEVICES)
        ]

    @app.get("/api/devices/{device_id}/labels", response_model=dict[str, int])
    def labels(device_id: str, window: float = Query(3600, gt=0, description="seconds back from now")) -> dict:
        rows = db.query(
            "SELECT label, COUNT(*) FROM predictions WHERE device_id = ? AND ts >= ? GROUP BY label ORDER BY label",
            (device_id, time.time() - window),
        )
        return dict(rows)

    @app.get("/api/devices/{device_id}/confidence", response_model=Confidence)
    def confidence(device_id: str, window: float = Query(3600, gt=0, description="seconds back from now")):
        row = db.query(CONFIDENCE, (device_id, time.time() - window))[0]
        n, total, counts = row[0], row[1] or 0.0, [int(c or 0) for c in row[2:]]
        return Confidence(
            predictions=n,
            mean=total / n if n else 0.0,
            low_threshold=LOW_CONFIDENCE,
            low_share=sum(counts[: int(LOW_CONFIDENCE * BINS)]) / n if n else 0.0,
            bins=[i / BINS for i in range(BINS)],
            counts=counts,
        )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> str:
        return DASHBOARD.read_text()

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus() -> str:
        return metrics.render()

    app.include_router(samples.router(db, data_dir, metrics))
    return app
