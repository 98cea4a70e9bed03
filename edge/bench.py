"""`python -m edge bench`: how fast this device runs a bundle. `model_fps` is the backend alone on
pre-sized frames, --batch of them per call (several cameras' frames go in one call), counted in
frames; `pipeline_fps` adds capture, decode and resize from --source (a synthetic 640x480 frame when
none is given); latency is from capture to result, p50 and p99, in ms."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import bundle
from common.command import SubParsers
from edge import backends
from edge.classifier import Classifier
from edge.sources import create as create_source
from edge.sources.capture import Capture


def add_parser(subparsers: SubParsers) -> None:
    p = subparsers.add_parser("bench", help="measure a bundle's speed on this device")
    p.add_argument("--model", required=True, type=Path, help="model bundle directory")
    p.add_argument("--source", help="video source for the pipeline figure (default: a synthetic frame)")
    p.add_argument("--frames", type=int, default=500, help="frames per measurement (default: 500)")
    p.add_argument("--backend", default="auto", choices=["auto", *backends.REGISTRY], help="default: auto")
    p.add_argument("--batch", type=int, default=1, help="frames per inference call for model_fps (default: 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=main)


def model_fps(classifier: Classifier, frames: int, batch: int = 1) -> float:
    """Frames/s of the backend alone, `batch` frames per call (the multi-camera pipeline batches)."""
    meta = classifier.bundle.meta
    frame = np.zeros((batch, meta.input.height, meta.input.width, 3), np.uint8)
    calls = max(1, frames // batch)
    classifier.backend.predict(frame)  # a new batch size first costs a resize (tflite) or a trace (tf)
    start = time.perf_counter()
    for _ in range(calls):
        classifier.backend.predict(frame)
    return calls * batch / (time.perf_counter() - start)


def pipeline_figures(classifier: Classifier, source: str | None, frames: int) -> tuple[float, list[float]]:
    """Frames/s and capture-to-result latencies (ms) of capture + decode + resize + inference."""
    latencies = []
    if source is None:
        frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
        start = time.perf_counter()
        for _ in range(frames):
            t = time.perf_counter()
            classifier.probabilities([frame])
            latencies.append((time.perf_counter() - t) * 1000)
        return frames / (time.perf_counter() - start), latencies
    capture = Capture(create_source(source), loop=True).start()
    try:
        start = time.perf_counter()
        while len(latencies) < frames:
            if (item := capture.next(timeout_s=5)) is None:
                raise SystemExit(f"no frames from {source}")
            classifier.probabilities([item.image])
            latencies.append((time.time() - item.ts) * 1000)
        return frames / (time.perf_counter() - start), latencies
    finally:
        capture.stop()


def main(args: argparse.Namespace) -> int:
    classifier = Classifier(bundle.load(args.model), args.backend)
    if args.batch < 1:
        raise SystemExit(f"--batch must be at least 1, not {args.batch}")
    fps = model_fps(classifier, args.frames, args.batch)
    pipeline_fps, latencies = pipeline_figures(classifier, args.source, args.frames)
    result: dict[str, Any] = {
        "backend": classifier.backend.name,
        "batch": args.batch,
        "model_fps": round(fps, 1),
        "pipeline_fps": round(pipeline_fps, 1),
        "latency_ms": {
            "p50": round(float(np.percentile(latencies, 50)), 3),
            "p99": round(float(np.percentile(latencies, 99)), 3),
        },
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['backend']}: model {fps:.0f} frames/s, pipeline {pipeline_fps:.0f} frames/s, "
            f"latency p50 {result['latency_ms']['p50']} ms, p99 {result['latency_ms']['p99']} ms"
        )
    return 0
