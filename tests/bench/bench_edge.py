"""Benchmark: the edge pipeline against a bare loop and a naive Keras loop, in one run.

On a 640x480 MJPG video, frames/s of:
1. the pipeline: capture thread + inference + publishing every prediction to a real Mosquitto;
2. a bare loop doing only decode, resize and inference with the same backend;
3. a naive loop calling Keras `model.predict` per frame (the SavedModel through keras.layers.TFSMLayer).
And latency: the pipeline's p99 from capture to publish against the model's own p99.
Targets: pipeline >= 0.9x bare, >= 20x naive; p99 capture->publish <= model p99 + 10 ms.

    .venv/bin/python tests/bench/bench_edge.py [--frames 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from cloud.retrain.config import RetrainConfig  # noqa: E402
from cloud.retrain.train import retrain  # noqa: E402
from common import bundle, images  # noqa: E402
from edge.backends import create  # noqa: E402
from edge.config import EdgeConfig  # noqa: E402
from edge.run import Device  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.data import write_dataset  # noqa: E402
from tests.support.keys import registry_keys  # noqa: E402
from tests.support.shared import FLOWERS, MOBILENET_025_224  # noqa: E402


def make_bundle(tmp: Path) -> tuple[Path, list[Path]]:
    if FLOWERS.exists() and MOBILENET_025_224.exists():
        image_dir, weights = FLOWERS, str(MOBILENET_025_224)
    else:
        image_dir, weights = write_dataset(tmp / "made", per_label=40), "none"
    cfg = RetrainConfig(
        image_dir=image_dir,
        output_dir=tmp / "bundle",
        bottleneck_dir=tmp / "bn",
        architecture="mobilenet_0.25_224",
        weights=weights,
        how_many_training_steps=200,
    )
    retrain(cfg)
    return tmp / "bundle", sorted(p for p in image_dir.rglob("*") if images.is_image_file(p))


def make_video(path: Path, photos: list[Path], frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    for i in range(frames):
        writer.write(cv2.resize(cv2.imread(str(photos[i % len(photos)])), (640, 480)))
    writer.release()
    return path


def bare_fps(model: Path, video: Path, frames: int) -> tuple[float, list[float]]:
    loaded = bundle.load(model)
    backend = create("tflite", loaded)
    size = (loaded.meta.input.height, loaded.meta.input.width)
    cap = cv2.VideoCapture(str(video))
    infer_ms = []
    start = time.perf_counter()
    for _ in range(frames):
        ok, bgr = cap.read()
        if not ok:
            cap.release()
            cap = cv2.VideoCapture(str(video))
            ok, bgr = cap.read()
        x = images.fit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), *size)[None]
        t = time.perf_counter()
        backend.predict(x)
        infer_ms.append((time.perf_counter() - t) * 1000)
    return frames / (time.perf_counter() - start), infer_ms


def naive_keras_fps(model: Path, video: Path, frames: int) -> float:
    import keras

    layer = keras.layers.TFSMLayer(str(model / "saved_model"), call_endpoint="serving_default")
    meta = bundle.load(model).meta
    inputs = keras.Input((meta.input.height, meta.input.width, 3), dtype="uint8", name="image")
    net = keras.Model(inputs, layer(inputs))
    cap = cv2.VideoCapture(str(video))
    start = time.perf_counter()
    for _ in range(frames):
        _, bgr = cap.read()
        x = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (meta.input.width, meta.input.height))[None]
        net.predict(x, verbose=0)
    return frames / (time.perf_counter() - start)


def pipeline_fps(model: Path, video: Path, frames: int, tmp: Path) -> tuple[float, list[float], dict]:
    broker = Mosquitto(tmp / "broker").start()
    try:
        cfg = EdgeConfig(
            source=str(video),
            model=model,
            broker=broker.url,
            device_id="bench",
            backend="tflite",
            loop=True,
            max_frames=frames,
            state_dir=tmp / "state",
            sample_threshold=0.0,
            trusted_key=registry_keys()[1],
        )
        device = Device(cfg)
        start = time.perf_counter()  # until every prediction is acknowledged by the broker
        device.operate(threading.Event())
        elapsed = time.perf_counter() - start
        return frames / elapsed, list(device.pipeline.total_ms), dict(device.publisher.counts)
    finally:
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--naive-frames", type=int, default=150)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model, photos = make_bundle(tmp)
        video = make_video(tmp / "video.avi", photos, 300)
        bare, infer_ms = bare_fps(model, video, args.frames)
        pipe, total_ms, mqtt = pipeline_fps(model, video, args.frames, tmp)
        naive = naive_keras_fps(model, video, args.naive_frames)
    model_p99 = float(np.percentile(infer_ms, 99))
    publish_p99 = float(np.percentile(total_ms, 99))
    figures = {
        "pipeline_fps": round(pipe, 1),
        "bare_fps": round(bare, 1),
        "naive_keras_fps": round(naive, 1),
        "pipeline_over_bare": round(pipe / bare, 3),
        "pipeline_over_naive": round(pipe / naive, 1),
        "model_p99_ms": round(model_p99, 3),
        "capture_to_publish_p50_ms": round(float(np.percentile(total_ms, 50)), 3),
        "capture_to_publish_p99_ms": round(publish_p99, 3),
        "p99_margin_ms": round(publish_p99 - model_p99, 3),
        "published": mqtt["published"],
        "acked": mqtt["acked"],
    }
    print(
        f"pipeline {pipe:.0f} fps, bare loop {bare:.0f} fps ({pipe / bare:.2f}x), naive Keras {naive:.1f} fps "
        f"({pipe / naive:.0f}x); p99 capture->publish {publish_p99:.1f} ms vs model p99 {model_p99:.1f} ms"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
