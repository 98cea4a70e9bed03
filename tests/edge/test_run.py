"""`python -m edge run` against a real Mosquitto: nothing lost through a broker outage, `seq`
continuous across restarts, `offline` when stopped or killed."""

import json
import signal
import sqlite3
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from common import bundle
from tests.support.device import edge_command, run_edge, seqs, start_edge, states
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.updates import announce
from tests.support.waiting import wait_for


def test_a_broker_outage_loses_no_prediction(tiny_bundle, video, broker, recorder, tmp_path) -> None:
    edge = start_edge(tiny_bundle, video, broker, tmp_path / "state", "--loop")
    try:
        wait_for(lambda: len(seqs(recorder)) >= 300, 60, "predictions before the outage")
        wait_for(lambda: recorder.on("/telemetry"), 10, "telemetry (every second)")
        broker.stop()
        time.sleep(10)
        before = len(seqs(recorder))
        broker.start()
        wait_for(lambda: len(seqs(recorder)) >= before + 1000, 60, "predictions after the outage")
        edge.send_signal(signal.SIGTERM)
        assert edge.wait(30) == 0
    finally:
        edge.kill()
    wait_for(lambda: states(recorder)[-1:] == ["offline"], 10, "the offline status")
    received = seqs(recorder)
    assert set(received) == set(range(1, max(received) + 1)), "a gap in seq: a prediction was lost"
    first_seen = list(dict.fromkeys(received))
    assert first_seen == sorted(first_seen), "the outbox replays in order"
    telemetry = json.loads(recorder.on("/telemetry")[-1].payload)
    assert telemetry["backend"] == "tflite"
    assert telemetry["fps"] > 0


def test_seq_continues_across_restarts(tiny_bundle, video, broker, recorder, tmp_path) -> None:
    for _ in range(2):
        edge = start_edge(tiny_bundle, video, broker, tmp_path / "state", "--max-frames", "40", "--loop")
        assert edge.wait(60) == 0
    wait_for(lambda: len(seqs(recorder)) >= 80, 10, "80 predictions")
    assert sorted(seqs(recorder)) == list(range(1, 81))
    assert not any("camera" in json.loads(m.payload) for m in recorder.on("/predictions")), "one camera: not named"
    assert states(recorder) == ["online", "offline", "online", "offline"]


def test_runs_on_the_onnx_backend(tiny_bundle, video, broker, recorder, tmp_path) -> None:
    done = run_edge(tiny_bundle, video, broker.url, tmp_path / "state", 20, "--backend", "onnx")
    assert done.returncode == 0, done.stderr
    assert "onnx backend on CPUExecutionProvider" in done.stderr
    wait_for(lambda: len(seqs(recorder)) >= 20, 10, "20 predictions")


def test_killed_device_goes_offline_through_its_last_will(tiny_bundle, video, broker, recorder, tmp_path) -> None:
    edge = start_edge(tiny_bundle, video, broker, tmp_path / "state", "--loop")
    try:
        wait_for(lambda: "online" in states(recorder), 60, "the online status")
        edge.kill()
        edge.wait(10)
    finally:
        edge.kill()
    wait_for(lambda: states(recorder)[-1:] == ["offline"], 10, "the last will")
    status = recorder.on("/status")[-1]
    assert status.retain or status.topic == "edgeloop/devices/cam-1/status"


