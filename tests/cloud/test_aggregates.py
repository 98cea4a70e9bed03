"""Sliding-window aggregates and label drift on SQLite and a real PostgreSQL: predictions written
through the aggregator's writer with known times, scores and latencies, a model registry row, and
the API's numbers checked against figures worked out by hand."""

import math
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from cloud.aggregator.drift import js_distance, largest_drift
from cloud.aggregator.metrics import Metrics
from cloud.aggregator.parse import DeviceUpdate
from cloud.aggregator.writer import Batch, write
from cloud.api.app import create_app
from cloud.store import connect
from cloud.store.predictions import prediction_row
from common import protocol
from tests.support.registry import register

# cam-1's 20 predictions in the window: 12 daisy (8 at 0.9, 4 at 0.3), 6 roses (0.8, 0.6, 0.4 twice), 2 tulips at 0.2
CAM1 = [("daisy", 0.9)] * 8 + [("daisy", 0.3)] * 4 + [("roses", s) for s in (0.8, 0.6, 0.4) * 2] + [("tulips", 0.2)] * 2
INFER_MS = [7, 3, 15, 1, 20, 12, 9, 4, 18, 6, 11, 2, 16, 8, 19, 5, 13, 10, 17, 14]  # 1..20, shuffled


def predictions(device_id: str, labels, start: float, first_seq: int = 1, version: str = "1", infer=None):
    """One prediction every half second from `start`; total latency is 2 * infer + 1 ms."""
    infer = infer or [1.0] * len(labels)
    return [
        prediction_row(
            device_id,
            protocol.Prediction(
                device_id=device_id,
                seq=first_seq + i,
                ts=start + i * 0.5,
                model=protocol.ModelRef(name="flowers", version=version),
                top_k=[protocol.Score(label=label, score=score)],
                latency_ms=protocol.Latency(infer=infer[i], total=2 * infer[i] + 1),
            ).model_dump(),
            time.time(),
        )
        for i, (label, score) in enumerate(labels)
    ]


@pytest.fixture
def api(db_url: str, tmp_path: Path):
    db = connect(db_url)
    now = time.time()
    batch = Batch(
        predictions=[
            *predictions("cam-1", [("daisy", 0.9)], now - 400),  # before the window
            *predictions("cam-1", CAM1, now - 60, first_seq=2, infer=INFER_MS),
            *predictions("cam-2", [("sunflowers", 0.7)] * 5, now - 30),
            *predictions("cam-3", [("daisy", 0.9)] * 4, now - 30, version="2"),  # not in the registry
            *predictions("cam-4", [("daisy", 0.9)] * 3, now - 1000),  # nothing in the window
            *predictions("cam-5", [("tulips", 0.9)] * 4, now - 100, version="0"),  # an older model, then …
            *predictions("cam-5", [("daisy", 0.9)] * 3 + [("roses", 0.9)], now - 50, first_seq=5),  # … version 1
        ],
        updates=[
            DeviceUpdate("cam-1", "telemetry", {"fps": 29.5, "telemetry": "{}"}),
            DeviceUpdate(
                "cam-1", "status", {"state": "online", "message": None, "backend": "tf", "device_group": "canary"}
            ),
        ],
    )
    write(db, tmp_path, batch)
    register(db, "1", {"daisy": 60, "roses": 30, "tulips": 10})
    yield TestClient(create_app(db, Metrics(), tmp_path, window_s=300))
    db.close()


@pytest.fixture
def db(api, db_url: str):
    """The store behind `api`, for what reads it without HTTP."""
    store = connect(db_url)
    yield store
    store.close()


def test_window_counts_confidence_latency_and_fps(api) -> None:
    w = api.get("/api/devices/cam-1/window", params={"window": 300}).json()
    assert w["predictions"] == 20
    assert w["labels"] == [
        {"label": "daisy", "predictions": 12, "mean_confidence": pytest.approx(0.7), "low_share": pytest.approx(1 / 3)},
        {"label": "roses", "predictions": 6, "mean_confidence": pytest.approx(0.6), "low_share": pytest.approx(1 / 3)},
        {"label": "tulips", "predictions": 2, "mean_confidence": pytest.approx(0.2), "low_share": 1.0},
    ]
    confidence = w["confidence"]
    assert confidence["mean"] == pytest.approx(0.62)
    assert confidence["low_threshold"] == 0.5
    assert confidence["low_share"] == pytest.approx(0.4)  # 4 daisy at 0.3, 2 roses at 0.4, 2 tulips at 0.2
    assert confidence["counts"] == [0, 0, 2, 4, 2, 0, 2, 0, 2, 8]
    assert w["infer_ms"] == {"mean": pytest.approx(10.5), "p50": 10, "p95": 19}  # nearest rank: 10th and 19th of 20
    assert w["total_ms"] == {"mean": pytest.approx(22.0), "p50": 21, "p95": 39}
    assert w["fps"] == pytest.approx(2.0)  # 19 intervals over 9.5 s
    assert w["telemetry_fps"] == 29.5
    assert w["model"] == {"name": "flowers", "version": "1"}
    stricter = api.get("/api/devices/cam-1/window", params={"window": 300, "low_threshold": 0.85}).json()
    assert stricter["confidence"]["low_share"] == pytest.approx(0.6)
    assert api.get("/api/devices/cam-1/window", params={"window": 500}).json()["predictions"] == 21


def test_existing_endpoints_agree_with_the_window(api) -> None:
    assert api.get("/api/devices/cam-1/labels", params={"window": 300}).json() == {"daisy": 12, "roses": 6, "tulips": 2}
    confidence = api.get("/api/devices/cam-1/confidence", params={"window": 300}).json()
    assert confidence == api.get("/api/devices/cam-1/window").json()["confidence"]
    assert confidence["bins"] == [i / 10 for i in range(10)]


