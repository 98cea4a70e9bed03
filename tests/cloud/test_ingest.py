"""Ingest into SQLite and a real PostgreSQL: stored once per (device_id, seq), duplicates and gaps
counted, samples filed by content hash, hostile payloads rejected by reason, the API reading it."""

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from cloud.aggregator.ingest import Ingest
from cloud.aggregator.quotas import SampleLimits
from cloud.api.app import create_app
from cloud.store import connect
from common import protocol
from common.mqtt import url
from tests.support.fleet import Publisher, batch, prediction
from tests.support.samples import sample_properties, send_sample
from tests.support.waiting import wait_for


@pytest.fixture
def aggregator(broker, db_url: str, tmp_path: Path):
    db = connect(db_url)
    limits = SampleLimits(per_minute=None)  # the hostile test sends 150 samples at once
    ingest = Ingest(db, tmp_path / "data", url.parse(broker.url), protocol.Topics(), batch_wait_s=0.02, limits=limits)
    ingest.start()
    wait_for(lambda: ingest._client.is_connected(), 10, "the aggregator to connect")
    time.sleep(0.3)  # its subscriptions are in place
    yield ingest, TestClient(create_app(db, ingest.metrics, tmp_path / "data"))
    ingest.stop()
    db.close()


def test_stored_once_with_duplicates_and_gaps_counted(broker, aggregator) -> None:
    ingest, api = aggregator
    fleet = Publisher(broker.port)
    fleet.send_predictions("cam-1", range(1, 501))
    fleet.send_predictions("cam-1", range(400, 451))  # redelivered by a device after a reconnect
    fleet.send_predictions("cam-2", [*range(1, 101), *range(111, 201)])  # ten lost on the way
    fleet.close()
    wait_for(lambda: ingest.metrics.counts["stored"] + ingest.metrics.counts["duplicates"] >= 741, 30, "ingest")
    assert ingest.metrics.counts["stored"] == 690
    assert ingest.metrics.counts["duplicates"] == 51
    devices = {d["device_id"]: d for d in api.get("/api/devices").json()}
    assert devices["cam-1"]["predictions"] == 500
    assert devices["cam-1"]["missing"] == 0
    assert devices["cam-2"]["predictions"] == 190
    assert devices["cam-2"]["missing"] == 10
    assert devices["cam-1"]["model"] == {"name": "flowers", "version": "1"}
    assert api.get("/api/devices/cam-1/labels", params={"window": 600}).json() == {"daisy": 500}
    confidence = api.get("/api/devices/cam-1/confidence", params={"window": 600}).json()
    assert confidence["predictions"] == 500
    assert confidence["counts"] == [0] * 9 + [500]
    assert confidence["mean"] == pytest.approx(0.9)
    assert confidence["low_share"] == 0
    metrics = api.get("/metrics").text
    assert "edgeloop_stored_total 690.0" in metrics
    assert "edgeloop_duplicates_total 51.0" in metrics


