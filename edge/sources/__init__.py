"""Video sources chosen by URI, as jetson-inference does: `v4l2:///dev/video0`, `/dev/video0` or an
index, `csi://0`, `rtsp://…`, `http(s)://…` (MJPEG), a video file, or a folder of images. Cameras
take their settings in the query (edge/sources/params.py)."""

from __future__ import annotations

import re
from pathlib import Path

from edge.sources.base import BadFrame, EndOfStream, Frame, Source, SourceError
from edge.sources.files import ImageFolderSource
from edge.sources.mjpeg import MJPEGSource
from edge.sources.opencv import CSISource, RTSPSource, V4L2Source, VideoFileSource

__all__ = ["SCHEMES", "BadFrame", "EndOfStream", "Frame", "Source", "SourceError", "create"]

SCHEMES: dict[str, type[Source]] = {
    "v4l2": V4L2Source,
    "csi": CSISource,
    "rtsp": RTSPSource,
    "http": MJPEGSource,
    "https": MJPEGSource,
    "file": VideoFileSource,
}


def create(uri: str) -> Source:
    """The source for `uri`; a bare path is a folder of images, a video file, or a /dev/video device."""
    if match := re.match(r"^([a-z0-9]+)://", uri):
        scheme = match.group(1)
        if scheme not in SCHEMES:
            raise SourceError(f"unknown source scheme {scheme}://; known: {', '.join(SCHEMES)}")
        if scheme == "file" and Path(uri.removeprefix("file://")).is_dir():
            return ImageFolderSource(uri)
        return SCHEMES[scheme](uri)
    if uri.partition("?")[0].isdigit() or uri.startswith("/dev/video"):
        return V4L2Source(uri)
    path = Path(uri)
    if path.is_dir():
        return ImageFolderSource(uri)
    if path.is_file():
        return VideoFileSource(uri)
    raise SourceError(f"no such source: {uri} (not a file, folder, camera or URL)")
