import shutil
from pathlib import Path

import numpy as np
import pytest

from common import bundle, images
from edge import backends
from edge.classifier import Classifier
from tests.support.data import synthetic_image


def test_registry_reports_what_loads_here() -> None:
    available = backends.availability()
    assert set(available) == {"tflite", "tf", "tensorrt", "onnx"}
    assert available["tflite"] is None
    assert available["tf"] is None
    assert available["onnx"] is None
    assert "without TensorRT" in available["tensorrt"] or "no GPU" in available["tensorrt"]


def test_auto_prefers_the_gpu_backends_when_there_is_a_gpu(tiny_bundle: Path, monkeypatch) -> None:
    monkeypatch.setattr(backends, "has_gpu", lambda: True)  # the hardware edge: no GPU here
    assert backends.auto_order() == ("onnx", "tensorrt", "tf", "tflite")
    # ONNX Runtime runs on the CPU only here, TF-TRT not at all: the next fastest on a GPU is tf
    assert backends.create("auto", bundle.load(tiny_bundle)).name == "tf"
    monkeypatch.setattr(backends, "has_gpu", lambda: False)
    assert backends.auto_order() == ("tflite", "onnx", "tf")


def test_unknown_backend_is_a_clear_error(tiny_bundle: Path) -> None:
    with pytest.raises(backends.BackendUnavailable, match="unknown backend 'openvino'"):
        backends.create("openvino", bundle.load(tiny_bundle))


def test_auto_picks_the_first_that_loads(tiny_bundle: Path) -> None:
    assert backends.create("auto", bundle.load(tiny_bundle)).name == "tflite"


def test_broken_tflite_file_is_reported_not_a_crash(tiny_bundle: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tiny_bundle, tmp_path / "b"))
    (copy / "model.tflite").write_bytes(b"definitely not a flatbuffer")
    bundle.write_meta(copy, bundle.read_meta(copy))  # listed with its sha256: only its content is wrong
    with pytest.raises(bundle.BundleError, match="not a TFLite model"):
        backends.create("tflite", bundle.load(copy))


@pytest.mark.parametrize("batch", [1, 3])
def test_backends_agree_on_probabilities(tiny_bundle: Path, tiny_images: Path, batch: int) -> None:
    loaded = bundle.load(tiny_bundle)
    frames = [images.read_rgb(p) for p in sorted((tiny_images / "red").iterdir())[:batch]]
    size = (loaded.meta.input.height, loaded.meta.input.width)
    x = np.stack([images.fit(f, *size) for f in frames])
    tflite = backends.create("tflite", loaded).predict(x)
    tf = backends.create("tf", loaded).predict(x)
    onnx = backends.create("onnx", loaded).predict(x)  # one session, any batch size
    assert tflite.shape == tf.shape == onnx.shape == (batch, 3)
    np.testing.assert_allclose(tflite.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(tflite, tf, atol=1e-4)
    np.testing.assert_allclose(tflite, onnx, atol=1e-5)


def test_classifier_resizes_frames_of_any_size_to_the_bundle_input(tiny_bundle: Path) -> None:
    classifier = Classifier(bundle.load(tiny_bundle), "tflite")
    frame = synthetic_image("blue", np.random.default_rng(3), size=480)
    top = classifier.classify(frame, k=2)
    expected = classifier.backend.predict(images.fit(frame, 128, 128)[None])[0]
    assert [p.label for p in top] == [classifier.labels[i] for i in np.argsort(-expected)[:2]]
    assert top[0].score == pytest.approx(float(expected.max()))
    assert top[0].score >= top[1].score
