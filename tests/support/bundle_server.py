"""An HTTP server for bundle archives, as a model origin the device trusts (or one it must not): it
serves what it was given by path, answers 302 where told, 404 with MARKER otherwise, 503 to the first
`failures` requests, and records each request."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.ports import free_port

MARKER = b"MARKER-what-the-server-sent-" * 8


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server: BundleServer = self.server  # type: ignore[assignment]
        server.requests.append(self.path)
        if server.failures > 0:
            server.failures -= 1
            self.send_error(503)
            return
        if self.path in server.redirects:
            self.send_response(302)
            self.send_header("Location", server.redirects[self.path])
            self.end_headers()
            return
        body = server.files.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write(MARKER if body is None else body)

    def log_message(self, *args) -> None:
        pass


class BundleServer(ThreadingHTTPServer):
    """Serves `files` by path, answers 302 for `redirects`, 404 with MARKER otherwise; records each request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", free_port()), _Handler)
        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}
        self.requests: list[str] = []
        self.failures = 0  # answer 503 to this many requests first, as a registry that is restarting
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def add(self, path: str, body: bytes) -> tuple[str, str]:
        self.files[path] = body
        return f"{self.url}{path}", hashlib.sha256(body).hexdigest()