def test_batches_are_stored_once_per_seq_and_a_malformed_one_is_rejected_whole(broker, aggregator) -> None:
    ingest, api = aggregator
    topic = protocol.Topics().predictions("cam-1")
    fleet = Publisher(broker.port)
    fleet.send_predictions("cam-1", range(1, 301), per_message=100)
    fleet.send_predictions("cam-1", range(251, 350), per_message=99)  # overlaps: 50 stored already, 49 new
    fleet.send_predictions("cam-1", range(1, 101), per_message=100)  # a whole batch again, after a device's crash
    fleet.send(topic, prediction("cam-1", 350)).wait_for_publish(10)  # schema 1 still goes
    fleet.send_predictions("cam-2", [*range(1, 51), *range(61, 101)], per_message=30)  # ten lost on the way
    for payload in (
        batch("cam-1", [400, 401]).replace(b'"seq":401', b'"seq":399'),  # seq not increasing
        batch("cam-1", [402, 403]).replace(b'"score":0.9', b'"score":7', 1),  # one bad prediction
        batch("someone-else", [404, 405]),
        b"x" * (protocol.BATCH_MAX_BYTES + 1),
    ):
        fleet.send(topic, payload).wait_for_publish(10)
    fleet.close()
    wait_for(lambda: ingest.metrics.counts["messages_in"] >= 13, 30, "every message")
    wait_for(lambda: ingest.metrics.counts["stored"] + ingest.metrics.counts["duplicates"] >= 590, 30, "ingest")
    assert (ingest.metrics.counts["stored"], ingest.metrics.counts["duplicates"]) == (440, 150)
    assert dict(ingest.metrics.rejected) == {"schema": 2, "device_mismatch": 1, "oversized": 1}
    devices = {d["device_id"]: d for d in api.get("/api/devices").json()}
    assert (devices["cam-1"]["predictions"], devices["cam-1"]["missing"]) == (350, 0), "nothing of a rejected batch"
    assert (devices["cam-2"]["predictions"], devices["cam-2"]["missing"]) == (90, 10)
    assert "edgeloop_duplicates_total 150.0" in api.get("/metrics").text


def test_samples_are_verified_and_filed_by_content(broker, aggregator, tmp_path) -> None:
    ingest, api = aggregator
    _, jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), 90, np.uint8))
    meta = protocol.SampleMeta(
        device_id="cam-1", seq=7, ts=time.time(), model=protocol.ModelRef(name="flowers", version="1"),
        top_k=[protocol.Score(label="daisy", score=0.31)], reason="low_confidence",
    )  # fmt: skip
    fleet = Publisher(broker.port)
    topic = protocol.Topics().samples("cam-1")
    fleet.send(topic, jpeg.tobytes(), properties=sample_properties(meta)).wait_for_publish(10)
    fleet.send(topic, jpeg.tobytes(), properties=sample_properties(meta)).wait_for_publish(10)  # the same picture
    fleet.close()
    wait_for(lambda: ingest.metrics.counts["samples_stored"] >= 2, 10, "samples")
    listed = api.get("/api/samples").json()
    assert len(listed) == 1
    assert listed[0]["predicted"] == "daisy"
    assert listed[0]["reason"] == "low_confidence"
    picture = api.get(listed[0]["url"])
    assert picture.status_code == 200
    assert picture.content == jpeg.tobytes()
    assert api.get("/samples/../../etc/passwd.jpg").status_code == 404
    assert api.get("/samples/" + "0" * 64 + ".jpg").status_code == 404


def test_hostile_payloads_are_rejected_by_reason_and_valid_ones_stored(broker, aggregator) -> None:
    ingest, api = aggregator
    topics = protocol.Topics()
    valid = topics.predictions("cam-1")
    good_meta = protocol.SampleMeta(
        device_id="cam-1", seq=1, ts=time.time(), model=protocol.ModelRef(name="flowers", version="1"),
        top_k=[protocol.Score(label="daisy", score=0.3)], reason="random",
    )  # fmt: skip
    hostile = [
        (valid, b"{not json", None, "bad_json"),
        (valid, b'{"seq": "seven"}', None, "schema"),
        (valid, prediction("cam-1", 1).replace(b'"score":0.9', b'"score":7'), None, "schema"),
        (valid, prediction("someone-else", 1), None, "device_mismatch"),
        (topics.telemetry("cam-1"), b"x" * 70_000, None, "oversized"),
        ("edgeloop/devices/../predictions", prediction("cam-1", 1), None, "bad_topic"),
        (topics.status("cam-1"), b'{"state": "hacked", "ts": 1}', None, "schema"),
        (topics.samples("cam-1"), b"\xff\xd8 not really a jpeg \xff\xd9", sample_properties(good_meta), "bad_image"),
        (topics.samples("cam-1"), b"\xff\xd8\xff", None, "schema"),
        (topics.telemetry("cam-1"), b"[1, 2]", None, "schema"),
        (topics.telemetry("cam-1"), b"[" * 30_000, None, "bad_json"),
        (valid, prediction("cam-1", 1).replace(b'"seq":1,', b'"seq":100000000000000000000000,'), None, "schema"),
        (valid, prediction("cam-1", 1).replace(b'"infer":2.0', b'"infer":NaN'), None, "schema"),
    ]
    fleet = Publisher(broker.port)
    infos, expected = [], {}
    for i in range(1000):
        topic, payload, props, reason = hostile[i % len(hostile)]
        infos.append(fleet.send(topic, payload, properties=props))
        expected[reason] = expected.get(reason, 0) + 1
        infos.append(fleet.send(valid, prediction("cam-1", 2 * i + 1)))
        infos.append(fleet.send(valid, prediction("cam-1", 2 * i + 2)))
    for info in infos:
        info.wait_for_publish(60)
    fleet.close()
    wait_for(lambda: ingest.metrics.counts["messages_in"] >= 3000, 60, "every message")
    wait_for(lambda: ingest.metrics.counts["stored"] >= 2000, 30, "valid predictions")
    assert ingest.metrics.counts["stored"] == 2000
    assert dict(ingest.metrics.rejected) == expected
    metrics = api.get("/metrics").text
    for reason, count in expected.items():
        assert f'edgeloop_rejected_total{{reason="{reason}"}} {count}.0' in metrics
    assert api.get("/api/devices").status_code == 200


