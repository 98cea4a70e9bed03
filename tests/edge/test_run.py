"""`python -m edge run` against a real Mosquitto: nothing lost through a broker outage, `seq`
continuous across restarts, `offline` when stopped or killed."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.broker import Mosquitto, Recorder, wait_for
from tests.conftest import ROOT
from tests.makedata import write_video


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "colours.avi", frames=30)


@pytest.fixture
def recorder(broker: Mosquitto):
    rec = Recorder(broker.url, "edgeloop/#")
    wait_for(rec.client.is_connected, 10, "the recorder to connect")
    yield rec
    rec.close()


def start_edge(bundle: Path, video: Path, broker: Mosquitto, state: Path, *extra: str) -> subprocess.Popen:
    args = ["--model", bundle, "--source", video, "--broker", broker.url, "--device-id", "cam-1"]
    args += ["--state-dir", state, "--keepalive-s", "2", "--telemetry-interval-s", "1", *extra]
    return subprocess.Popen([sys.executable, "-m", "edge", "run", *map(str, args)], cwd=ROOT, stderr=subprocess.PIPE)


def seqs(recorder: Recorder) -> list[int]:
    return [json.loads(m.payload)["seq"] for m in recorder.on("/predictions")]


def states(recorder: Recorder) -> list[str]:
    return [json.loads(m.payload)["state"] for m in recorder.on("/status")]


def test_a_broker_outage_loses_no_prediction(tiny_bundle, video, broker, recorder, tmp_path) -> None:
    edge = start_edge(tiny_bundle, video, broker, tmp_path / "state", "--loop")
    try:
        wait_for(lambda: len(seqs(recorder)) >= 300, 60, "predictions before the outage")
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
    telemetry = json.loads(recorder.on("/telemetry")[-1].payload)
    assert telemetry["backend"] == "tflite"
    assert telemetry["fps"] > 0


def test_seq_continues_across_restarts(tiny_bundle, video, broker, recorder, tmp_path) -> None:
    for _ in range(2):
        edge = start_edge(tiny_bundle, video, broker, tmp_path / "state", "--max-frames", "40", "--loop")
        assert edge.wait(60) == 0
    wait_for(lambda: len(seqs(recorder)) >= 80, 10, "80 predictions")
    assert sorted(seqs(recorder)) == list(range(1, 81))
    assert states(recorder) == ["online", "offline", "online", "offline"]


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
    from tests.conftest import run_cli

    result = run_cli(
        "edge", "run", "--model", tiny_bundle, "--source", tmp_path / "nope.mp4", "--device-id", "x", check=False
    )
    assert result.returncode == 2
    assert "no such source" in result.stderr
    result = run_cli(
        "edge", "run", "--model", tiny_bundle, "--source", "0", "--device-id", "x", "--broker", "tcp://h", check=False
    )
    assert result.returncode == 2
    assert "mqtt:// or mqtts://" in result.stderr
