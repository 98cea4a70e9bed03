"""The onnx backend: the bundle's model.onnx as the export checked it, ONNX Runtime's execution
providers chosen by what this machine has, and each one it lacks reported with why."""

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from common import bundle
from edge import backends
from edge.backends import cli, nvidia
from edge.backends import onnx as onnx_backend
from edge.backends.onnx import CPU, CUDA, TENSORRT, OnnxBackend


def test_the_export_checks_onnx_against_tflite_and_records_it(tiny_bundle: Path) -> None:
    meta = bundle.load(tiny_bundle).meta
    onnx, tflite = meta.metrics.onnx, meta.metrics.tflite
    assert bundle.ONNX in meta.files
    assert onnx.tflite_agreement == 1.0
    assert (onnx.test_accuracy, onnx.agreement) == (tflite.test_accuracy, tflite.agreement)
    assert onnx.type == "float32"
    assert onnx.size_bytes == (tiny_bundle / bundle.ONNX).stat().st_size
    assert 0 < meta.timings.onnx_s < meta.timings.export_s
    session = ort.InferenceSession(str(tiny_bundle / bundle.ONNX), providers=[CPU])
    (image,) = session.get_inputs()
    assert (image.name, image.type) == ("image", "tensor(uint8)")
    assert isinstance(image.shape[0], str), "the batch dimension is dynamic"
    assert [o.name for o in session.get_outputs()] == ["final_result"]


def test_missing_providers_are_reported_with_why(tiny_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backend = backends.create("onnx", bundle.load(tiny_bundle))
    assert backend.provider == CPU
    assert set(backend.missing) == {TENSORRT, CUDA}  # a CPU-only onnxruntime, no GPU: the hardware edge
    assert all("onnxruntime-gpu" in why for why in backend.missing.values())
    with pytest.raises(backends.BackendUnavailable, match=r"TensorrtExecutionProvider.*has none"):
        OnnxBackend(bundle.load(tiny_bundle), providers=[TENSORRT])

    cli.main(cli.argparse.Namespace(json=True))
    listed = json.loads(capsys.readouterr().out)
    assert listed["auto"] == ["tflite", "onnx", "tf"]
    assert listed["backends"]["onnx"]["available"] is True
    notes = listed["backends"]["onnx"]["notes"]
    assert f"{CPU}: available" in notes
    assert any(note.startswith(f"{TENSORRT}: missing: this onnxruntime") for note in notes)
    assert "without TensorRT" in listed["backends"]["tensorrt"]["reason"]
    cli.main(cli.argparse.Namespace(json=False))
    assert f"{CUDA}: missing: " in capsys.readouterr().out


def test_a_bundle_from_before_onnx_runs_on_the_others(tiny_bundle: Path, tmp_path: Path) -> None:
    old = Path(shutil.copytree(tiny_bundle, tmp_path / "old"))
    (old / bundle.ONNX).unlink()
    bundle.write_meta(old, bundle.read_meta(old))
    with pytest.raises(backends.BackendUnavailable, match=r"has no model\.onnx"):
        backends.create("onnx", bundle.load(old))
    assert backends.create("auto", bundle.load(old)).predict(np.zeros((2, 128, 128, 3), np.uint8)).shape == (2, 3)


def test_a_gpu_provider_that_does_not_start_is_reported(tiny_bundle: Path, tmp_path: Path, monkeypatch) -> None:
    """On a GPU machine whose onnxruntime lists TensorRT and CUDA but cannot start them (the libraries
    missing): the session runs on the CPU, says why, and `auto` passes over it."""
    copy = Path(shutil.copytree(tiny_bundle, tmp_path / "b"))
    monkeypatch.setattr(nvidia, "has_gpu", lambda: True)  # the hardware edge
    monkeypatch.setattr(ort, "get_available_providers", lambda: [TENSORRT, CUDA, CPU])
    with pytest.warns(UserWarning, match="not in available provider names"):  # ONNX Runtime's own view
        backend = OnnxBackend(bundle.load(copy))
    assert backend.provider == CPU
    assert set(backend.missing) == {TENSORRT, CUDA}
    assert all("left it out" in why for why in backend.missing.values())
    assert "not TensorRT" in backend.auto_refusal(gpu=True)
    assert backend.auto_refusal(gpu=False) is None
    (engines,) = (copy / bundle.CACHE).iterdir()  # where TensorRT would have cached its engines
    assert engines.name == onnx_backend.engine_dir(backend.bundle).name
    bundle.load(copy)  # the device's cache is no part of the bundle
