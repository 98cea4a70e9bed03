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
from pydantic import BaseModel

from cloud.aggregator.metrics import Metrics
from cloud.aggregator.writer import sample_path
from cloud.store import Database
from edge import protocol

SAMPLE_ID = re.compile(r"^[0-9a-f]{64}$")
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
        return metrics.render()

    return app