def test_status_and_telemetry_update_the_fleet_table(broker, aggregator) -> None:
    _, api = aggregator
    topics = protocol.Topics()
    status = protocol.Status(
        state="online", ts=time.time(), model=protocol.ModelRef(name="flowers", version="7"), backend="tensorrt"
    )
    fleet = Publisher(broker.port)
    fleet.send(topics.status("jetson-3"), status.encode()).wait_for_publish(10)
    fleet.send(topics.telemetry("jetson-3"), b'{"fps": 29.7, "backend": "tensorrt"}', qos=0)
    wait_for(lambda: any(d["fps"] for d in api.get("/api/devices").json()), 10, "telemetry")
    fleet.send(topics.status("jetson-3"), status.model_copy(update={"state": "offline"}).encode()).wait_for_publish(10)
    fleet.close()
    wait_for(lambda: api.get("/api/devices").json()[0]["state"] == "offline", 10, "the offline status")
    (device,) = api.get("/api/devices").json()
    assert device["device_id"] == "jetson-3"
    assert device["model"] == {"name": "flowers", "version": "7"}
    assert device["backend"] == "tensorrt"
    assert device["fps"] == pytest.approx(29.7)
    assert device["predictions"] == 0


def test_three_cameras_are_counted_windowed_and_name_their_samples(broker, aggregator) -> None:
    ingest, api = aggregator
    topics = protocol.Topics()
    fleet = Publisher(broker.port)
    fleet.send_predictions("edge-1", range(1, 41), per_message=20, camera="door")  # schema 2
    fleet.send_predictions("edge-1", range(41, 61), camera="yard")  # schema 1
    fleet.send(topics.predictions("edge-1"), batch("edge-1", range(61, 71), "roses", 0.3, "gate")).wait_for_publish(10)
    fleet.send_predictions("solo", range(1, 6))  # one camera: it names none
    figures = {"door": {"fps": 10.0, "dropped": 3.0, "reopens": 0.0}, "yard": {"fps": 5.0, "dropped": 0.0},
               "gate": {"fps": 1.5, "dropped": 0.0, "reopens": 2.0}, "attic": {"fps": 0.0, "reopens": 7.0}}  # fmt: skip
    fleet.send(topics.telemetry("edge-1"), protocol.Telemetry(fps=16.5, cameras=figures).encode(), qos=0)
    fleet.send(topics.telemetry("solo"), protocol.Telemetry(fps=9.0, cameras={"0": {"fps": 9.0}}).encode(), qos=0)
    send_sample(fleet, topics, "edge-1", 63, "gate", "roses", 0.3, "low_confidence", grey=90)
    fleet.close()
    wait_for(
        lambda: ingest.metrics.counts["stored"] >= 75 and ingest.metrics.counts["samples_stored"] >= 1, 10, "ingest"
    )

    def devices() -> dict:
        return {d["device_id"]: d for d in api.get("/api/devices").json()}

    wait_for(lambda: all(d["fps"] for d in devices().values()), 10, "both telemetries")

    edge, solo = devices()["edge-1"], devices()["solo"]
    assert (edge["predictions"], edge["missing"], solo["predictions"], solo["cameras"]) == (70, 0, 5, [])
    cameras = {c["name"]: c for c in edge["cameras"]}
    assert list(cameras) == ["attic", "door", "gate", "yard"], "by name; attic only in telemetry"
    assert {name: c["predictions"] for name, c in cameras.items()} == {"attic": 0, "door": 40, "gate": 10, "yard": 20}
    assert cameras["door"]["rate"] == pytest.approx(40 / 60)
    assert cameras["attic"]["rate"] == 0
    assert (cameras["door"]["fps"], cameras["door"]["dropped"], cameras["door"]["reopens"]) == (10.0, 3, 0)
    assert (cameras["attic"]["last_seen"], cameras["attic"]["reopens"], cameras["yard"]["reopens"]) == (None, 7, None)
    assert cameras["gate"]["last_seen"] == pytest.approx(time.time(), abs=10)

    labels = "/api/devices/edge-1/labels"
    assert api.get(labels, params={"window": 600}).json() == {"daisy": 60, "roses": 10}
    assert api.get(labels, params={"window": 600, "camera": "gate"}).json() == {"roses": 10}
    assert api.get(labels, params={"camera": "nowhere"}).json() == {}
    gate = api.get("/api/devices/edge-1/window", params={"camera": "gate"}).json()
    assert (gate["camera"], gate["predictions"], gate["telemetry_fps"]) == ("gate", 10, 1.5)
    assert (gate["confidence"]["low_share"], gate["confidence"]["counts"][3]) == (1.0, 10)
    assert [label["label"] for label in gate["labels"]] == ["roses"]
    whole = api.get("/api/devices/edge-1/window").json()
    assert (whole["camera"], whole["predictions"], whole["telemetry_fps"]) == (None, 70, 16.5)
    confidence = api.get("/api/devices/edge-1/confidence", params={"window": 600, "camera": "door"}).json()
    assert (confidence["predictions"], confidence["low_share"]) == (40, 0)
    (sample,) = api.get("/api/samples").json()
    assert (sample["device_id"], sample["camera"], sample["seq"]) == ("edge-1", "gate", 63)


