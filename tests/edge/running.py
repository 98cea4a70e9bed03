"""Running `python -m edge run` from tests, and reading what a Recorder received from it."""

import json
import subprocess
import sys
from pathlib import Path

from tests.broker import Mosquitto, Recorder
from tests.conftest import ROOT


def start_edge(bundle: Path, video: Path, broker: Mosquitto, state: Path, *extra: str) -> subprocess.Popen:
    args = ["--model", bundle, "--source", video, "--broker", broker.url, "--device-id", "cam-1"]
    args += ["--state-dir", state, "--keepalive-s", "2", "--telemetry-interval-s", "1", *extra]
    return subprocess.Popen([sys.executable, "-m", "edge", "run", *map(str, args)], cwd=ROOT, stderr=subprocess.PIPE)


def seqs(recorder: Recorder) -> list[int]:
    return [json.loads(m.payload)["seq"] for m in recorder.on("/predictions")]


def states(recorder: Recorder) -> list[str]:
    return [json.loads(m.payload)["state"] for m in recorder.on("/status")]


def versions(recorder: Recorder) -> list[str]:
    return [json.loads(m.payload)["model"]["version"] for m in recorder.on("/predictions")]
