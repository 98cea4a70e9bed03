"""One camera of the device and what is its own: the capture, the publish policy, the sampler (so the
sample rate limit and the label drift are per camera) and its figures. The model, the outbox and the
MQTT connection are the device's, shared by every camera."""

from __future__ import annotations

import logging
import time

from edge.config import EdgeConfig
from edge.samples import Sampler
from edge.sources.capture import Capture

log = logging.getLogger(__name__)


class PublishPolicy:
    """Every frame, when the top label changes, or at most once per interval."""

    def __init__(self, mode: str, interval_ms: int) -> None:
        self.mode = mode
        self.interval_s = interval_ms / 1000
        self._label: str | None = None
        self._last = float("-inf")

    def should_publish(self, label: str, now: float) -> bool:
        if self.mode == "change":
            changed, self._label = label != self._label, label
            return changed
        if self.mode == "interval":
            if now - self._last < self.interval_s:
                return False
            self._last = now
        return True


class Camera:
    def __init__(self, name: str, capture: Capture, cfg: EdgeConfig, on_wire: bool) -> None:
        """`on_wire`: predictions and samples name the camera (the device has several)."""
        self.name = name
        self.wire_name = name if on_wire else None
        self.capture = capture
        self.policy = PublishPolicy(cfg.publish, cfg.interval_ms)
        self.sampler = Sampler.of(cfg)
        self.counts = {"processed": 0, "published": 0, "errors": 0, "samples": 0}
        self.last_frame = time.monotonic()  # when its last frame was classified (or the device started)

    def figures(self, elapsed_s: float) -> dict[str, float]:
        """For telemetry: frames classified per second since the start, captured, dropped, reopened, published."""
        return {
            "fps": round(self.counts["processed"] / max(elapsed_s, 1e-9), 2),
            **self.capture.counts,
            **self.counts,
            "frame_age_s": round(max(time.monotonic() - self.last_frame, 0.0), 3),
        }
