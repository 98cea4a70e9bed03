"""The fault suite's fixtures: a report that every fault adds its row to (written to
test-artifacts/faults.md and printed at the end of the session), and a camera at 30 fps."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import cv2
import numpy as np
import pytest

from tests.broker import free_port
from tests.conftest import ROOT
from tests.faults.harness import Row
from tests.makedata import COLOURS, synthetic_image

REPORT = ROOT / "test-artifacts" / "faults.md"
FPS = 30
_rows: list[Row] = []


@pytest.fixture(scope="session")
def fault_report() -> list[Row]:
    """Each fault test appends its Row; the table is written once every test has run."""
    return _rows


def table(rows: list[Row]) -> list[str]:
    lines = ["| fault | sent | stored | lost | duplicated | redeliveries absorbed | recovery s |", "|---" * 7 + "|"]
    for r in rows:
        recovery = "never" if r.recovery_s is None else r.recovery_s
        lines.append(f"| {r.fault} | {r.sent} | {r.stored} | {r.lost} | {r.duplicated} | {r.absorbed} | {recovery} |")
    return lines


def pytest_terminal_summary(terminalreporter) -> None:
    if not _rows:
        return
    lines = table(_rows)
    REPORT.parent.mkdir(exist_ok=True)
    header = (
        "# Fault injection\n\nsent: the devices' seq range; stored: distinct (device_id, seq); lost: sent - stored; "
        "duplicated: rows - distinct; redeliveries absorbed: the aggregator's `duplicates` metric (redelivered "
        "predictions it stored once); recovery: the fault over (the peer back) -> everything sent before it stored, "
        "the worst of a fault's repetitions.\n\n"
    )
    REPORT.write_text(header + "\n".join(lines) + "\n")
    terminalreporter.section("fault injection")
    for line in lines:
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(written to {REPORT.relative_to(ROOT)})")


class _Camera(BaseHTTPRequestHandler):
    """An IP camera streaming MJPEG in real time, at FPS, until the device hangs up."""

    jpegs: ClassVar[list[bytes]] = []

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        due = time.monotonic()
        for i in range(10**9):
            data = self.jpegs[(i // 10) % len(self.jpegs)]
            try:
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data))
                self.wfile.write(data + b"\r\n")
            except OSError:
                return
            due += 1 / FPS
            time.sleep(max(due - time.monotonic(), 0))

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="session")
def camera():
    rng = np.random.default_rng(7)
    _Camera.jpegs = [cv2.imencode(".jpg", synthetic_image(c, rng, size=160))[1].tobytes() for c in COLOURS]
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Camera)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
    server.shutdown()
