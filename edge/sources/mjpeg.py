"""HTTP MJPEG (`multipart/x-mixed-replace`), what IP cameras and the edge preview serve. Read with
the standard library: each part is one JPEG; a corrupt part is one bad frame, not a dead stream.
A part's end is its Content-Length or, as many cameras send none, the next boundary line (the
Content-Type's boundary, else the first `--` line the stream starts with). `http://user:pass@cam/…`
logs in with HTTP basic auth: the credentials leave the URL and travel only in a header that is
never sent on to where a redirect points."""

from __future__ import annotations

import base64
import logging
import re
import urllib.request
from http.client import HTTPResponse
from urllib.parse import unquote, urlsplit, urlunsplit

import numpy as np

from common import images
from edge.sources.base import BadFrame, Source, SourceError

log = logging.getLogger(__name__)

MAX_PART_BYTES = 16 * 1024 * 1024
MAX_LINE = 64 * 1024
TIMEOUT_S = 10


def request(uri: str) -> urllib.request.Request:
    """A GET of `uri` without its user:password, which go in a basic Authorization header instead."""
    parts = urlsplit(uri)
    if parts.username is None:
        return urllib.request.Request(uri)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{parts.port}" if parts.port else ""
    req = urllib.request.Request(urlunsplit(parts._replace(netloc=netloc)))
    login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    req.add_unredirected_header("Authorization", "Basic " + base64.b64encode(login.encode()).decode())
    return req


def delimiter(content_type: str) -> bytes | None:
    """The line that starts each part, from the Content-Type's boundary (quoted or not, `--` or not)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type, re.IGNORECASE)
    if match is None:
        return None
    boundary = match.group(1).strip().encode()
    return boundary if boundary.startswith(b"--") else b"--" + boundary


class MJPEGSource(Source):
    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self._response: HTTPResponse | None = None
        self._delimiter: bytes | None = None
        self._in_part = False  # the part's delimiter line is read: the previous body ended on it

    def open(self) -> None:
        try:
            response = urllib.request.urlopen(request(self.uri), timeout=TIMEOUT_S)
        except (OSError, ValueError) as exc:
            raise SourceError(f"cannot open {self}: {exc}") from exc
        content_type = response.headers.get("Content-Type", "")
        if "multipart" not in content_type:
            response.close()
            raise SourceError(f"{self} is not an MJPEG stream (Content-Type {content_type!r})")
        self._response = response
        self._delimiter = delimiter(content_type)
        self._in_part = False

    def _line(self) -> bytes:
        assert self._response is not None
        line = self._response.readline(MAX_LINE)
        if not line:
            raise SourceError(f"{self} closed the stream")
        return line

    def _is_delimiter(self, line: bytes) -> bool:
        if self._delimiter is None and line.startswith(b"--"):
            self._delimiter = line.rstrip()  # no boundary in the Content-Type: the stream's first one is it
        # RFC 2046 puts `--` before the boundary even where it starts with `--`; some cameras leave it out.
        return self._delimiter is not None and line.startswith((self._delimiter, b"--" + self._delimiter))

    def _headers(self) -> int | None:
        """Read up to the next part's body; its Content-Length, if it gave one."""
        skipped = 0
        while not self._in_part:  # the CRLF after the previous body, or a preamble
            line = self._line()
            self._in_part = self._is_delimiter(line)
            skipped += len(line)
            if skipped > MAX_PART_BYTES:
                raise SourceError(f"{self}: no part boundary in {MAX_PART_BYTES} bytes")
        self._in_part = False
        length = None
        while text := self._line().strip().lower():
            if text.startswith(b"content-length:"):
                length = int(text.split(b":", 1)[1])
                if length <= 0:
                    raise SourceError(f"{self}: a part with Content-Length {length}")
        return length

    def _body(self, length: int | None) -> bytes:
        assert self._response is not None
        if length is not None:
            if length > MAX_PART_BYTES:
                raise SourceError(f"{self}: a {length}-byte part is too large")
            data = self._response.read(length)
            if len(data) < length:
                raise SourceError(f"{self} closed the stream mid-frame")
            return data
        chunks: list[bytes] = []
        size, line_start = 0, True
        while True:
            line = self._line()
            if line_start and self._is_delimiter(line):
                self._in_part = True
                break
            chunks.append(line)
            size += len(line)
            if size > MAX_PART_BYTES:
                raise SourceError(f"{self}: a part without Content-Length ran past {MAX_PART_BYTES} bytes")
            line_start = line.endswith(b"\n")
        data = b"".join(chunks)
        return data[:-2] if data.endswith(b"\r\n") else data.removesuffix(b"\n")  # the delimiter's own line break

    def read(self) -> np.ndarray:
        if self._response is None:
            raise SourceError(f"{self} is not open")
        try:
            data = self._body(self._headers())
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
