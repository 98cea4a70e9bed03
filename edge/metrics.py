"""The device's Prometheus metrics, served by the health endpoint at `/metrics` (edge/health.py): frames
classified and predictions published by camera, the frame rate, the inference latency as a histogram,
the outbox's depth and whether the broker is connected. Read from the pipeline at scrape time; only the
histogram is observed as frames go (once per inference call)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edge.cameras import Camera
from edge.publisher import Publisher

INFER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)


def inference_histogram() -> Histogram:
    return Histogram(
        "edgeloop_edge_inference_seconds", "time of one inference call (a batch of frames) in the backend",
        buckets=INFER_BUCKETS, registry=None,
    )  # fmt: skip


class Pipeline(Protocol):
    """What is read of edge.pipeline.Pipeline (which observes `inference`)."""

    @property
    def cameras(self) -> Sequence[Camera]: ...
    @property
    def publisher(self) -> Publisher: ...
    @property
    def inference(self) -> Histogram: ...
    @property
    def fps(self) -> float: ...


class PipelineCollector(Collector):
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def collect(self) -> Iterator[Metric]:
        pipeline = self.pipeline
        camera = ["camera"]
        frames = CounterMetricFamily("edgeloop_edge_frames", "frames classified", labels=camera)
        published = CounterMetricFamily("edgeloop_edge_predictions_published", "predictions published", labels=camera)
        errors = CounterMetricFamily("edgeloop_edge_frame_errors", "frames that failed", labels=camera)
        for c in pipeline.cameras:
            frames.add_metric([c.name], c.counts["processed"])
            published.add_metric([c.name], c.counts["published"])
            errors.add_metric([c.name], c.counts["errors"])
        yield from (frames, published, errors)
        yield GaugeMetricFamily("edgeloop_edge_fps", "frames classified per second since the start", pipeline.fps)
        yield GaugeMetricFamily(
            "edgeloop_edge_outbox_pending", "predictions waiting to be sent", pipeline.publisher.pending()
        )
        yield GaugeMetricFamily(
            "edgeloop_edge_broker_connected", "1 while connected to the broker", float(pipeline.publisher.connected)
        )
        yield from pipeline.inference.collect()


def registry(pipeline: Pipeline) -> CollectorRegistry:
    scraped = CollectorRegistry()
    scraped.register(PipelineCollector(pipeline))
    return scraped
