"""The fault suite's fixtures: a camera at 30 fps. (The report every fault adds its row to is
tests/faults/report.py, shared with the device-side faults.)"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import cv2
import numpy as np
import pytest

from tests.broker import free_port
from tests.makedata import COLOURS, synthetic_image

FPS = 30


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
