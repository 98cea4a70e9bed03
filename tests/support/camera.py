"""An IP camera for the fault tests: MJPEG over HTTP in real time, at FPS, the labels' colours in turn."""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

FPS = 30


class Camera(BaseHTTPRequestHandler):
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
