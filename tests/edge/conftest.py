"""Fixtures of the edge runtime's tests: a video to run on, an RTSP camera, and a recorder on a real broker."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.broker import Mosquitto, Recorder
from tests.support.data import write_video
from tests.support.rtsp import RTSPCamera
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "colours.avi", frames=30)


@pytest.fixture
def recorder(broker: Mosquitto):
    rec = Recorder(broker.url, "edgeloop/#")
    wait_for(rec.client.is_connected, 10, "the recorder to connect")
    yield rec
    rec.close()


@pytest.fixture
def rtsp_camera(tmp_path: Path):
    if (
        not shutil.which("ffmpeg")
        or subprocess.run(
            ["/usr/bin/python3", "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"], capture_output=True
        ).returncode
    ):
        pytest.skip("GStreamer's RTSP server or ffmpeg is not installed (make test installs them)")
    avi = write_video(tmp_path / "v.avi", frames=60)
    mp4 = tmp_path / "v.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-i",
            str(avi),
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "30",
            str(mp4),
        ],
        check=True,
    )
    camera = RTSPCamera(mp4).start()
    yield camera
    camera.stop()
