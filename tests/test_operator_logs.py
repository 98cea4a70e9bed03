"""Logs that say what is wrong: a broker nobody can reach is named with the reason within seconds, on
both sides, and again while it lasts; `serve` says where it listens; `edge run` refuses a bad broker
URL or source before it loads a model; training says how far it is without a terminal."""

from __future__ import annotations

import io
import logging
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cloud.retrain.progress import Progress
from common.mqtt import failures
from common.mqtt.failures import ConnectionLog
from edge.cli import main as edge_main
from tests.support.device import edge_command
from tests.support.keys import registry_keys
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.processes import terminate
from tests.support.serve import start_serve

REFUSED = "cannot reach the broker at mqtt://127.0.0.1:{port}: [Errno 111] Connection refused"


class ClosedPort:
    """A broker URL on a free port nobody listens on: every connection is refused at once."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"


def _lines_until(process: subprocess.Popen, wanted: list[str], timeout_s: float) -> list[str]:
    """The process's stderr up to the first line holding each of `wanted`, or fail after `timeout_s`."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while not all(any(w in line for line in seen) for w in wanted):
        try:
            seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            raise AssertionError(f"not within {timeout_s} s: {wanted}; the log:\n{''.join(seen)}") from None
    return seen


def test_serve_names_an_unreachable_broker_and_its_address_at_once(tmp_path: Path) -> None:
    broker, http = ClosedPort(), free_port()
    start = time.monotonic()
    process = start_serve(broker, f"sqlite:///{tmp_path / 'db'}", tmp_path, http, stderr=subprocess.PIPE, text=True)
    try:
        _lines_until(process, [REFUSED.format(port=broker.port), f"serving http://127.0.0.1:{http}/"], 10)
        assert time.monotonic() - start < 10
    finally:
        terminate(process)


def test_edge_run_names_an_unreachable_broker_at_once(tiny_bundle: Path, tiny_images: Path, tmp_path: Path) -> None:
    broker = ClosedPort()
    command = edge_command(tiny_bundle, tiny_images, broker.url, tmp_path / "state", "--loop")
    start = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        _lines_until(process, [REFUSED.format(port=broker.port)], 10)
        assert time.monotonic() - start < 10
    finally:  # not a test of the shutdown: that waits for the unreachable broker a while
        process.kill()
        process.wait()


def test_an_outage_is_logged_again_while_it_lasts(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    now = [100.0]
    monkeypatch.setattr(failures.time, "monotonic", lambda: now[0])
    watch = ConnectionLog("edgeloop-cam-1", "mqtt://broker:1883")

    def attempt(at: float, reached: bool = False) -> None:
        now[0] = at
        watch.on_pre_connect(None, None)
        if not reached:
            try:
                raise ConnectionRefusedError(111, "Connection refused")
            except OSError:  # paho calls on_connect_fail while handling the error
                watch.on_connect_fail(None, None)

    with caplog.at_level(logging.ERROR, logger=failures.__name__):
        for at in (100.0, 101.0, 103.0, 113.0, 130.5, 140.0):
            attempt(at)
        attempt(150.0, reached=True)  # through to the broker: the outage is over
        attempt(200.0)
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        "edgeloop-cam-1 cannot reach the broker at mqtt://broker:1883: [Errno 111] Connection refused; retrying",
        "edgeloop-cam-1 still cannot reach the broker at mqtt://broker:1883 after 30 s and 5 attempts: "
        "[Errno 111] Connection refused",
        "edgeloop-cam-1 cannot reach the broker at mqtt://broker:1883: [Errno 111] Connection refused; retrying",
    ]
    assert failures.REPEAT_S == 30.0


@pytest.mark.parametrize(
    ("option", "said"),
    [(["--broker", "http://broker:1883"], "mqtt:// or mqtts://"), (["--source", "nope://cam"], "nope://")],
)
def test_edge_run_refuses_a_bad_broker_or_source_before_loading_a_model(tmp_path, capsys, option, said) -> None:
    """The model does not exist: had it been loaded first, the error would be about the bundle."""
    argv = ["run", "--model", str(tmp_path / "no-bundle"), "--source", str(tmp_path), "--device-id", "cam-1"]
    argv += ["--trusted-key", str(registry_keys()[1]), "--state-dir", str(tmp_path / "state"), *option]
    assert edge_main(argv) == 2
    error = capsys.readouterr().err
    assert said in error, error
    assert "no-bundle" not in error, error


def test_progress_without_a_terminal_is_logged_every_tenth(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # no terminal: tqdm switches itself off
    with caplog.at_level(logging.INFO, logger="cloud.retrain.progress"), Progress(250, "training", "step") as bar:
        for step in range(250):
            bar.set_postfix(train_accuracy=step / 250)
            bar.update()
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 10
    assert said[0].startswith("training: 25/250 steps (10%)")
    assert "left" in said[0]
    assert said[-1].startswith("training: 250/250 steps (100%)")
    assert said[-1].endswith("train_accuracy 0.996")
