"""The fault suite's fixtures: a camera at 30 fps. (The report every fault adds its row to is
tests/support/fault_report.py, shared with the device-side faults.)"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from tests.support.camera import Camera
from tests.support.data import COLOURS, synthetic_image
from tests.support.ports import free_port


@pytest.fixture(scope="session")
def camera():
    rng = np.random.default_rng(7)
    Camera.jpegs = [cv2.imencode(".jpg", synthetic_image(c, rng, size=160))[1].tobytes() for c in COLOURS]
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Camera)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
    server.shutdown()
