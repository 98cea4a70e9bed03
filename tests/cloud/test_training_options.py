"""Distortions, fine-tuning and quantized exports: each changes what is trained or shipped."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from cloud.registry.versions import check_models
from cloud.retrain import architectures
from cloud.retrain.config import RetrainConfig
from cloud.retrain.distortions import make_distorter
from cloud.retrain.finetune import unfreeze_top
from cloud.retrain.train import retrain
from common import bundle
from edge.backends import create


def _train(images: Path, flags: dict, tmp_path: Path, **options) -> bundle.Bundle:
    cfg = RetrainConfig(
        image_dir=images, output_dir=tmp_path / "b", bottleneck_dir=tmp_path / "bn", **{**flags, **options}
    )
    retrain(cfg)
    return bundle.load(tmp_path / "b")


def test_mirroring_mirrors_or_keeps_each_image() -> None:
    cfg = RetrainConfig(image_dir=Path("x"), flip_left_right=True)
    batch = np.random.default_rng(0).integers(0, 255, (16, 32, 32, 3), dtype=np.uint8)
    out = make_distorter(cfg, 32, seed=1)(tf.constant(batch)).numpy()
    mirrored = [np.array_equal(o, b[:, ::-1]) for o, b in zip(out, batch, strict=True)]
    kept = [np.array_equal(o, b) for o, b in zip(out, batch, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert any(mirrored)
    assert any(kept)


def test_crop_scale_brightness_change_pixels_but_not_shape() -> None:
    cfg = RetrainConfig(image_dir=Path("x"), random_crop=20, random_scale=30, random_brightness=25)
    batch = np.random.default_rng(0).integers(0, 255, (4, 40, 40, 3), dtype=np.uint8)
    distort = make_distorter(cfg, 40, seed=1)
    first, second = distort(tf.constant(batch)).numpy(), distort(tf.constant(batch)).numpy()
    assert first.shape == batch.shape
    assert first.dtype == np.uint8
    assert not np.array_equal(first, batch)
    assert not np.array_equal(first, second)


def test_distorted_batches_are_computed_afresh_not_read_from_the_cache(tiny_images, tiny_flags, tmp_path) -> None:
    from cloud.retrain import train
    from cloud.retrain.dataset import Splits, scan

    cfg = RetrainConfig(
        image_dir=tiny_images, bottleneck_dir=tmp_path, **{**tiny_flags, "train_batch_size": 16}, random_brightness=30
    )
    arch = architectures.parse(cfg.architecture)
    base = architectures.load_base(arch, cfg.weights, 0)
    extractor = architectures.feature_extractor(arch, base)
    data = train._bottlenecks(cfg, scan(tiny_images, Splits(20, 20)), arch, base, extractor)
    plain = cfg.model_copy(update={"random_brightness": 0})
    distorted = train._batches(cfg, data, extractor, arch.size)(np.random.default_rng(1))
    cached = train._batches(plain, data, extractor, arch.size)(np.random.default_rng(1))
    np.testing.assert_array_equal(distorted[1], cached[1])
    assert not np.allclose(distorted[0], cached[0], atol=1e-3)


@pytest.mark.slow  # a training that computes every bottleneck every step
def test_distorted_training_makes_a_working_bundle(tiny_images, tiny_flags, tmp_path) -> None:
    trained = _train(
        tiny_images, tiny_flags, tmp_path, flip_left_right=True, random_brightness=10, how_many_training_steps=20
    )
    assert trained.meta.training["flip_left_right"] is True
    assert trained.meta.metrics.tflite.agreement == 1.0


def test_unfreeze_top_picks_the_last_weighted_layers(tiny_weights: Path) -> None:
    arch = architectures.parse("mobilenet_0.25_128")
    base = architectures.load_base(arch, str(tiny_weights), 0)
    assert unfreeze_top(base, 2) == ["conv_dw_13", "conv_pw_13"]
    assert {layer.name for layer in base.layers if layer.trainable} == {"conv_dw_13", "conv_pw_13"}


@pytest.mark.slow  # a training that fine-tunes the base
def test_fine_tuning_changes_only_the_top_of_the_base(tiny_images, tiny_flags, tmp_path) -> None:
    trained = _train(tiny_images, tiny_flags, tmp_path, fine_tune_layers=1, fine_tune_steps=5)
    loaded = tf.saved_model.load(str(trained.saved_model_path))
    original = architectures.load_base(architectures.parse("mobilenet_0.25_128"), tiny_flags["weights"], 0)
    exported = {v.name.removesuffix(":0"): v.numpy() for v in loaded.variables}
    before = {w.path: np.asarray(w) for w in original.weights}
    assert set(before) <= set(exported)
    changed = {name for name, value in before.items() if name in exported and not np.allclose(exported[name], value)}
    assert changed == {"conv_pw_13/kernel"}
    assert trained.meta.metrics.tflite.agreement == 1.0
    check_models(trained)  # a fine-tuned export holds only ops the registry and the devices allow


@pytest.mark.slow  # a training and a quantized export each
@pytest.mark.parametrize("kind", ["float16", "int8"])
def test_quantized_export_is_smaller_and_measured(tiny_images, tiny_flags, tiny_bundle, tmp_path, kind) -> None:
    trained = _train(tiny_images, tiny_flags, tmp_path, quantization=kind)
    exported = trained.meta.metrics.tflite
    assert exported.type == kind
    assert exported.size_bytes == trained.tflite_path.stat().st_size
    assert exported.size_bytes < bundle.load(tiny_bundle).meta.metrics.tflite.size_bytes * 0.7
    assert exported.test_accuracy is not None
    assert exported.agreement >= 0.8
    frames = np.zeros((2, 128, 128, 3), np.uint8)
    assert create("tflite", trained).predict(frames).shape == (2, 3)
    onnx = trained.meta.metrics.onnx  # converted from the quantized TFLite model; int8 kernels round their own way
    assert onnx.type == ("int8" if kind == "int8" else "float32")
    assert onnx.tflite_agreement >= (0.8 if kind == "int8" else 1.0)
    assert create("onnx", trained).predict(frames).shape == (2, 3)
    check_models(trained)  # quantized kernels are builtin ops, QDQ pairs ONNX's: devices and the registry take them
