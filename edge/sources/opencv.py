"""Sources OpenCV opens: V4L2 cameras, the Jetson CSI camera (GStreamer), RTSP, video files."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from edge.sources import gstreamer, params
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
    """`/dev/video0`, `v4l2:///dev/video0` or a camera index; `?width=1280&height=720&fps=30` asks the
    camera for that size and rate (it may choose the nearest it has: the log says what it gives)."""

    api = cv2.CAP_V4L2

    def __init__(self, uri: str) -> None:
        device, self.settings = params.split(uri, params.FRAME)
        device = device.removeprefix("v4l2://")
        super().__init__(uri, int(device) if device.isdigit() else device)

    def open(self) -> None:
        super().open()
        assert self._cap is not None
        for key, value in self.settings.items():
            self._cap.set(V4L2_PROPERTIES[key], value)
        if self.settings:
            given = {key: round(self._cap.get(V4L2_PROPERTIES[key])) for key in self.settings}
            if given != self.settings:
                log.warning("%s asked for %s, the camera gives %s", self, self.settings, given)


V4L2_PROPERTIES = {"width": cv2.CAP_PROP_FRAME_WIDTH, "height": cv2.CAP_PROP_FRAME_HEIGHT, "fps": cv2.CAP_PROP_FPS}


class RTSPSource(OpenCVSource):
    """An RTSP stream through FFmpeg; on a Jetson, decoded by its hardware (nvv4l2decoder) first, and
    through FFmpeg only when no hardware pipeline opens a stream that FFmpeg opens. The query is the
    camera's own and passes through."""

    api = cv2.CAP_FFMPEG

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self.hardware = gstreamer.on_jetson() and gstreamer.available()

    def open(self) -> None:
        if self.hardware:
            for pipeline in gstreamer.rtsp_pipelines(self.uri):
                cap = cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
                if cap.isOpened():
                    self._cap = cap
                    return
                cap.release()
        super().open()
        if self.hardware:
            log.warning("%s: hardware decoding (nvv4l2decoder) did not open the stream; decoding with FFmpeg", self)
            self.hardware = False


class VideoFileSource(OpenCVSource):
    live = False

    def __init__(self, uri: str) -> None:
        path = uri.removeprefix("file://")
        if not Path(path).is_file():
            raise SourceError(f"no such video file: {path}")
        super().__init__(uri, path)

    def _ended(self) -> Exception:
        return EndOfStream(str(self))


CSI_SETTINGS: params.Ranges = {**params.FRAME, "flip": gstreamer.FLIPS}


class CSISource(OpenCVSource):
    """`csi://0`: the Jetson's MIPI CSI camera through nvarguscamerasrc (OpenCV built with GStreamer);
    `?width=1920&height=1080&fps=30&flip=2` sets the sensor mode and nvvidconv's flip-method."""

    api = cv2.CAP_GSTREAMER

    def __init__(self, uri: str) -> None:
        sensor, settings = params.split(uri, CSI_SETTINGS)
        sensor = sensor.removeprefix("csi://") or "0"
        if not sensor.isdigit():
            raise SourceError(f"CSI sensor must be a number: {uri}")
        super().__init__(uri, gstreamer.csi_pipeline(int(sensor), **settings))

    def open(self) -> None:
        if not gstreamer.available():
            raise SourceError(f"{self}: this OpenCV has no GStreamer support (use the Jetson image's OpenCV)")
        super().open()
