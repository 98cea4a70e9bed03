"""The issue's acceptance run on the real flower photos with real ImageNet weights, at default flags."""

import json
from pathlib import Path

import pytest

from common import bundle
from tests.support.cli import run_cli
from tests.support.shared import FLOWERS, MOBILENET_025_224, needs_shared

pytestmark = [needs_shared(FLOWERS), needs_shared(MOBILENET_025_224), pytest.mark.slow]
FLAGS = ["--image-dir", FLOWERS, "--architecture", "mobilenet_0.25_224", "--weights", MOBILENET_025_224]


@pytest.fixture(scope="module")
def flowers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One training at retrain.py's defaults: (bundle, bottleneck cache)."""
    root = tmp_path_factory.mktemp("flowers")
    run_cli("cloud", "retrain", *FLAGS, "--output-dir", root / "bundle", "--bottleneck-dir", root / "bn")
    return root / "bundle", root / "bn"


def test_default_flags_reach_the_accuracy_of_the_lab(flowers: tuple[Path, Path]) -> None:
    meta = bundle.load(flowers[0]).meta
    assert meta.training["learning_rate"] == 0.01
    assert meta.training["how_many_training_steps"] == 4000
    assert meta.images.test >= 200
    assert meta.metrics.test_accuracy >= 0.84
    assert json.loads((flowers[0] / "model.json").read_text())["metrics"]["test_accuracy"] >= 0.84
    assert meta.bottlenecks.computed == 2569
    assert meta.metrics.tflite.agreement == 1.0


def test_a_second_run_computes_no_bottleneck(flowers: tuple[Path, Path], tmp_path: Path) -> None:
    args = [
        *FLAGS,
        "--how-many-training-steps",
        "10",
        "--bottleneck-dir",
        flowers[1],
        "--output-dir",
        tmp_path / "b",
    ]
    result = run_cli("cloud", "retrain", *args)
    assert "0 computed, 2569 cached" in result.stdout
    assert bundle.load(tmp_path / "b").meta.bottlenecks.model_dump() == {"computed": 0, "cached": 2569}


def test_onnx_agrees_with_tflite_on_the_test_split(flowers: tuple[Path, Path]) -> None:
    """Measured at export by the edge's own backends on every test image."""
    metrics = bundle.load(flowers[0]).meta.metrics
    assert metrics.onnx.tflite_agreement >= 0.995
    assert metrics.onnx.test_accuracy == metrics.tflite.test_accuracy


@pytest.mark.parametrize("backend", ["tflite", "tf", "onnx"])
def test_classify_agrees_with_training_on_every_test_image(flowers: tuple[Path, Path], backend: str) -> None:
    rows = bundle.evaluation(bundle.load(flowers[0]))
    paths = [FLOWERS / row["file"] for row in rows]
    result = run_cli("edge", "classify", "--model", flowers[0], "--backend", backend, "--json", *paths)
    predicted = [json.loads(line)["top_k"][0]["label"] for line in result.stdout.splitlines()]
    assert predicted == [row["predicted"] for row in rows]
