"""Sources by URI, and capture: newest frame, every frame of a file, bad frames, reopening."""

import base64
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge import sources
from edge.sources import gstreamer
from edge.sources.capture import Capture
from edge.sources.gstreamer import csi_pipeline
from tests.support.data import synthetic_image, write_dataset, write_video
from tests.support.ports import free_port
from tests.support.rtsp import RTSPCamera
from tests.support.waiting import wait_for


def test_registry_picks_the_source_by_uri(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.avi", frames=3)
    assert type(sources.create("v4l2:///dev/video0")).__name__ == "V4L2Source"
    assert type(sources.create("/dev/video1")).__name__ == "V4L2Source"
    assert type(sources.create("0")).__name__ == "V4L2Source"
    assert type(sources.create("csi://0")).__name__ == "CSISource"
    assert type(sources.create("rtsp://user:secret@cam/live")).__name__ == "RTSPSource"
    assert type(sources.create("http://cam/mjpg")).__name__ == "MJPEGSource"
    assert type(sources.create(str(video))).__name__ == "VideoFileSource"
    assert type(sources.create(f"file://{video}")).__name__ == "VideoFileSource"
    assert type(sources.create(str(tmp_path))).__name__ == "ImageFolderSource"
    with pytest.raises(sources.SourceError, match="unknown source scheme gopher"):
        sources.create("gopher://x")
    with pytest.raises(sources.SourceError, match="no such source"):
        sources.create(str(tmp_path / "missing.mp4"))


def test_credentials_never_show_in_a_source_s_name() -> None:
    assert "secret" not in repr(sources.create("rtsp://user:secret@cam/live"))


def test_csi_uses_nvarguscamerasrc() -> None:
    pipeline = csi_pipeline(1, 1920, 1080, 30)
    assert pipeline.startswith("nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM), width=(int)1920")
    assert pipeline.endswith("appsink drop=true max-buffers=1")


def test_csi_size_rate_and_flip_from_the_uri() -> None:
    pipeline = sources.create("csi://0?width=1920&height=1080&fps=60&flip=2").target
    assert pipeline == (
        "nvarguscamerasrc sensor-id=0 ! "
        "video/x-raw(memory:NVMM), width=(int)1920, height=(int)1080, framerate=(fraction)60/1 ! "
        "nvvidconv flip-method=2 ! video/x-raw, format=(string)BGRx ! videoconvert ! "
        "video/x-raw, format=(string)BGR ! appsink drop=true max-buffers=1"
    )
    assert sources.create("csi://1").target == csi_pipeline(1, 1280, 720, 30, 0)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("csi://0?widht=1920", "csi://0: unknown parameter 'widht'; it takes width, height, fps, flip"),
        ("v4l2:///dev/video0?flip=2", "unknown parameter 'flip'; it takes width, height, fps"),
        ("/dev/video0?fps=30&fps=60", "fps is given twice"),
        ("csi://0?flip=8", "flip must be a whole number from 0 to 7, not '8'"),
        ("0?width=wide", "width must be a whole number from 1 to 16384, not 'wide'"),
        ("csi://0?width", "csi://0: a malformed query 'width'"),
    ],
)
def test_a_camera_parameter_it_does_not_take_is_a_clear_error(uri: str, message: str) -> None:
    with pytest.raises(sources.SourceError, match=re.escape(message)):
        sources.create(uri)


class _Hardware:
    """cv2.VideoCapture at the hardware edge: what was opened with which API, what was set; `opens`
    says which APIs open, `gives` overrides what the camera reports back."""

    def __init__(self, opens: set[int], gives: dict[int, float] | None = None) -> None:
        self.opens, self.gives, self.calls, self.set = opens, gives or {}, [], {}

    def __call__(self, target, api):
        self.calls.append((target, api))
        hardware = self

        class Capture:
            def isOpened(self) -> bool:
                return api in hardware.opens

            def set(self, prop: int, value: float) -> bool:
                hardware.set[prop] = value
                return True

            def get(self, prop: int) -> float:
                return hardware.gives.get(prop, hardware.set.get(prop, 0.0))

            def release(self) -> None:
                pass

        return Capture()


