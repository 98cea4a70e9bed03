"""Benchmark: the retrainer against the usual Keras transfer-learning recipe, in one run.

1. Bottleneck phase (read + decode + batched forward + cache write) in images/s, beside a bare
   batched forward pass of the same base over images already decoded in memory.
2. Wall time of the retrainer (cold cache: bottlenecks + head training) against a Keras model with
   the frozen base inside, `fit` on the images for the same number of examples seen, and again
   with a warm cache. Ratios are what to compare; this machine is shared and absolute times drift.

    .venv/bin/python tests/bench/bench_retrain.py [--steps 300] [--images DIR]
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

import keras  # noqa: E402
import numpy as np  # noqa: E402

from cloud.retrain import architectures  # noqa: E402
from cloud.retrain.bottlenecks import forward_fn  # noqa: E402
from cloud.retrain.config import RetrainConfig  # noqa: E402
from cloud.retrain.train import retrain  # noqa: E402
from common import images  # noqa: E402
from tests.support.data import write_dataset  # noqa: E402
from tests.support.shared import FLOWERS, MOBILENET_025_224  # noqa: E402

ARCH = "mobilenet_0.25_224"


def bare_forward_rate(paths: list[Path], weights: str, batch: int) -> float:
    arch = architectures.parse(ARCH)
    forward = forward_fn(architectures.feature_extractor(arch, architectures.load_base(arch, weights, 0)), arch.size)
    pixels = np.stack([images.fit(images.read_rgb(p), arch.size, arch.size) for p in paths])
    forward(pixels[:batch])  # trace once, as the retrainer's first batch does
    start = time.perf_counter()
    for i in range(0, len(pixels), batch):
        forward(pixels[i : i + batch]).numpy()
    return len(pixels) / (time.perf_counter() - start)


def keras_fit_seconds(image_dir: Path, weights: str, steps: int, batch: int) -> tuple[float, float]:
    """The usual recipe: image_dataset_from_directory -> frozen base + Dense -> fit."""
    arch = architectures.parse(ARCH)
    base = architectures.load_base(arch, weights, 0)
    base.trainable = False
    model = keras.Sequential(
        [
            keras.Input((arch.size, arch.size, 3)),
            keras.layers.Rescaling(1 / arch.std, offset=-arch.mean / arch.std),
            base,
            keras.layers.Dense(len([d for d in image_dir.iterdir() if d.is_dir()]), activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    data = keras.utils.image_dataset_from_directory(
        image_dir, image_size=(arch.size, arch.size), batch_size=batch, seed=0, verbose=False
    )
    history = model.fit(data.repeat(), steps_per_epoch=steps, epochs=1, verbose=0)
    return time.perf_counter() - start, float(history.history["accuracy"][-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="training steps for both (retrain.py: 4000)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--images", type=Path, help="image folder (default: ../shared flowers, else made)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if args.images:
            image_dir, weights = args.images, "imagenet"
        elif FLOWERS.exists() and MOBILENET_025_224.exists():
            image_dir, weights = FLOWERS, str(MOBILENET_025_224)
        else:
            image_dir, weights = write_dataset(tmp_path / "made", per_label=300), "none"
        paths = sorted(p for p in image_dir.rglob("*") if images.is_image_file(p))

        def run(cache: str) -> dict:
            cfg = RetrainConfig(
                image_dir=image_dir,
                output_dir=tmp_path / f"bundle-{cache}",
                bottleneck_dir=tmp_path / "bn",
                architecture=ARCH,
                weights=weights,
                how_many_training_steps=args.steps,
                train_batch_size=args.batch,
            )
            start = time.perf_counter()
            meta = retrain(cfg)
            return {"meta": meta, "wall_s": time.perf_counter() - start}

        cold = run("cold")
        warm = run("warm")
        bare = bare_forward_rate(paths, weights, 64)
        fit_s, fit_accuracy = keras_fit_seconds(image_dir, weights, args.steps, args.batch)

    cold_meta, warm_meta = cold["meta"], warm["meta"]
    cold_s = cold_meta.timings.bottleneck_s + cold_meta.timings.train_s
    warm_s = warm_meta.timings.bottleneck_s + warm_meta.timings.train_s
    phase_rate = len(paths) / cold_meta.timings.bottleneck_s
    figures = {
        "images": len(paths),
        "examples_seen": args.steps * args.batch,
        "bottleneck_images_per_s": round(phase_rate, 1),
        "bare_forward_images_per_s": round(bare, 1),
        "bottleneck_vs_bare_forward": round(phase_rate / bare, 3),
        "retrainer_cold_s": round(cold_s, 2),
        "retrainer_warm_s": round(warm_s, 2),
        "retrainer_with_export_s": round(cold["wall_s"], 2),
        "keras_fit_s": round(fit_s, 2),
        "keras_fit_over_retrainer_cold": round(fit_s / cold_s, 2),
        "keras_fit_over_retrainer_warm": round(fit_s / warm_s, 2),
        "retrainer_test_accuracy": cold_meta.metrics.test_accuracy,
        "keras_fit_last_batch_accuracy": round(fit_accuracy, 3),
    }
    ratio = phase_rate / bare
    print(f"bottlenecks: {phase_rate:.0f} images/s, bare batched forward {bare:.0f} images/s ({ratio:.2f}x)")
    print(
        f"{figures['examples_seen']} examples seen: retrainer {cold_s:.1f}s cold, {warm_s:.1f}s warm; "
        f"keras fit {fit_s:.1f}s ({fit_s / cold_s:.1f}x cold, {fit_s / warm_s:.1f}x warm)"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
