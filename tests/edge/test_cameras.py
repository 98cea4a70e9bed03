"""Several cameras in one `python -m edge run`: two video files and an RTSP stream, one model, one
outbox, one MQTT connection. The RTSP camera drops and comes back while the others run on; `seq` stays
one gapless sequence across the cameras, every prediction names its camera, and the cloud shows the three."""

import json
import signal
import time
import urllib.request
from collections import Counter

import pytest
from fastapi.testclient import TestClient

from cloud.aggregator.ingest import Ingest
from cloud.api.app import create_app
from cloud.store import connect
from common import protocol
from common.mqtt import url
from edge.sources.mjpeg import MJPEGSource
from tests.support.data import write_video
from tests.support.device import predictions, seqs, start_edge, states
from tests.support.ports import free_port
from tests.support.waiting import wait_for


def by_camera(recorder) -> Counter:
    return Counter(p["camera"] for p in predictions(recorder))


@pytest.fixture
def cloud(broker, tmp_path):
    """The cloud's ingest and API on the same broker, in this process: what the fleet page reads."""
    db = connect(f"sqlite:///{tmp_path / 'cloud.db'}")
    ingest = Ingest(db, tmp_path / "data", url.parse(broker.url), protocol.Topics(), batch_wait_s=0.02)
    ingest.start()
    wait_for(lambda: ingest.connected, 10, "the aggregator to connect")
    yield ingest, TestClient(create_app(db, ingest.metrics, tmp_path / "data"))
    ingest.stop()
    db.close()


def test_three_cameras_one_drops_and_returns_the_others_run_on(
    tiny_bundle, video, rtsp_camera, broker, recorder, cloud, tmp_path
) -> None:
    second = write_video(tmp_path / "second.avi", frames=20)
    preview, health = free_port(), free_port()
    started = time.monotonic()
    edge = start_edge(
        tiny_bundle, f"door={video}", broker, tmp_path / "state",
        "--source", f"yard={second}", "--source", f"street={rtsp_camera.url}", "--loop",
        "--publish", "interval", "--interval-ms", "20",  # fewer messages: the files' cameras run unpaced
        "--sample-threshold", "1", "--sample-duplicate-distance", "0", "--samples-per-minute", "2",
        "--preview-port", preview, "--health-port", health,
    )  # fmt: skip
    try:
        wait_for(lambda: min(by_camera(recorder).get(n, 0) for n in ("door", "yard", "street")) >= 10, 60, "all three")
        rtsp_camera.stop()
        wait_for(lambda: _telemetry(recorder)["cameras"]["street"]["reopens"] >= 1, 30, "the dropped stream noticed")
        down = by_camera(recorder)
        wait_for(lambda: by_camera(recorder)["door"] >= down["door"] + 20, 30, "door while street is down")
        assert by_camera(recorder)["yard"] >= down["yard"] + 10, "yard runs on"
        assert urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=5).status == 200
        rtsp_camera.start()
        back = by_camera(recorder)["street"]
        wait_for(lambda: by_camera(recorder)["street"] >= back + 10, 60, "street back")
        page = urllib.request.urlopen(f"http://127.0.0.1:{preview}/", timeout=5).read()
        stream = MJPEGSource(f"http://127.0.0.1:{preview}/camera/street/stream.mjpg")
        stream.open()
        frame = stream.read()
        stream.close()
        report = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=5).read())
        edge.send_signal(signal.SIGTERM)
        assert edge.wait(30) == 0
    finally:
        edge.kill()
    wait_for(lambda: states(recorder)[-1:] == ["offline"], 10, "the offline status")
    received = seqs(recorder)
    assert sorted(set(received)) == list(range(1, max(received) + 1)), "one seq across the cameras, no gap"
    assert set(by_camera(recorder)) == {"door", "yard", "street"}, "every prediction names its camera"
    telemetry = _telemetry(recorder)
    assert set(telemetry["cameras"]) == {"door", "yard", "street"}
    assert telemetry["frames"]["batches"] < telemetry["frames"]["processed"], "frames were batched"
    samples = Counter(_sample_camera(m) for m in recorder.on("/samples"))
    limit = 2 + int(2 * (time.monotonic() - started) / 60)  # 2 at once, then 2 a minute: per camera
    assert samples
    assert set(samples) <= {"door", "yard", "street"}
    assert max(samples.values()) <= limit
    assert all(f'src="/camera/{n}/stream.mjpg"'.encode() in page for n in ("door", "yard", "street"))
    assert frame.shape == (480, 640, 3)
    assert set(report["cameras"]) == {"door", "yard", "street"}
    assert all(0 <= c["frame_age_s"] < 10 for c in report["cameras"].values()), report
    ingest, api = cloud
    wait_for(lambda: ingest.metrics.counts["stored"] >= len(received), 20, "the cloud to store every prediction")
    (device,) = api.get("/api/devices").json()
    stored = {c["name"]: c["predictions"] for c in device["cameras"]}
    assert stored == dict(by_camera(recorder)), "the cloud shows the three cameras and their counts"
    assert device["missing"] == 0


def _telemetry(recorder) -> dict:
    messages = recorder.on("/telemetry")
    return json.loads(messages[-1].payload) if messages else {"cameras": {"street": {"reopens": 0}}}


def _sample_camera(message) -> str | None:
    return protocol.SampleMeta.decode(dict(message.properties.UserProperty)[protocol.SAMPLE_META_PROPERTY]).camera