def test_a_bad_source_or_broker_url_is_a_clear_error(tiny_bundle, tmp_path) -> None:
    from tests.support.cli import run_cli
    from tests.support.keys import registry_keys

    trusted = ("--trusted-key", registry_keys()[1])
    result = run_cli(
        "edge", "run", "--model", tiny_bundle, "--source", tmp_path / "nope.mp4", "--device-id", "x", *trusted,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "no such source" in result.stderr
    result = run_cli(
        "edge", "run", "--model", tiny_bundle, "--source", "0", "--device-id", "x", "--broker", "tcp://h", *trusted,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "mqtt:// or mqtts://" in result.stderr


def test_live_preview_on_loopback_and_a_health_check_without_pictures(
    tiny_bundle, video, broker, recorder, tmp_path
) -> None:
    import urllib.request

    import psutil

    from edge.sources.mjpeg import MJPEGSource
    from tests.support.ports import free_port

    port, health = free_port(), free_port()
    extra = ["--loop", "--preview-port", port, "--health-port", health]
    edge = start_edge(tiny_bundle, video, broker, tmp_path / "state", *extra)
    try:
        wait_for(lambda: "online" in states(recorder), 60, "the online status")
        listening = {c.laddr.port: c.laddr.ip for c in psutil.Process(edge.pid).net_connections("tcp")}
        assert (listening[port], listening[health]) == ("127.0.0.1", "0.0.0.0"), "the camera only on loopback"
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.headers["X-Frame-Options"] == "DENY"
        assert b'<img src="/camera/0/stream.mjpg"' in page.read(), "one camera, named by its index"
        stream = MJPEGSource(f"http://127.0.0.1:{port}/camera/0/stream.mjpg")
        stream.open()
        frames = [stream.read() for _ in range(3)]
        stream.close()
        answer = urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=5)
        report = json.loads(answer.read())
    finally:
        edge.kill()
    assert all(f.shape == (480, 640, 3) for f in frames)
    label = frames[0][5:45, 5:200]  # white text, through JPEG: near white, not exactly 255
    assert (label > 220).all(axis=-1).sum() > 20, "the label is drawn in white"
    assert (answer.status, answer.headers["Content-Type"]) == (200, "application/json")
    assert set(report) == {"status", "frame_age_s", "frames", "broker_connected", "outbox_depth", "cameras"}
    assert list(report["cameras"]) == ["0"]
    assert (report["status"], report["broker_connected"]) == ("healthy", True)
    assert 0 <= report["frame_age_s"] < 5
    assert report["frames"] > 0
    assert report["outbox_depth"] >= 0


@pytest.mark.services  # starts its own Mosquitto
def test_credentials_from_the_environment_and_never_logged(tiny_bundle, video, tmp_path) -> None:
    import os
    import subprocess

    from edge.outbox import Outbox
    from tests.support.broker import Mosquitto

    server = Mosquitto(tmp_path / "broker")
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(tmp_path / "passwd"), "cam-1", "s3cret-pw"], check=True)
    conf = server.conf.read_text().replace("allow_anonymous true", "allow_anonymous false")
    server.conf.write_text(f"{conf}password_file {tmp_path / 'passwd'}\n")
    server.start()
    try:
        for password, left_in_outbox in (("wrong-pw", 20), ("s3cret-pw", 0)):
            env = {**os.environ, "EDGELOOP_MQTT_PASSWORD": password}
            broker_url = server.url.replace("mqtt://", "mqtt://cam-1@")
            edge = run_edge(tiny_bundle, video, broker_url, tmp_path / password, 20, env=env)
            assert edge.returncode == 0
            assert password not in edge.stderr
            assert ("refused the connection" in edge.stderr) == bool(left_in_outbox)
            assert len(Outbox(tmp_path / password / "outbox-cam-1.sqlite")) == left_in_outbox
    finally:
        server.stop()


