"""Sources by URI, and capture: newest frame, every frame of a file, bad frames, reopening."""

import base64
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge import sources
from edge.sources.capture import Capture
from edge.sources.opencv import csi_pipeline
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
    The server's `content_type` says the boundary (quoted) or not at all."""

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
            self.wfile.write(b"--myboundary\r\nContent-Type: image/jpeg\r\n\r\n" + jpeg.tobytes() + b"\r\n")
        self.wfile.write(b"--myboundary--\r\n")

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
    "content_type",
    [
        'multipart/x-mixed-replace; boundary="myboundary"',
        "multipart/x-mixed-replace;boundary=--myboundary",
        "multipart/x-mixed-replace",
    ],
)
def test_mjpeg_without_content_length_and_with_credentials(content_type: str, caplog) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _CameraWithoutLengths)
    server.content_type, server.requests = content_type, []  # type: ignore[attr-defined]
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
