"""`python -m edge classify`, run as a user runs it."""

import json
import shutil
from pathlib import Path

import pytest

from common import bundle
from tests.support.cli import run_cli


def _json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.parametrize("backend", ["tflite", "tf", "onnx"])
def test_every_backend_agrees_with_training_time_evaluation(tiny_bundle: Path, tiny_images: Path, backend: str):
    rows = bundle.evaluation(bundle.load(tiny_bundle))
    paths = [tiny_images / row["file"] for row in rows]
    result = run_cli("edge", "classify", "--model", tiny_bundle, "--backend", backend, "--json", *paths)
    records = _json_lines(result.stdout)
    assert [r["image"] for r in records] == [str(p) for p in paths]
    assert [r["top_k"][0]["label"] for r in records] == [row["predicted"] for row in rows]
    for record, row in zip(records, rows, strict=True):
        assert record["top_k"][0]["score"] == pytest.approx(row["score"], abs=1e-4)


def test_json_format_and_top_k_on_a_folder(tiny_bundle: Path, tiny_images: Path) -> None:
    result = run_cli("edge", "classify", "--model", tiny_bundle, "--top_k", "2", "--json", tiny_images / "red")
    records = _json_lines(result.stdout)
    assert len(records) == 40
    for record in records:
        assert set(record) == {"image", "top_k"}
        assert [set(p) for p in record["top_k"]] == [{"label", "score"}] * 2
        assert record["top_k"][0]["score"] >= record["top_k"][1]["score"]


def test_plain_output_lists_labels_and_scores(tiny_bundle: Path, tiny_images: Path) -> None:
    image = next((tiny_images / "blue").iterdir())
    result = run_cli("edge", "classify", "--model", tiny_bundle, "--top-k", "3", image)
    lines = result.stdout.splitlines()
    assert lines[0] == str(image)
    assert sorted(line.split()[0] for line in lines[1:]) == ["blue", "green", "red"]


def test_a_corrupt_image_is_reported_and_the_rest_classified(tiny_bundle: Path, tiny_images: Path, tmp_path: Path):
    good = sorted((tiny_images / "green").iterdir())[:2]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    result = run_cli("edge", "classify", "--model", tiny_bundle, "--json", good[0], bad, good[1], check=False)
    assert result.returncode == 1
    assert [r["image"] for r in _json_lines(result.stdout)] == [str(good[0]), str(good[1])]
    assert "bad.jpg" in result.stderr
    assert "1 image(s) could not be read" in result.stderr


def test_tensorrt_where_it_cannot_run_says_why(tiny_bundle: Path, tiny_images: Path) -> None:
    result = run_cli("edge", "classify", "--model", tiny_bundle, "--backend", "tensorrt", tiny_images, check=False)
    assert result.returncode == 2
    assert "backend 'tensorrt' cannot run here" in result.stderr


def test_a_tampered_bundle_is_refused(tiny_bundle: Path, tiny_images: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tiny_bundle, tmp_path / "b"))
    (copy / "labels.txt").write_text("cat\ndog\nfish\n")
    result = run_cli("edge", "classify", "--model", copy, tiny_images, check=False)
    assert result.returncode == 2
    assert "error:" in result.stderr
    assert "labels.txt does not match its sha256" in result.stderr
    assert result.stdout == ""


def test_no_images_or_a_bad_top_k_is_a_clear_error(tiny_bundle: Path, tmp_path: Path) -> None:
    result = run_cli("edge", "classify", "--model", tiny_bundle, tmp_path, check=False)
    assert result.returncode == 2
    assert "no images in" in result.stderr
    result = run_cli("edge", "classify", "--model", tiny_bundle, "--top-k", "0", tmp_path, check=False)
    assert result.returncode == 2
    assert "must be 1 or more" in result.stderr


def test_bench_prints_the_designed_figures(tiny_bundle: Path, tmp_path: Path) -> None:
    from tests.support.data import write_video

    video = write_video(tmp_path / "v.avi", frames=10)
    args = ["--model", tiny_bundle, "--source", video, "--frames", "30", "--batch", "8", "--json"]
    figures = json.loads(run_cli("edge", "bench", *args).stdout)
    assert set(figures) == {"backend", "batch", "model_fps", "pipeline_fps", "latency_ms"}
    assert (figures["backend"], figures["batch"]) == ("tflite", 8)
    assert figures["model_fps"] > 0
    assert figures["pipeline_fps"] > 0
    assert 0 < figures["latency_ms"]["p50"] <= figures["latency_ms"]["p99"]


def test_bench_runs_a_backend_at_a_batch(tiny_bundle: Path) -> None:
    result = run_cli(
        "edge", "bench", "--model", tiny_bundle, "--backend", "onnx", "--batch", "8", "--frames", "16", "--json"
    )
    figures = json.loads(result.stdout)
    assert figures["backend"] == "onnx"
    assert figures["model_fps"] > 0
