"""Running `python -m edge run` from tests, and reading what a Recorder received from it."""

import json
import subprocess
import sys
from pathlib import Path

from common import protocol
from tests.support.broker import Mosquitto, Recorder
from tests.support.keys import registry_keys
from tests.support.paths import ROOT


def edge_command(bundle: Path, video: Path, broker_url: str, state: Path, *extra: object) -> list[str]:
    """The device trusts the tests' registry key (tests/support/keys.py); `extra` may say otherwise."""
    args = ["--model", bundle, "--source", video, "--broker", broker_url, "--device-id", "cam-1"]
    args += ["--trusted-key", registry_keys()[1]]
    args += ["--state-dir", state, "--keepalive-s", "2", "--telemetry-interval-s", "1", *extra]
    return [sys.executable, "-m", "edge", "run", *map(str, args)]


def start_edge(bundle: Path, video: Path, broker: Mosquitto, state: Path, *extra: object) -> subprocess.Popen:
    return subprocess.Popen(edge_command(bundle, video, broker.url, state, *extra), cwd=ROOT, stderr=subprocess.PIPE)


def run_edge(
    bundle: Path, video: Path, broker_url: str, state: Path, frames: int, *extra: object, env: dict | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the device for `frames` frames of a looped video, to the end; its log is in `.stderr`."""
    command = edge_command(bundle, video, broker_url, state, "--max-frames", frames, "--loop", *extra)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def unpacked(payload: bytes | str) -> list[dict]:
    """The predictions a message holds, as JSON objects: one (schema 1) or a batch's (schema 2)."""
    message = json.loads(payload)
    return message["predictions"] if message.get("schema") == protocol.BATCH_SCHEMA else [message]


def predictions(recorder: Recorder) -> list[dict]:
    return [p for m in recorder.on("/predictions") for p in unpacked(m.payload)]


def seqs(recorder: Recorder) -> list[int]:
    return [p["seq"] for p in predictions(recorder)]


def states(recorder: Recorder) -> list[str]:
    return [json.loads(m.payload)["state"] for m in recorder.on("/status")]


def versions(recorder: Recorder) -> list[str]:
    return [p["model"]["version"] for p in predictions(recorder)]
