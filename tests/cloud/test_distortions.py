"""The camera distortions (low resolution, blur, noise, JPEG, colour): each degrades an image the way
its name says, some images stay clean, the same seed gives the same batch, and a training uses them."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from cloud.retrain.config import RetrainConfig
from cloud.retrain.distortions import make_distorter
from cloud.retrain.robustness import colour
from cloud.retrain.train import retrain
from common import bundle

SIZE = 64
CAMERA = {
    "random_low_resolution": 4.0,
    "random_blur": 2.0,
    "random_noise": 20.0,
    "random_jpeg_quality": 10,
    "random_colour": 30,
}


def scenes(n: int, seed: int = 0) -> np.ndarray:
    """Coloured blocks with sharp edges and fine stripes: detail a worse camera would lose."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(40, 215, (n, 4, 4, 3)).repeat(SIZE // 4, axis=1).repeat(SIZE // 4, axis=2)
    stripes = 25 * (np.arange(SIZE) % 2)[None, None, :, None]
    return (blocks + stripes).astype(np.uint8)


def distort(batch: np.ndarray, seed: int = 1, **options) -> np.ndarray:
    cfg = RetrainConfig(image_dir=Path("x"), **options)
    return make_distorter(cfg, SIZE, seed)(tf.constant(batch)).numpy()


def detail(images: np.ndarray) -> np.ndarray:
    """Per image: the variance of its Laplacian, high where there are edges and fine texture."""
    x = images.astype(np.float64).mean(-1)
    laplacian = x[:, 1:-1, :-2] + x[:, 1:-1, 2:] + x[:, :-2, 1:-1] + x[:, 2:, 1:-1] - 4 * x[:, 1:-1, 1:-1]
    return laplacian.var(axis=(1, 2))


def lost_detail(out: np.ndarray, batch: np.ndarray) -> bool:
    """No image gained detail, and the batch lost much of it (a strength near 0 barely changes one)."""
    after, before = detail(out), detail(batch)
    return bool(np.all(after <= before * 1.001) and after.mean() < 0.6 * before.mean())


def each(flag: str, batch: np.ndarray) -> np.ndarray:
    """The batch with `flag` applied to every image."""
    out = distort(batch, **{flag: CAMERA[flag]}, camera_distortion_probability=1.0)
    assert out.shape == batch.shape
    assert out.dtype == np.uint8
    return out


@pytest.mark.parametrize("flag", ["random_low_resolution", "random_blur"])
def test_low_resolution_and_blur_lose_detail(flag: str) -> None:
    batch = scenes(16)
    assert lost_detail(each(flag, batch), batch)


def test_noise_spreads_a_flat_image() -> None:
    flat = np.full((8, SIZE, SIZE, 3), 128, np.uint8)
    out = each("random_noise", flat).astype(np.float64)
    assert np.all(out.std(axis=(1, 2, 3)) > 0.5)
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 128, atol=1)


def test_jpeg_changes_pixels_but_keeps_the_mean() -> None:
    batch = scenes(8)
    out = each("random_jpeg_quality", batch)
    assert all(not np.array_equal(o, b) for o, b in zip(out, batch, strict=True))
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), batch.mean(axis=(1, 2, 3)), atol=2)


def test_colour_shifts_channel_means() -> None:
    batch = scenes(8)
    shift = np.abs(each("random_colour", batch).mean(axis=(1, 2)) - batch.mean(axis=(1, 2)))
    assert np.all(shift.max(axis=1) > 2)


def test_colour_keeps_an_image_at_unit_settings_and_greys_it_at_no_saturation() -> None:
    batch = tf.constant(scenes(2), tf.float32)
    ones, zeros = tf.ones([2]), tf.zeros([2])
    np.testing.assert_allclose(colour(batch, tf.ones([2, 3]), ones, zeros), batch, atol=0.01)
    grey = colour(batch, tf.ones([2, 3]), zeros, zeros + 0.3).numpy()
    np.testing.assert_allclose(grey, grey[..., :1].repeat(3, -1), atol=0.01)


@pytest.mark.parametrize("flag", sorted(CAMERA))
def test_each_distortion_leaves_some_images_clean(flag: str) -> None:
    batch = scenes(32)
    out = distort(batch, **{flag: CAMERA[flag]})
    clean = [np.array_equal(o, b) for o, b in zip(out, batch, strict=True)]
    assert 4 < sum(clean) < 28


def test_a_batch_none_is_chosen_from_comes_back_as_it_was() -> None:
    batch = scenes(2)
    np.testing.assert_array_equal(distort(batch, **CAMERA, camera_distortion_probability=1e-9), batch)


def test_the_same_seed_gives_the_same_batch() -> None:
    batch = scenes(16)
    first, again, other = distort(batch, **CAMERA), distort(batch, **CAMERA), distort(batch, seed=2, **CAMERA)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def block_colours(images: np.ndarray) -> np.ndarray:
    """The colour at the middle of each block, away from the edges a blur smears."""
    blocks = images.astype(np.float64).reshape(len(images), 4, SIZE // 4, 4, SIZE // 4, 3)
    return blocks[:, :, 6:10, :, 6:10].mean(axis=(2, 4))


def test_retrain_py_s_distortions_apply_first() -> None:
    batch = scenes(16)
    out = distort(batch, flip_left_right=True, random_blur=2.0, camera_distortion_probability=1.0)
    kept = np.abs(block_colours(out) - block_colours(batch)).max(axis=(1, 2, 3)) < 4
    mirrored = np.abs(block_colours(out) - block_colours(batch[:, :, ::-1])).max(axis=(1, 2, 3)) < 4
    assert np.all(kept | mirrored)
    assert kept.any()
    assert mirrored.any()
    assert lost_detail(out, batch)


def test_off_by_default() -> None:
    cfg = RetrainConfig(image_dir=Path("x"))
    assert not cfg.camera_distortions
    assert not cfg.distortions
    assert all(cfg.model_copy(update={flag: value}).distortions for flag, value in CAMERA.items())


@pytest.mark.slow  # a training that computes every bottleneck every step
def test_training_with_blur_and_noise_makes_a_bundle(tiny_images, tiny_flags, tmp_path) -> None:
    cfg = RetrainConfig(
        image_dir=tiny_images,
        output_dir=tmp_path / "b",
        bottleneck_dir=tmp_path / "bn",
        **{**tiny_flags, "how_many_training_steps": 20},
        random_blur=1.5,
        random_noise=10,
    )
    retrain(cfg)
    trained = bundle.load(tmp_path / "b")
    assert (trained.meta.training["random_blur"], trained.meta.training["random_noise"]) == (1.5, 10)
    assert trained.meta.metrics.tflite.agreement == 1.0
