"""What every request and response passes, whatever the endpoint: security headers on every response
(an endpoint may set a stricter or its own Content-Security-Policy); writes only as JSON (an HTML form
cannot send it, and a cross-site script needs a CORS preflight that this service never grants), from the
service's own origin when a browser sends them, and never bigger than MAX_BODY_BYTES; and, for a service
open on loopback, only requests that name a loopback host (a DNS-rebinding site names its own)."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse

from cloud.api.auth import READS, Access, is_loopback
from common.http_headers import BROWSER_SAFETY

MAX_BODY_BYTES = 64 * 1024
HEADERS = {
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    **BROWSER_SAFETY,
    "cross-origin-resource-policy": "same-origin",
}
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def page_policy(html: str) -> str:
    """The Content-Security-Policy of a page whose script is inline: that script (by its hash) and nothing
    else runs; pictures come from this origin or as blobs the script fetched."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src 'self' blob:; "
        "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


def _host_name(netloc: str) -> str:
    """`host` of `host:port`, `[v6]:port` or `host`, lower case."""
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")].lower()
    return netloc.rsplit(":", 1)[0].lower()


class Guard:
    """Pure ASGI middleware, outside every other, so that its refusals carry the headers too."""

    def __init__(self, app: App, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        headers = Headers(scope=scope)
        refused = self._refusal(scope["method"], headers)
        if refused is None and scope["method"] not in READS:
            body = await _read(receive, headers)
            if body is None:
                refused = 413, f"a request body is at most {MAX_BODY_BYTES} bytes"
            elif body and headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
                refused = 415, "writes take JSON: Content-Type: application/json"
            else:
                receive = _replay(body, receive)
        if refused is not None:
            await JSONResponse({"detail": refused[1]}, refused[0])(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _refusal(self, method: str, headers: Headers) -> tuple[int, str] | None:
        host = _host_name(headers.get("host", ""))
        if self.access.loopback_only and not (is_loopback(host) or host == self.access.public_host):
            return 400, f"this service answers requests for a loopback host, not {host!r}"
        origin = headers.get("origin")
        if method in READS or origin is None:
            return None  # a read no other site can see, or not a browser's write (curl, devices, the CLI)
        netloc = urlsplit(origin).netloc.lower()
        public = self.access.public_host
        if netloc and (netloc == headers.get("host", "").lower() or _host_name(netloc) == public):
            return None
        return 403, f"writes from another origin ({origin}) are refused"


async def _read(receive: Receive, headers: Headers) -> bytes | None:
    """The whole body, or None once it is bigger than allowed (whatever Content-Length claimed)."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return bytes(body)  # gone: the endpoint sees the disconnect next
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            return None
        if not message.get("more_body", False):
            return bytes(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read, then whatever the client sends next (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
