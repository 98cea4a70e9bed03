"""HTTP MJPEG (`multipart/x-mixed-replace`), what IP cameras and the edge preview serve. Read with
the standard library: each part is one JPEG; a corrupt part is one bad frame, not a dead stream."""

from __future__ import annotations

import logging
import urllib.request
from http.client import HTTPResponse

import numpy as np

from common import images
from edge.sources.base import BadFrame, Source, SourceError

log = logging.getLogger(__name__)

MAX_PART_BYTES = 16 * 1024 * 1024
TIMEOUT_S = 10


class MJPEGSource(Source):
    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self._response: HTTPResponse | None = None

    def open(self) -> None:
        try:
            response = urllib.request.urlopen(self.uri, timeout=TIMEOUT_S)
        except OSError as exc:
            raise SourceError(f"cannot open {self}: {exc}") from exc
        content_type = response.headers.get("Content-Type", "")
        if "multipart" not in content_type:
            response.close()
            raise SourceError(f"{self} is not an MJPEG stream (Content-Type {content_type!r})")
        self._response = response

    def _part(self) -> bytes:
        assert self._response is not None
        length = None
        while True:  # part headers, after the boundary line
            line = self._response.readline(4096)
            if not line:
                raise SourceError(f"{self} closed the stream")
            text = line.strip().lower()
            if text.startswith(b"content-length:"):
                length = int(text.split(b":", 1)[1])
                if length <= 0:
                    raise SourceError(f"{self}: a part with Content-Length {length}")
            elif not text and length is not None:
                break
        if length > MAX_PART_BYTES:
            raise SourceError(f"{self}: a {length}-byte part is too large")
        data = self._response.read(length)
        if len(data) < length:
            raise SourceError(f"{self} closed the stream mid-frame")
        return data

    def read(self) -> np.ndarray:
        if self._response is None:
            raise SourceError(f"{self} is not open")
        try:
            data = self._part()
        except (OSError, ValueError) as exc:
            raise SourceError(f"{self}: {exc}") from exc
        try:
            return images.decode_rgb(data)
        except images.ImageError as exc:
            raise BadFrame(f"{self}: {exc}") from exc

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None
