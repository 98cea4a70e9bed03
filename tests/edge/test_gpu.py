"""The tf backend on a GPU: the flowers' test images get the labels they get on the CPU. Skipped, with the
reason, where TensorFlow sees no GPU (tests/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common import bundle
from tests.support.cli import run_cli
from tests.support.paths import ROOT
from tests.support.shared import FLOWERS, MOBILENET_025_224, needs_shared

pytestmark = [pytest.mark.gpu, pytest.mark.slow, needs_shared(FLOWERS), needs_shared(MOBILENET_025_224)]


def _labels(model: Path, paths: list[Path], env: dict[str, str]) -> list[str]:
    command = [sys.executable, "-m", "edge", "classify", "--model", model, "--backend", "tf", "--json", *paths]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line)["top_k"][0]["label"] for line in result.stdout.splitlines()]


def test_tf_on_the_gpu_labels_the_flowers_test_images_as_on_the_cpu(tmp_path: Path) -> None:
    from edge.backends.tf import TFBackend

    flags = ["--architecture", "mobilenet_0.25_224", "--weights", MOBILENET_025_224, "--how-many-training-steps", 100]
    run_cli("cloud", "retrain", "--image-dir", FLOWERS, *flags, "--output-dir", tmp_path / "b", "--bottleneck-dir",
            tmp_path / "bn")  # fmt: skip
    model = bundle.load(tmp_path / "b")
    assert TFBackend(model).device == "GPU"
    paths = [FLOWERS / row["file"] for row in bundle.evaluation(model)]
    on_gpu = _labels(model.path, paths, {})
    on_cpu = _labels(model.path, paths, {"CUDA_VISIBLE_DEVICES": "-1"})
    assert len(on_gpu) == len(paths) >= 200
    assert sum(a == b for a, b in zip(on_gpu, on_cpu, strict=True)) / len(paths) >= 0.995
