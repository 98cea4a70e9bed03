"""Bundle downloads, pinned: only over http(s), only from the origin (scheme, host, port) the device
trusts, no redirects, within a total time and a size cap, and the archive's sha256 checked on the
way. A failure is a Refused whose reason is a short class ("download failed: timeout"): what the
server sent never reaches the device's status, which the cloud's API shows. One that may pass later
(unreachable, a timeout, a server error, a full disk) says so: the updater tries again."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from common.redact import redact
from edge.announcements import Refused

log = logging.getLogger(__name__)

MAX_BYTES = 1024**3
TOTAL_TIMEOUT_S = 600
READ_TIMEOUT_S = 60
CHUNK = 1 << 16
_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> str:
    """`scheme://host:port` of an http(s) URL, the port spelled out; ValueError for anything else."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _PORTS or not parts.hostname:
        raise ValueError(f"{redact(url)!r} is not an http:// or https:// URL with a host")
    return f"{scheme}://{parts.hostname.lower()}:{parts.port or _PORTS[scheme]}"


def _failed(reason: str, detail: str, retry: bool = False) -> Refused:
    return Refused(f"download failed: {reason}", detail, retry)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise _failed("redirect", f"{redact(req.full_url)} redirects ({code}) to {redact(newurl)}: refused")


_OPENER = urllib.request.build_opener(_NoRedirects)


def download(url: str, target: Path, sha256: str, trusted_origin: str | None) -> Path:
    """Fetch `url` to `target` (through a .part file). `trusted_origin` (as `origin` spells it) is
    the only origin allowed; None: the announcement's own, which its signature vouches for."""
    shown = redact(url)
    try:
        announced = origin(url)
    except ValueError as exc:
        raise _failed("off_origin", str(exc)) from exc
    if trusted_origin is not None and announced != trusted_origin:
        raise _failed("off_origin", f"{shown} is not on the trusted origin {trusted_origin}")
    part = target.with_name(target.name + ".part")
    try:
        digest = _fetch(url, part, time.monotonic() + TOTAL_TIMEOUT_S)
        if digest != sha256:
            log.error("%s does not match the announced sha256 (got %s)", shown, digest)
            raise _failed("sha256_mismatch", f"{shown} does not match the announced sha256")
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return target


def _fetch(url: str, part: Path, deadline: float) -> str:
    """The body of `url` into `part`; its sha256."""
    shown = redact(url)
    digest, size = hashlib.sha256(), 0
    try:
        with _create(part) as out, _OPENER.open(url, timeout=READ_TIMEOUT_S) as response:
            if int(response.headers.get("Content-Length") or 0) > MAX_BYTES:
                raise _failed("too_large", f"{shown} is larger than {MAX_BYTES} bytes")
            while chunk := response.read1(CHUNK):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise _failed("too_large", f"{shown} is larger than {MAX_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise _failed("timeout", f"{shown} took more than {TOTAL_TIMEOUT_S} s", retry=True)
                digest.update(chunk)
                _write(out, chunk, part)
    except urllib.error.HTTPError as exc:
        retry = exc.code >= 500 or exc.code == 429  # the server's trouble, or too busy: not the URL's
        raise _failed(f"http {exc.code}", f"{shown} answered {exc.code}", retry) from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        timeout = isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError)
        raise _failed("timeout" if timeout else "unreachable", f"cannot download {shown}: {exc}", retry=True) from exc
    return digest.hexdigest()


def _create(part: Path) -> BinaryIO:
    try:
        return open(part, "wb")
    except OSError as exc:
        raise _failed("disk", f"cannot write {part}: {exc}", retry=True) from exc


def _write(out: BinaryIO, chunk: bytes, part: Path) -> None:
    try:
        out.write(chunk)
    except OSError as exc:
        raise _failed("disk", f"cannot write {part}: {exc}", retry=True) from exc
