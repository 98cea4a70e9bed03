"""Benchmark: the inference backends on this machine's CPU, against TFLite, in one run.

One bundle (MobileNet 0.25 at 224 on the flowers where ../shared has them, else made-up images), each
backend that loads here (`onnx`, `tf`; TensorRT needs a GPU) timed the way `python -m edge bench` times
model_fps, at batch 1 and batch 8 (several cameras' frames in one call), in interleaved rounds so that the
machine's noise falls on every backend alike. Printed: frames/s (median of the rounds) and the ratio to
TFLite at the same batch, in wall time and per CPU second of the process. Also the top-1 agreement with
TFLite on the same photos.

    .venv/bin/python tests/bench/bench_backends.py [--frames 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from common import bundle, images  # noqa: E402
from edge.backends import BackendUnavailable, create  # noqa: E402
from tests.bench.bench_edge import make_bundle  # noqa: E402

BACKENDS = ("tflite", "onnx", "tf")


def timed(backend, frames: np.ndarray, calls: int) -> tuple[float, float]:
    """Frames/s in wall time and per CPU second of this process."""
    backend.predict(frames)  # a new batch size may plan anew: not part of the figure
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        backend.predict(frames)
    n = calls * len(frames)
    return n / (time.perf_counter() - wall), n / max(time.process_time() - cpu, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=400, help="frames per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        model, photos = make_bundle(Path(tmp_name))
        loaded = bundle.load(model)
        loaded_backends, missing = {}, {}
        for name in BACKENDS:
            try:
                loaded_backends[name] = create(name, loaded)
            except BackendUnavailable as exc:
                missing[name] = str(exc)
        rng = np.random.default_rng(0)
        shape = (loaded.meta.input.height, loaded.meta.input.width, 3)
        figures: dict[str, dict[str, float]] = {}
        for batch in (1, 8):
            frames = rng.integers(0, 256, (batch, *shape), dtype=np.uint8)
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name in loaded_backends}
            for _ in range(args.rounds):
                for name, backend in loaded_backends.items():
                    runs[name].append(timed(backend, frames, max(1, args.frames // batch)))
            for name, measured in runs.items():
                fps = statistics.median(w for w, _ in measured)
                per_cpu = statistics.median(c for _, c in measured)
                figures[f"{name}@{batch}"] = {"fps": round(fps, 1), "frames_per_cpu_s": round(per_cpu, 1)}
        probe = np.stack(
            [images.fit(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), *shape[:2]) for p in photos[::7][:64]]
        )
        reference = loaded_backends["tflite"].predict(probe).argmax(1)
        agreement = {
            name: float((backend.predict(probe).argmax(1) == reference).mean())
            for name, backend in loaded_backends.items()
        }
    for key, value in figures.items():
        base = figures[f"tflite@{key.split('@')[1]}"]
        value["vs_tflite"] = round(value["fps"] / base["fps"], 2)
        value["vs_tflite_per_cpu_s"] = round(value["frames_per_cpu_s"] / base["frames_per_cpu_s"], 2)
        print(
            f"{key:10} {value['fps']:8.1f} frames/s ({value['vs_tflite']:.2f}x tflite), "
            f"{value['frames_per_cpu_s']:8.1f} per CPU s ({value['vs_tflite_per_cpu_s']:.2f}x)"
        )
    for name, why in missing.items():
        print(f"{name:10} not measured: {why}")
    print(json.dumps({"figures": figures, "top1_agreement_with_tflite": agreement, "missing": missing}))


if __name__ == "__main__":
    main()