def test_v4l2_size_and_rate_are_set_on_the_camera(monkeypatch, caplog) -> None:
    camera = _Hardware({cv2.CAP_V4L2}, gives={cv2.CAP_PROP_FPS: 25.0})
    monkeypatch.setattr(cv2, "VideoCapture", camera)
    sources.create("v4l2:///dev/video2?width=1280&height=720&fps=30").open()
    assert camera.calls == [("/dev/video2", cv2.CAP_V4L2)]
    assert camera.set == {cv2.CAP_PROP_FRAME_WIDTH: 1280, cv2.CAP_PROP_FRAME_HEIGHT: 720, cv2.CAP_PROP_FPS: 30}
    assert "the camera gives {'width': 1280, 'height': 720, 'fps': 25}" in caplog.text
    sources.create("0?fps=15").open()
    assert camera.calls[-1] == (0, cv2.CAP_V4L2)
    assert camera.set[cv2.CAP_PROP_FPS] == 15


@pytest.mark.parametrize("hardware_opens", [True, False])
def test_rtsp_on_a_jetson_decodes_in_hardware_else_with_ffmpeg(monkeypatch, caplog, hardware_opens: bool) -> None:
    camera = _Hardware({cv2.CAP_GSTREAMER, cv2.CAP_FFMPEG} if hardware_opens else {cv2.CAP_FFMPEG})
    monkeypatch.setattr(cv2, "VideoCapture", camera)
    monkeypatch.setattr(gstreamer, "on_jetson", lambda: True)
    monkeypatch.setattr(gstreamer, "available", lambda: True)
    uri = "rtsp://viewer:secret@cam.local:554/live?channel=1"
    source = sources.create(uri)
    source.open()
    source.open()  # a reopen
    h264, h265 = gstreamer.rtsp_pipelines(uri)
    assert h264.startswith(f'rtspsrc location="{uri}" latency=200 ! rtph264depay ! h264parse ! nvv4l2decoder ! ')
    assert "rtph265depay ! h265parse ! nvv4l2decoder" in h265
    if hardware_opens:
        assert camera.calls == [(h264, cv2.CAP_GSTREAMER)] * 2
    else:
        tried = [(h264, cv2.CAP_GSTREAMER), (h265, cv2.CAP_GSTREAMER), (uri, cv2.CAP_FFMPEG), (uri, cv2.CAP_FFMPEG)]
        assert camera.calls == tried, "FFmpeg only, once hardware decoding failed on a stream that plays"
        assert "decoding with FFmpeg" in caplog.text
    assert "secret" not in caplog.text


def test_a_missing_camera_is_retried_not_fatal() -> None:
    capture = Capture(sources.create("/dev/video63")).start()
    assert capture.next(timeout_s=0.3) is None
    assert not capture.ended
    capture.stop()


def _drain(capture: Capture) -> list:
    frames = []
    while not capture.ended:
        if (frame := capture.next(timeout_s=2)) is not None:
            frames.append(frame)
    return frames


def test_a_file_hands_over_every_frame_then_ends(tmp_path: Path) -> None:
    capture = Capture(sources.create(str(write_video(tmp_path / "v.avi", frames=25)))).start()
    frames = _drain(capture)
    assert [f.index for f in frames] == list(range(25))
    assert frames[0].image.shape == (480, 640, 3)
    assert capture.counts["dropped"] == 0


def test_a_file_loops_when_asked(tmp_path: Path) -> None:
    capture = Capture(sources.create(str(write_video(tmp_path / "v.avi", frames=5))), loop=True).start()
    indices = [capture.next(timeout_s=2).index for _ in range(12)]
    capture.stop()
    assert indices == list(range(12))


def test_a_folder_skips_and_counts_corrupt_images(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "d", per_label=2)
    (root / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 nope")
    capture = Capture(sources.create(str(root))).start()
    assert len(_drain(capture)) == 6
    assert capture.counts["bad_frames"] == 1


class _Camera(BaseHTTPRequestHandler):
    """An IP camera: an MJPEG stream of `frames` parts (one corrupt), then it hangs up."""

    frames = 8

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        rng = np.random.default_rng(0)
        for i in range(self.frames):
            _, jpeg = cv2.imencode(".jpg", synthetic_image("blue", rng, size=64))
            data = b"\xff\xd8 corrupt \xff\xd9" if i == 3 else jpeg.tobytes()
            part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data)
            try:
                self.wfile.write(part + data + b"\r\n")
            except BrokenPipeError:
                return
            time.sleep(0.01)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def camera():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Camera)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
    server.shutdown()


def test_mjpeg_stream_skips_a_corrupt_part_and_reopens_when_dropped(camera: str) -> None:
    capture = Capture(sources.create(camera)).start()
    frames = []
    wait_for(lambda: frames.append(capture.next(0.2)) or capture.counts["reopens"] >= 2, 20, "two reopenings")
    capture.stop()
    assert capture.counts["bad_frames"] >= 2
    assert capture.counts["frames"] >= 14
    assert sum(f is not None for f in frames) >= 3
    assert all(f.image.shape == (64, 64, 3) for f in frames if f is not None)