def test_unsure_frames_arrive_as_jpeg_samples_within_the_rate(tiny_bundle, video, broker, recorder, tmp_path) -> None:
    import cv2
    import numpy as np

    from common import protocol

    every_frame = ["--sample-threshold", "1.0", "--sample-duplicate-distance", "0"]  # the looped video repeats
    args = ["--max-frames", "60", "--loop", *every_frame, "--samples-per-minute", "5"]
    edge = start_edge(tiny_bundle, video, broker, tmp_path / "state", *args)
    assert edge.wait(60) == 0
    wait_for(lambda: len(recorder.on("/samples")) >= 5, 10, "five samples")
    samples = recorder.on("/samples")
    assert len(samples) == 5, "rate-limited to --samples-per-minute"
    for message in samples:
        image = cv2.imdecode(np.frombuffer(message.payload, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (480, 640, 3)
        assert message.properties.ContentType == "image/jpeg"
        meta = protocol.SampleMeta.decode(dict(message.properties.UserProperty)[protocol.SAMPLE_META_PROPERTY])
        assert meta.reason == "low_confidence"
        assert meta.device_id == "cam-1"
        assert meta.seq in seqs(recorder)


@pytest.mark.services  # starts its own Mosquitto
def test_tls_with_the_device_s_ca_file(tiny_bundle, video, tmp_path) -> None:
    import subprocess

    from edge.outbox import Outbox
    from tests.support.broker import Mosquitto

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
            "-out", "server.csr")  # fmt: skip
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-extfile", "san.ext", "-out", "server.crt")  # fmt: skip
    server = Mosquitto(tmp_path / "broker")
    server.conf.write_text(
        server.conf.read_text()
        + f"cafile {tmp_path / 'ca.crt'}\ncertfile {tmp_path / 'server.crt'}\nkeyfile {tmp_path / 'server.key'}\n"
    )
    server.start()
    try:
        tls_url = server.url.replace("mqtt://", "mqtts://")
        for ca in (tmp_path / "ca.crt", None):  # with the CA: delivered; without it: the server is not trusted
            state = tmp_path / ("trusted" if ca else "untrusted")
            extra = ["--ca-file", ca] if ca else []
            assert run_edge(tiny_bundle, video, tls_url, state, 10, *extra).returncode == 0
            assert len(Outbox(state / "outbox-cam-1.sqlite")) == (0 if ca else 10)
    finally:
        server.stop()


@pytest.mark.services  # starts its own Mosquitto
def test_predictions_the_broker_refuses_stay_in_the_outbox(tiny_bundle, video, tmp_path) -> None:

    from edge.outbox import Outbox
    from tests.support.broker import Mosquitto

    server = Mosquitto(tmp_path / "broker")
    (tmp_path / "acl").write_text("topic read edgeloop/#\ntopic write edgeloop/devices/cam-1/status\n")
    server.conf.write_text(server.conf.read_text() + f"acl_file {tmp_path / 'acl'}\n")
    server.start()
    try:
        edge = run_edge(tiny_bundle, video, server.url, tmp_path / "state", 10)
    finally:
        server.stop()
    assert edge.returncode == 0
    assert "the broker refused" in edge.stderr
    assert len(Outbox(tmp_path / "state" / "outbox-cam-1.sqlite")) == 10, "not authorised is not delivered"


def _outbox_rows(state) -> int:
    """The device's outbox rows; 0 before it has made its outbox."""
    try:
        with sqlite3.connect(f"file:{state / 'outbox-cam-1.sqlite'}?mode=ro", uri=True) as db:
            return db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _stopped_within(edge, limit_s: float) -> tuple[int, float]:
    """SIGTERM `edge`; its exit status and how long it took, within `limit_s`."""
    sent = time.monotonic()
    edge.send_signal(signal.SIGTERM)
    code = edge.wait(limit_s)
    return code, time.monotonic() - sent


def test_sigterm_while_starting_or_with_the_broker_unreachable_exits_and_keeps_the_outbox(
    tiny_bundle, video, tmp_path
) -> None:
    unreachable = f"mqtt://127.0.0.1:{free_port()}"
    starting = subprocess.Popen(edge_command(tiny_bundle, video, unreachable, tmp_path / "early", "--loop"), cwd=ROOT)
    time.sleep(0.5)  # importing, loading the model
    _, took = _stopped_within(starting, 10)
    assert took < 10
    state = tmp_path / "state"
    edge = subprocess.Popen(
        edge_command(tiny_bundle, video, unreachable, state, "--loop"), cwd=ROOT, stderr=subprocess.PIPE
    )
    try:
        wait_for(lambda: _outbox_rows(state) >= 20, 60, "predictions in the outbox")
        code, took = _stopped_within(edge, 10)
    finally:
        edge.kill()
    assert code == 0
    assert took < 10, f"{took:.1f} s to stop with the broker unreachable"
    assert _outbox_rows(state) >= 20, "what could not be sent stays in the outbox"
    assert b"stay in the outbox for the next start" in edge.stderr.read()


class _HangingBundle(BaseHTTPRequestHandler):
    """A model origin that sends half a bundle and hangs: a device caught mid-download."""

    asked = threading.Event()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        self.wfile.write(b"x" * 1000)
        self.wfile.flush()
        _HangingBundle.asked.set()
        time.sleep(30)

    def log_message(self, *args) -> None:
        pass


def test_sigterm_while_running_and_downloading_a_model_exits_promptly(
    tiny_bundle, video, broker, recorder, tmp_path
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _HangingBundle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    edge = start_edge(tiny_bundle, video, broker, tmp_path / "state", "--loop")
    try:
        wait_for(lambda: len(seqs(recorder)) >= 20, 60, "predictions")
        name = bundle.load(tiny_bundle).meta.name
        announce(broker, name, "2", f"http://127.0.0.1:{server.server_address[1]}/v2.tar.gz", "0" * 64)
        assert _HangingBundle.asked.wait(30), "the device never started the download"
        code, took = _stopped_within(edge, 10)
    finally:
        edge.kill()
        server.shutdown()
    assert code == 0
    assert took < 10, f"{took:.1f} s to stop while downloading"
    wait_for(lambda: states(recorder)[-1:] == ["offline"], 10, "the offline status")
    assert _outbox_rows(tmp_path / "state") == 0, "a connected device flushes before it exits"
