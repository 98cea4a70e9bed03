"""The device's health endpoint (`--health-port`), what a container's HEALTHCHECK or a Kubernetes probe
asks. It listens on every address by default (probes reach the pod's), so it tells nothing a camera saw:
the age of the last classified frame (in all and per camera), whether the broker is connected, and how
many messages wait in the outbox. 503 once no frame of any camera was classified for --health-stall-s (a
pipeline that stopped: a restart may help); one camera of several that is down shows in its own frame
age, not as unhealthy (a restart would not bring it back). A broker outage is not unhealthy either (the
outbox keeps what the device says until the broker is back, and a restart would not bring it sooner).
`/metrics` says the same and more for Prometheus (edge/metrics.py)."""

from __future__ import annotations

import json
import logging
import time
from http.server import ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from edge import metrics
from edge.httpd import Handler, serve
from edge.pipeline import Pipeline

log = logging.getLogger(__name__)


class Health:
    def __init__(self, pipeline: Pipeline, stall_s: float, port: int, host: str = "0.0.0.0") -> None:
        self.pipeline = pipeline
        self.stall_s = stall_s
        scraped = metrics.registry(pipeline)
        health = self

        class HealthHandler(Handler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/metrics":
                    self.send_body(200, CONTENT_TYPE_LATEST, generate_latest(scraped))
                    return
                if path not in ("/", "/healthz"):
                    self.send_error(404)
                    return
                healthy, report = health.report()
                self.send_body(200 if healthy else 503, "application/json", json.dumps(report).encode())

            def send_body(self, status: int, content_type: str, body: bytes) -> None:
                self.send_common(status, content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server: ThreadingHTTPServer = serve(host, port, HealthHandler, "health")
        self.port = self.server.server_address[1]

    def report(self) -> tuple[bool, dict[str, object]]:
        age = time.monotonic() - self.pipeline.last_frame
        healthy = age <= self.stall_s
        if not healthy:
            log.warning("unhealthy: no frame classified for %.0f s", age)
        publisher = self.pipeline.publisher
        now = time.monotonic()
        return healthy, {
            "status": "healthy" if healthy else "stalled",
            "frame_age_s": round(age, 3),
            "frames": self.pipeline.counts["processed"],
            "broker_connected": publisher.connected,
            "outbox_depth": publisher.pending(),
            "cameras": {
                c.name: {"frame_age_s": round(max(now - c.last_frame, 0.0), 3), "frames": c.counts["processed"]}
                for c in self.pipeline.cameras
            },
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