def test_a_live_source_hands_over_the_newest_frame_and_counts_the_dropped(camera: str) -> None:
    capture = Capture(sources.create(camera)).start()
    wait_for(lambda: capture.counts["frames"] >= 12, 20, "frames")
    frame = capture.next(0.5)
    capture.stop()
    assert frame is not None
    assert capture.counts["dropped"] >= 5


def test_an_rtsp_stream_that_stops_is_reopened(rtsp_camera: RTSPCamera) -> None:
    capture = Capture(sources.create(rtsp_camera.url)).start()
    try:
        wait_for(lambda: capture.counts["frames"] >= 20, 60, "frames over RTSP")
        frame = capture.next(1)
        assert frame is not None
        assert frame.image.shape == (480, 640, 3)
        rtsp_camera.stop()
        wait_for(lambda: capture.counts["reopens"] >= 1, 60, "the dropped stream to be noticed")
        before = capture.counts["frames"]
        rtsp_camera.start()
        wait_for(lambda: capture.counts["frames"] >= before + 20, 60, "frames after the camera came back")
    finally:
        capture.stop()


USER, PASSWORD = "viewer", "p@ss:w/rd"
LOGIN = "viewer:p%40ss%3Aw%2Frd"  # as the URI spells it


class _CameraWithoutLengths(BaseHTTPRequestHandler):
    """An IP camera behind basic auth whose parts carry no Content-Length: `frames` JPEGs, then it hangs up.
    The server's `content_type` says the boundary (quoted) or not at all; its `delimiter` starts each part."""

    frames = 12

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Authorization")))  # type: ignore[attr-defined]
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_error(401)
            return
        self.send_response(200)
        self.send_header("Content-Type", self.server.content_type)  # type: ignore[attr-defined]
        self.end_headers()
        rng = np.random.default_rng(1)
        self.wfile.write(b"a preamble line\r\n")
        for i in range(self.frames):
            colour = ("red", "green", "blue")[i % 3]
            _, jpeg = cv2.imencode(".jpg", synthetic_image(colour, rng, size=96 + i))
            self.wfile.write(self.server.delimiter + b"\r\nContent-Type: image/jpeg\r\n\r\n" + jpeg.tobytes() + b"\r\n")  # type: ignore[attr-defined]
        self.wfile.write(self.server.delimiter + b"--\r\n")  # type: ignore[attr-defined]

    def log_message(self, *args) -> None:
        pass


def _read_to_the_end(source: sources.Source) -> list[tuple[int, ...]]:
    """The shapes of the frames an open source reads until the stream closes."""
    shapes = []
    with pytest.raises(sources.SourceError, match="closed the stream"):
        _append_forever(source, shapes)
    return shapes


def _append_forever(source: sources.Source, shapes: list[tuple[int, ...]]) -> None:
    while True:
        shapes.append(source.read().shape)


@pytest.mark.parametrize(
    ("content_type", "delimiter"),
    [
        ('multipart/x-mixed-replace; boundary="myboundary"', b"--myboundary"),
        ("multipart/x-mixed-replace;boundary=--myboundary", b"--myboundary"),  # as many cameras do
        ("multipart/x-mixed-replace;boundary=--myboundary", b"----myboundary"),  # as RFC 2046 says
        ("multipart/x-mixed-replace", b"--myboundary"),
    ],
)
def test_mjpeg_without_content_length_and_with_credentials(content_type: str, delimiter: bytes, caplog) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _CameraWithoutLengths)
    server.content_type, server.delimiter, server.requests = content_type, delimiter, []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    caplog.set_level("DEBUG")
    try:
        source = sources.create(f"http://{LOGIN}@127.0.0.1:{port}/video.mjpg")
        source.open()
        shapes = _read_to_the_end(source)
        source.close()
        assert shapes == [(96 + i, 96 + i, 3) for i in range(_CameraWithoutLengths.frames)], "every frame, whole"
        wrong = sources.create(f"http://viewer:nope@127.0.0.1:{port}/video.mjpg")
        with pytest.raises(sources.SourceError, match="401") as refused:
            wrong.open()
    finally:
        server.shutdown()
    assert [path for path, _ in server.requests] == ["/video.mjpg"] * 2, "the credentials left the URL"
    shown = f"{caplog.text} {refused.value} {source!r}"
    assert not [secret for secret in (PASSWORD, "p%40ss", "nope") if secret in shown]