def test_instances_sharing_a_subscription_split_the_load_and_store_once(broker, db_url, tmp_path) -> None:
    instances = []
    for name in ("a", "b"):
        db = connect(db_url)
        ingest = Ingest(db, tmp_path / "data", url.parse(broker.url), protocol.Topics(), client_id=name, group="g")
        ingest.start()
        instances.append((ingest, db))
    try:
        wait_for(lambda: all(i._client.is_connected() for i, _ in instances), 10, "both instances")
        time.sleep(0.3)
        fleet = Publisher(broker.port)
        fleet.send_predictions("cam-1", range(1, 2001))
        fleet.send_predictions("cam-1", range(1, 201))  # redelivered: may land on the other instance
        fleet.close()
        total = lambda key: sum(i.metrics.counts[key] for i, _ in instances)  # noqa: E731
        wait_for(lambda: total("stored") + total("duplicates") >= 2200, 30, "both instances to drain")
        assert total("stored") == 2000
        assert total("duplicates") == 200
        assert all(i.metrics.counts["messages_in"] > 200 for i, _ in instances), "the load is shared"
        assert instances[0][1].query("SELECT COUNT(*), COUNT(DISTINCT seq) FROM predictions")[0] == (2000, 2000)
    finally:
        for ingest, db in instances:
            ingest.stop()
            db.close()
