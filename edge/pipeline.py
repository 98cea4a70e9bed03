"""The streaming loop: the cameras' newest frames, batched -> classifier -> each camera's publish
policy -> outbox, plus samples and telemetry. One bad frame, batch or publish is logged and counted;
it never stops the loop, and one camera's trouble never stops the others."""

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
from edge.cameras import Camera
from edge.classifier import Classifier
from edge.config import EdgeConfig
from edge.frame_collector import Collector
from edge.metrics import inference_histogram
from edge.preview import Preview
from edge.publisher import Publisher
from edge.sources.base import Frame
from edge.telemetry import system_stats

log = logging.getLogger(__name__)

LATENCY_WINDOW = 1000


class Pipeline:
    def __init__(
        self, cfg: EdgeConfig, classifier: Classifier, cameras: list[Camera], collector: Collector, publisher: Publisher
    ) -> None:
        self.cfg = cfg
        self.classifier = classifier
        self.cameras = cameras
        self.collector = collector
        self.publisher = publisher
        for camera in cameras:
            camera.sampler.expect(classifier.labels, classifier.bundle.meta.images.per_label)
        self.batches = 0
        self.preview: Preview | None = None
        self.infer_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.total_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.inference = inference_histogram()
        self._started = time.monotonic()

    @property
    def counts(self) -> dict[str, int]:
        """The cameras' counts added up: processed, published, errors, samples."""
        total = dict.fromkeys(self.cameras[0].counts, 0)
        for camera in self.cameras:
            for key, value in camera.counts.items():
                total[key] += value
        return total

    @property
    def elapsed(self) -> float:
        """Seconds since the start."""
        return max(time.monotonic() - self._started, 1e-9)

    @property
    def fps(self) -> float:
        """Frames classified per second since the start."""
        return round(self.counts["processed"] / self.elapsed, 2)

    @property
    def last_frame(self) -> float:
        """Monotonic time the last frame of any camera was classified (or the loop started)."""
        return max(camera.last_frame for camera in self.cameras)

    def run(self, stop: threading.Event) -> None:
        """Classify frames until `stop` is set, every source ends, or --max-frames is reached."""
        self._started = time.monotonic()
        for camera in self.cameras:
            camera.last_frame = self._started
        while not stop.is_set():
            batch = self.collector.collect(timeout_s=0.5)
            if not batch:
                if self.collector.ended:
                    log.info("every source ended after %d frames", self.counts["processed"])
                    return
                continue
            if self.cfg.max_frames:
                batch = batch[: self.cfg.max_frames - self.counts["processed"]]
            self._process([(self.cameras[i], frame) for i, frame in batch])
            if self.cfg.max_frames and self.counts["processed"] >= self.cfg.max_frames:
                return

    def swap(self, classifier: Classifier) -> None:
        """Run `classifier` from the next batch on (the batch in flight finishes on the old one); the
        samplers measure drift from its training labels."""
        for camera in self.cameras:
            camera.sampler.expect(classifier.labels, classifier.bundle.meta.images.per_label)
        self.classifier = classifier
        self.collector.size = classifier.size

    def _process(self, batch: list[tuple[Camera, Frame]]) -> None:
        """One inference call for the batch, then each frame decided on its own: one that fails is counted
        against its camera and the others go on."""
        classifier = self.classifier
        start = time.perf_counter()
        try:
            probabilities = classifier.probabilities([_input(classifier, frame) for _, frame in batch])
            if len(probabilities) != len(batch):
                raise ValueError(f"the backend gave {len(probabilities)} rows for {len(batch)} frames")
        except Exception:
            for camera, _ in batch:
                camera.counts["errors"] += 1
            log.exception("a batch of %d frames failed; carrying on", len(batch))
            return
        infer_ms = (time.perf_counter() - start) * 1000
        self.batches += 1
        self.infer_ms.append(infer_ms)
        self.inference.observe(infer_ms / 1000)
        for (camera, frame), row in zip(batch, probabilities, strict=True):
            try:
                self._decide(classifier, camera, frame, row, infer_ms)
            except Exception:
                camera.counts["errors"] += 1
                log.exception("camera %s: frame %d failed; carrying on", camera.name, frame.index)

    def _decide(
        self, classifier: Classifier, camera: Camera, frame: Frame, probabilities: np.ndarray, infer_ms: float
    ) -> None:
        top = classifier.top_k(probabilities, self.cfg.top_k)
        camera.counts["processed"] += 1
        camera.last_frame = time.monotonic()
        camera.sampler.observe(probabilities)
        if self.preview is not None:
            self.preview.offer(camera.name, frame.image, top[0].label, top[0].score)
        if not camera.policy.should_publish(top[0].label, time.time()):
            return
        if not all(math.isfinite(p.score) for p in top):
            raise ValueError(f"the model gave a non-finite score: {top}")  # before taking a seq: no gap
        scores = [protocol.Score(label=p.label, score=min(max(p.score, 0.0), 1.0)) for p in top]
        seq = self.publisher.next_seq()
        total_ms = (time.time() - frame.ts) * 1000
        prediction = protocol.Prediction(
            device_id=self.cfg.device_id,
            seq=seq,
            ts=frame.ts,
            camera=camera.wire_name,
            model=classifier.model_ref,
            top_k=scores,
            latency_ms=protocol.Latency(infer=round(infer_ms, 3), total=round(max(total_ms, 0.0), 3)),
        )
        self.publisher.submit(protocol.PREDICTIONS, prediction.batched(), seq)
        self.total_ms.append(total_ms)
        camera.counts["published"] += 1
        # Offline, a sample could not leave: picking one would spend the rate limit and the near-duplicate
        # memory on a frame nobody receives.
        if self.publisher.connected and (reason := camera.sampler.pick(probabilities, frame.image)):
            camera.counts["samples"] += int(self._send_sample(frame.image, prediction, reason))

    def _send_sample(self, image: np.ndarray, prediction: protocol.Prediction, reason: str) -> bool:
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            return False
        meta = protocol.SampleMeta.of(prediction, reason)
        return self.publisher.publish_now(
            protocol.SAMPLES,
            jpeg.tobytes(),
            content_type="image/jpeg",
            user_property=[(protocol.SAMPLES.meta_property, meta.encode().decode())],
        )

    def telemetry(self, system: dict[str, object]) -> protocol.Telemetry:
        elapsed = self.elapsed
        infer = np.array(self.infer_ms) if self.infer_ms else np.zeros(1)
        total = np.array(self.total_ms) if self.total_ms else np.zeros(1)
        captured: dict[str, int] = {}
        for camera in self.cameras:
            for key, value in camera.capture.counts.items():
                captured[key] = captured.get(key, 0) + value
        return protocol.Telemetry(
            device_id=self.cfg.device_id,
            ts=time.time(),
            fps=self.fps,
            backend=self.classifier.backend.name,
            model=self.classifier.model_ref,
            latency_ms=protocol.Percentiles(
                infer_p50=round(float(np.percentile(infer, 50)), 3),
                infer_p99=round(float(np.percentile(infer, 99)), 3),
                total_p50=round(float(np.percentile(total, 50)), 3),
                total_p99=round(float(np.percentile(total, 99)), 3),
            ),
            frames={**captured, **self.counts, "batches": self.batches},
            cameras={camera.name: camera.figures(elapsed) for camera in self.cameras},
            samples=self._samples(),
            outbox={"pending": self.publisher.pending(), "dropped": self.publisher.outbox.counter("dropped")},
            mqtt=dict(self.publisher.counts),
            system=system,
        )

    def _samples(self) -> dict[str, int | float]:
        """The samplers' counts added up, and the largest random share and label drift of any camera."""
        figures: dict[str, int | float] = {}
        for camera in self.cameras:
            for key, value in camera.sampler.figures().items():
                merge = max if key in ("random_share", "label_drift") else sum
                figures[key] = merge((figures[key], value)) if key in figures else value
        return figures


def _input(classifier: Classifier, frame: Frame) -> np.ndarray:
    """The frame as the capture thread resized it, or whole when it was resized for another model (a swap)."""
    fitted = frame.model_input
    return fitted if fitted is not None and fitted.shape[:2] == classifier.size else frame.image


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
