"""Sources OpenCV opens: V4L2 cameras, the Jetson CSI camera (GStreamer), RTSP, video files."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from edge.sources.base import EndOfStream, Source, SourceError

log = logging.getLogger(__name__)


class OpenCVSource(Source):
    api = cv2.CAP_ANY

    def __init__(self, uri: str, target: str | int | None = None) -> None:
        super().__init__(uri)
        self.target = uri if target is None else target
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        cap = cv2.VideoCapture(self.target, self.api)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self}")
        self._cap = cap

    def _ended(self) -> Exception:
        return SourceError(f"{self} stopped delivering frames")

    def read(self) -> np.ndarray:
        if self._cap is None:
            raise SourceError(f"{self} is not open")
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            raise self._ended()
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class V4L2Source(OpenCVSource):
    """`/dev/video0`, `v4l2:///dev/video0` or a camera index."""

    api = cv2.CAP_V4L2

    def __init__(self, uri: str) -> None:
        device = uri.removeprefix("v4l2://")
        super().__init__(uri, int(device) if device.isdigit() else device)


class RTSPSource(OpenCVSource):
    api = cv2.CAP_FFMPEG


class VideoFileSource(OpenCVSource):
    live = False

    def __init__(self, uri: str) -> None:
        path = uri.removeprefix("file://")
        if not Path(path).is_file():
            raise SourceError(f"no such video file: {path}")
        super().__init__(uri, path)

    def _ended(self) -> Exception:
        return EndOfStream(str(self))


def csi_pipeline(sensor_id: int, width: int = 1280, height: int = 720, fps: int = 30) -> str:
    """The GStreamer pipeline jetson-inference and NVIDIA's samples use for a CSI camera."""
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! "
        f"video/x-raw(memory:NVMM), width=(int){width}, height=(int){height}, framerate=(fraction){fps}/1 ! "
        "nvvidconv ! video/x-raw, format=(string)BGRx ! videoconvert ! video/x-raw, format=(string)BGR ! "
        "appsink drop=true max-buffers=1"
    )


class CSISource(OpenCVSource):
    """`csi://0`: the Jetson's MIPI CSI camera through nvarguscamerasrc (OpenCV built with GStreamer)."""

    api = cv2.CAP_GSTREAMER

    def __init__(self, uri: str) -> None:
        sensor = uri.removeprefix("csi://") or "0"
        if not sensor.isdigit():
            raise SourceError(f"CSI sensor must be a number: {uri}")
        super().__init__(uri, csi_pipeline(int(sensor)))

    def open(self) -> None:
        if "GStreamer:                   YES" not in cv2.getBuildInformation():
            raise SourceError(f"{self}: this OpenCV has no GStreamer support (use the Jetson image's OpenCV)")
        super().open()
