"""A real RTSP camera: rtsp_server.py run by the system Python (GStreamer's RTSP server bindings are a
Debian package, not in the venv), serving an H.264 .mp4 in a loop, stopped and started again at will."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.ports import free_port

SERVER = Path(__file__).with_name("rtsp_server.py")


class RTSPCamera:
    def __init__(self, video: Path) -> None:
        self.video = video
        self.port = free_port()
        self.url = f"rtsp://127.0.0.1:{self.port}/live"
        self.proc: subprocess.Popen | None = None

    def start(self) -> RTSPCamera:
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(SERVER), str(self.video), str(self.port)], stdout=subprocess.PIPE
        )
        assert self.proc.stdout.readline().strip() == b"ready"
        return self

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
