"""The device's small HTTP servers (the preview, the health endpoint): one thread each, a thread per
client, nothing logged per request, and headers that keep a browser from framing or sniffing them."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common.errors import ConfigError
from common.http_headers import BROWSER_SAFETY

log = logging.getLogger(__name__)

HEADERS = {**BROWSER_SAFETY, "Cache-Control": "no-store"}


class Handler(BaseHTTPRequestHandler):
    """A handler whose answers carry HEADERS and whose requests are not logged."""

    def send_common(self, status: int, content_type: str, policy: str = "default-src 'none'") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Security-Policy", f"{policy}; frame-ancestors 'none'")
        for name, value in HEADERS.items():
            self.send_header(name, value)

    def log_message(self, *args) -> None:
        pass


def serve(host: str, port: int, handler: type[Handler], name: str) -> ThreadingHTTPServer:
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:  # taken, or not an address of this machine
        raise ConfigError(f"the {name} cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    log.info("%s on http://%s:%d/", name, host, server.server_address[1])
    return server
