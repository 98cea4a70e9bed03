"""The streaming loop: newest frame -> classifier -> publish policy -> outbox, plus samples and
telemetry. One bad frame or one failed publish is logged and counted; it never stops the loop."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable

import cv2
import numpy as np

from common import protocol
from edge.classifier import Classifier
from edge.config import EdgeConfig
from edge.preview import Preview
from edge.publisher import Publisher
from edge.samples import Sampler
from edge.sources.capture import Capture
from edge.telemetry import system_stats

log = logging.getLogger(__name__)

LATENCY_WINDOW = 1000


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


class Pipeline:
    def __init__(self, cfg: EdgeConfig, classifier: Classifier, capture: Capture, publisher: Publisher) -> None:
        self.cfg = cfg
        self.classifier = classifier
        self.capture = capture
        self.publisher = publisher
        self.policy = PublishPolicy(cfg.publish, cfg.interval_ms)
        self.sampler = Sampler.of(cfg)
        self.sampler.expect(classifier.labels, classifier.bundle.meta.images.per_label)
        self.counts = {"processed": 0, "published": 0, "errors": 0, "samples": 0}
        self.preview: Preview | None = None
        self.infer_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.total_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._started = time.monotonic()
        self.last_frame = self._started  # monotonic time the last frame was classified (or the loop started)

    def run(self, stop: threading.Event) -> None:
        """Classify frames until `stop` is set, the source ends, or --max-frames is reached."""
        self._started = self.last_frame = time.monotonic()
        while not stop.is_set():
            frame = self.capture.next(timeout_s=0.5)
            if frame is None:
                if self.capture.ended:
                    log.info("source ended after %d frames", self.counts["processed"])
                    return
                continue
            try:
                self._process(frame.image, frame.ts)
            except Exception:
                self.counts["errors"] += 1
                log.exception("frame %d failed; carrying on", frame.index)
            if self.cfg.max_frames and self.counts["processed"] >= self.cfg.max_frames:
                return

    def swap(self, classifier: Classifier) -> None:
        """Run `classifier` from the next frame on (the frame in flight finishes on the old one); the
        sampler measures drift from its training labels."""
        self.sampler.expect(classifier.labels, classifier.bundle.meta.images.per_label)
        self.classifier = classifier

    def _process(self, image: np.ndarray, ts: float) -> None:
        classifier = self.classifier
        start = time.perf_counter()
        probabilities = classifier.probabilities([image])[0]
        infer_ms = (time.perf_counter() - start) * 1000
        top = classifier.top_k(probabilities, self.cfg.top_k)
        self.counts["processed"] += 1
        self.last_frame = time.monotonic()
        self.infer_ms.append(infer_ms)
        self.sampler.observe(probabilities)
        if self.preview is not None:
            self.preview.offer(image, top[0].label, top[0].score)
        if not self.policy.should_publish(top[0].label, time.time()):
            return
        if not all(math.isfinite(p.score) for p in top):
            raise ValueError(f"the model gave a non-finite score: {top}")  # before taking a seq: no gap
        scores = [protocol.Score(label=p.label, score=min(max(p.score, 0.0), 1.0)) for p in top]
        seq = self.publisher.next_seq()
        total_ms = (time.time() - ts) * 1000
        prediction = protocol.Prediction(
            device_id=self.cfg.device_id,
            seq=seq,
            ts=ts,
            model=classifier.model_ref,
            top_k=scores,
            latency_ms=protocol.Latency(infer=round(infer_ms, 3), total=round(max(total_ms, 0.0), 3)),
        )
        self.publisher.submit(protocol.PREDICTIONS, prediction.batched(), seq)
        self.total_ms.append(total_ms)
        self.counts["published"] += 1
        if reason := self.sampler.pick(probabilities, image):
            self._send_sample(image, prediction, reason)

    def _send_sample(self, image: np.ndarray, prediction: protocol.Prediction, reason: str) -> None:
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            return
        meta = protocol.SampleMeta.of(prediction, reason)
        sent = self.publisher.publish_now(
            protocol.SAMPLES,
            jpeg.tobytes(),
            content_type="image/jpeg",
            user_property=[(protocol.SAMPLES.meta_property, meta.encode().decode())],
        )
        self.counts["samples"] += int(sent)

    def telemetry(self, system: dict[str, object]) -> protocol.Telemetry:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        infer = np.array(self.infer_ms) if self.infer_ms else np.zeros(1)
        total = np.array(self.total_ms) if self.total_ms else np.zeros(1)
        return protocol.Telemetry(
            device_id=self.cfg.device_id,
            ts=time.time(),
            fps=round(self.counts["processed"] / elapsed, 2),
            backend=self.classifier.backend.name,
            model=self.classifier.model_ref,
            latency_ms=protocol.Percentiles(
                infer_p50=round(float(np.percentile(infer, 50)), 3),
                infer_p99=round(float(np.percentile(infer, 99)), 3),
                total_p50=round(float(np.percentile(total, 50)), 3),
                total_p99=round(float(np.percentile(total, 99)), 3),
            ),
            frames={**self.capture.counts, **self.counts},
            samples=self.sampler.figures(),
            outbox={"pending": self.publisher.pending(), "dropped": self.publisher.outbox.counter("dropped")},
            mqtt=dict(self.publisher.counts),
            system=system,
        )


class TelemetryReporter(threading.Thread):
    """Publishes the pipeline's figures and the system's readings every interval."""

    def __init__(
        self, pipeline: Pipeline, interval_s: float, stop: threading.Event, updates: Callable[[], dict[str, int]]
    ) -> None:
        super().__init__(name="telemetry", daemon=True)
        self.pipeline = pipeline
        self.interval_s = interval_s
        self.stop = stop
        self.updates = updates

    def run(self) -> None:
        stats = system_stats()
        try:
            while not self.stop.wait(self.interval_s):
                try:
                    telemetry = self.pipeline.telemetry(stats.read()).model_copy(update={"updates": self.updates()})
                    self.pipeline.publisher.publish_now(protocol.TELEMETRY, telemetry.encode())
                except Exception:
                    log.exception("telemetry failed; carrying on")
        finally:
            stats.close()