def test_an_empty_window_and_an_unknown_device(api) -> None:
    w = api.get("/api/devices/cam-4/window").json()
    assert (w["predictions"], w["labels"], w["fps"], w["model"]) == (0, [], None, None)
    assert w["infer_ms"] == {"mean": None, "p50": None, "p95": None}
    assert (w["drift"], w["drift_basis"]) == (None, "no_predictions")
    assert w["confidence"]["counts"] == [0] * 10
    assert api.get("/api/devices/nobody/window").status_code == 404


def test_drift_against_the_training_labels(api) -> None:
    drift = {d["device_id"]: (d["drift"], d["drift_basis"]) for d in api.get("/api/devices").json()}
    assert drift["cam-1"] == (0.0, "training_labels")  # 12:6:2 predicted, 60:30:10 trained on
    assert drift["cam-2"] == (1.0, "training_labels")  # only sunflowers, which it never saw
    assert drift["cam-3"] == (None, "model_not_registered")
    assert drift["cam-4"] == (None, "no_predictions")
    # cam-5's version 1 predicted daisy 3, roses 1 (its older model's tulips do not count): P = (3/4, 1/4, 0),
    # Q = (6/10, 3/10, 1/10), M = (27/40, 11/40, 1/20)
    kl_p = 0.75 * math.log2(0.75 / 0.675) + 0.25 * math.log2(0.25 / 0.275)
    kl_q = 0.6 * math.log2(0.6 / 0.675) + 0.3 * math.log2(0.3 / 0.275) + 0.1 * math.log2(0.1 / 0.05)
    by_hand = math.sqrt((kl_p + kl_q) / 2)
    assert drift["cam-5"][0] == pytest.approx(by_hand)
    assert drift["cam-5"][0] == pytest.approx(0.2401, abs=1e-4)
    w = api.get("/api/devices/cam-3/window").json()
    assert (w["drift"], w["drift_basis"], w["model"]) == (
        None,
        "model_not_registered",
        {"name": "flowers", "version": "2"},
    )


def test_the_drift_trigger_sees_the_largest_drift_of_a_model(db) -> None:
    assert largest_drift(db, "flowers", 300) == 1.0  # cam-2's sunflowers
    assert largest_drift(db, "flowers", 300, min_predictions=6) == 0.0  # only cam-1 has that many
    assert largest_drift(db, "flowers", 300, min_predictions=100) is None
    assert largest_drift(db, "birds", 300) is None


def test_devices_rows_keep_the_design_fields_and_add_the_window(api) -> None:
    cam1 = next(d for d in api.get("/api/devices").json() if d["device_id"] == "cam-1")
    assert cam1["predictions"] == 21
    assert cam1["missing"] == 0
    assert cam1["model"] == {"name": "flowers", "version": "1"}
    assert cam1["state"] == "online"
    assert cam1["device_group"] == "canary"
    assert (cam1["window"], cam1["window_predictions"]) == (300, 20)
    assert cam1["window_fps"] == pytest.approx(2.0)
    assert api.get("/api/devices", params={"window": 500}).json()[0]["window_predictions"] == 21


def test_metrics_export_the_devices_from_the_store(api) -> None:
    text = api.get("/metrics").text
    assert "edgeloop_stored_total 0.0" in text  # the ingest counters are still there
    samples = {(s.name, s.labels.get("device")): s for f in text_string_to_metric_families(text) for s in f.samples}
    drift = {device: s.value for (name, device), s in samples.items() if name == "edgeloop_device_label_drift"}
    assert drift["cam-1"] == 0.0
    assert drift["cam-2"] == 1.0
    assert "cam-3" not in drift  # no number: no sample
    assert drift["cam-5"] == pytest.approx(0.2401, abs=1e-4)
    assert samples["edgeloop_device_predictions_total", "cam-1"].value == 21
    assert samples["edgeloop_device_fps", "cam-1"].value == 29.5
    assert samples["edgeloop_device_up", "cam-1"].value == 1
    assert samples["edgeloop_device_up", "cam-2"].value == 0  # no status yet
    assert samples["edgeloop_device_last_seen_timestamp_seconds", "cam-1"].value == pytest.approx(time.time(), abs=60)
    info = samples["edgeloop_device_model_info", "cam-1"]
    assert (info.value, info.labels) == (1, {"device": "cam-1", "model": "flowers", "version": "1", "backend": "tf",
                                            "group": "canary"})  # fmt: skip


def test_openapi_documents_the_window(api) -> None:
    schema = api.get("/openapi.json").json()
    assert "/api/devices/{device_id}/window" in schema["paths"]
    window = schema["components"]["schemas"]["Window"]["properties"]
    assert {"labels", "confidence", "infer_ms", "total_ms", "fps", "drift", "drift_basis"} <= window.keys()
    assert schema["components"]["schemas"]["Device"]["properties"]["drift"]
    camera = schema["components"]["schemas"]["Camera"]["properties"]
    assert {"name", "predictions", "rate", "last_seen", "fps", "dropped", "reopens"} == camera.keys()
    parameters = {p["name"] for p in schema["paths"]["/api/devices/{device_id}/labels"]["get"]["parameters"]}
    assert parameters == {"device_id", "window", "camera"}


def test_js_distance() -> None:
    assert js_distance({"a": 2, "b": 2}, {"a": 5, "b": 5}) == 0.0
    assert js_distance({"a": 1}, {"b": 7}) == 1.0
    assert js_distance({"a": 1, "b": 1}, {"a": 1}) == pytest.approx(math.sqrt(1.5 - 0.75 * math.log2(3)))
