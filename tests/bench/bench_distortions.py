"""Benchmark: what the camera distortions cost per training step. A distorted step distorts a batch
and runs it through the base (no cached bottleneck); this times that step with retrain.py's
distortions alone, with the camera ones alone, with both, and each camera distortion by itself,
against retrain.py's (medians). Ratios are what to compare; this machine is shared and absolute times drift.

    .venv/bin/python tests/bench/bench_distortions.py [--steps 10] [--batch 100] [--images DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from cloud.retrain import architectures  # noqa: E402
from cloud.retrain.bottlenecks import forward_fn  # noqa: E402
from cloud.retrain.config import RetrainConfig  # noqa: E402
from cloud.retrain.distortions import make_distorter  # noqa: E402
from common import images  # noqa: E402
from tests.support.data import write_dataset  # noqa: E402
from tests.support.shared import FLOWERS, MOBILENET_025_224  # noqa: E402

ARCH = "mobilenet_0.25_224"
RETRAIN_PY = {"flip_left_right": True, "random_crop": 10, "random_scale": 10, "random_brightness": 10}
CAMERA = {
    "random_low_resolution": 4.0,
    "random_blur": 2.0,
    "random_noise": 10.0,
    "random_jpeg_quality": 30,
    "random_colour": 20,
}


def step_seconds(configurations: dict[str, dict], pixels: np.ndarray, forward, steps: int, batch: int) -> dict:
    """Per configuration: median seconds of one distorted step (distort + forward), and of the
    distortion alone. The configurations take turns, step by step, so load on a shared machine
    falls on all of them alike."""
    size = pixels.shape[1]
    distorters = {
        n: make_distorter(RetrainConfig(image_dir=Path("x"), **o), size, 0) for n, o in configurations.items()
    }
    rng = np.random.default_rng(0)
    batches = [pixels[rng.choice(len(pixels), batch)] for _ in range(steps)]
    for distort in distorters.values():
        forward(distort(batches[0]))  # trace once, as the first training step does
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in distorters}
    for chosen in batches:
        for name, distort in distorters.items():
            start = time.perf_counter()
            distorted = distort(chosen)
            distorting = time.perf_counter() - start
            forward(distorted).numpy()
            times[name].append((time.perf_counter() - start, distorting))
    return {name: tuple(np.median(np.array(t), axis=0)) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per configuration")
    parser.add_argument("--batch", type=int, default=100, help="images per step (retrain.py: 100)")
    parser.add_argument("--images", type=Path, help="image folder (default: ../shared flowers, else made)")
    args = parser.parse_args()

    arch = architectures.parse(ARCH)
    with tempfile.TemporaryDirectory() as tmp:
        if args.images:
            image_dir, weights = args.images, "imagenet"
        elif FLOWERS.exists() and MOBILENET_025_224.exists():
            image_dir, weights = FLOWERS, str(MOBILENET_025_224)
        else:
            image_dir, weights = write_dataset(Path(tmp) / "made", per_label=100), "none"
        paths = sorted(p for p in image_dir.rglob("*") if images.is_image_file(p))
        paths = paths[:: max(1, len(paths) // 300)]  # a spread of a few hundred: enough to draw batches from
        pixels = np.stack([images.fit(images.read_rgb(p), arch.size, arch.size) for p in paths])
    forward = forward_fn(architectures.feature_extractor(arch, architectures.load_base(arch, weights, 0)), arch.size)

    configurations = {"retrain_py": RETRAIN_PY, "camera": CAMERA, "both": RETRAIN_PY | CAMERA}
    configurations |= {flag: {flag: value} for flag, value in CAMERA.items()}
    seconds = step_seconds(configurations, pixels, forward, args.steps, args.batch)
    plain_step = seconds["retrain_py"][0]
    figures = {
        "images": len(pixels),
        "batch": args.batch,
        "steps": args.steps,
        **{f"{name}_step_ms": round(1000 * step, 1) for name, (step, _) in seconds.items()},
        **{f"{name}_distort_ms": round(1000 * distort, 1) for name, (_, distort) in seconds.items()},
        **{f"{name}_step_over_retrain_py": round(step / plain_step, 2) for name, (step, _) in seconds.items()},
    }
    for name, (step, distort) in seconds.items():
        print(f"{name:>22}: {1000 * step:7.1f} ms/step ({1000 * distort:6.1f} distorting), "
              f"{step / plain_step:.2f}x retrain.py's distorted step")  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
