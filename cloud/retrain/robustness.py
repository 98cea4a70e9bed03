"""Worse camera optics than the seed photos': low resolution, blur, colour casts, sensor noise and
JPEG re-compression, so a model trained on clean photos copes with what the field's cameras see.
Each picks its own random share of a batch and a random strength per image, so clean images
remain; all are drawn for the whole batch at once, so one seed always gives the same batch."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from cloud.retrain.config import RetrainConfig

Degrade = Callable[[tf.Tensor], tf.Tensor]
HUE_TURN = 0.1  # --random-colour 100 would turn the hue by up to a tenth of the colour wheel
_RGB_TO_YIQ = np.array(  # pixels (rows) @ this: columns Y, I, Q (tf.image.rgb_to_yiq's)
    [[0.299, 0.59590059, 0.2115], [0.587, -0.27455667, -0.52273617], [0.114, -0.32134392, 0.31119955]], np.float32
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def _on_a_share(batch: tf.Tensor, rng: tf.random.Generator, share: float, degrade: Degrade) -> tf.Tensor:
    """`degrade` on a random share of the batch's images (only on those: it is the costly part), if
    any; the others as they are."""
    chosen = tf.where(rng.uniform(tf.shape(batch)[:1]) < share)
    return tf.cond(
        tf.size(chosen) > 0,
        lambda: tf.tensor_scatter_nd_update(batch, chosen, degrade(tf.gather_nd(batch, chosen))),
        lambda: batch,
    )


def _each(fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor], batch: tf.Tensor, strength: tf.Tensor) -> tf.Tensor:
    """`fn(image, strength)` on each image with its own strength."""
    signature = tf.TensorSpec(batch.shape[1:], tf.float32)
    return tf.map_fn(lambda args: fn(*args), (batch, strength), fn_output_signature=signature)


def low_resolution(batch: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """Each image shrunk by its factor [N], then scaled back up: detail is lost."""
    size = batch.shape[1]

    def shrink(image: tf.Tensor, by: tf.Tensor) -> tf.Tensor:
        side = tf.maximum(1, tf.cast(tf.round(size / by), tf.int32))
        small = tf.image.resize(image, tf.stack([side, side]), antialias=True)
        return tf.image.resize(small, [size, size])

    return _each(shrink, batch, factor)


def blur(batch: tf.Tensor, sigma: tf.Tensor, most: float) -> tf.Tensor:
    """Gaussian blur of each image's sigma [N] in pixels, edges reflected. The batch is laid
    side by side as channels, so one separable depthwise convolution blurs every image by its own sigma."""
    size, radius = batch.shape[1], max(1, math.ceil(3 * most))
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel = tf.exp(-0.5 * tf.square(x[None, :] / tf.maximum(sigma, 1e-3)[:, None]))
    kernel = tf.transpose(tf.repeat(kernel / tf.reduce_sum(kernel, 1, keepdims=True), 3, axis=0))
    n = tf.shape(batch)[0]
    stacked = tf.reshape(tf.transpose(batch, [1, 2, 0, 3]), [1, size, size, n * 3])
    padded = tf.pad(stacked, [[0, 0], [radius, radius], [radius, radius], [0, 0]], "REFLECT")
    out = tf.nn.depthwise_conv2d(padded, kernel[:, None, :, None], [1, 1, 1, 1], "VALID")
    out = tf.nn.depthwise_conv2d(out, kernel[None, :, :, None], [1, 1, 1, 1], "VALID")
    return tf.transpose(tf.reshape(out, [size, size, n, 3]), [2, 0, 1, 3])


def colour(batch: tf.Tensor, gains: tf.Tensor, saturation: tf.Tensor, hue: tf.Tensor) -> tf.Tensor:
    """Per image: channel gains [N, 3] (white balance), then a saturation factor and a hue turn [N],
    as a scaling and a rotation of the chroma plane of YIQ; all three are one 3x3 matrix per image."""
    cos, sin = saturation * tf.cos(2 * math.pi * hue), saturation * tf.sin(2 * math.pi * hue)
    one, zero = tf.ones_like(cos), tf.zeros_like(cos)
    chroma = tf.stack(
        [tf.stack([one, zero, zero], -1), tf.stack([zero, cos, sin], -1), tf.stack([zero, -sin, cos], -1)], 1
    )
    matrix = tf.linalg.diag(gains) @ tf.matmul(_RGB_TO_YIQ, chroma) @ _YIQ_TO_RGB
    return tf.clip_by_value(tf.einsum("nhwc,ncd->nhwd", batch, matrix), 0.0, 255.0)


def jpeg(batch: tf.Tensor, quality: tf.Tensor) -> tf.Tensor:
    """Each image compressed as JPEG at its quality [N], and decoded again."""

    def compress(image: tf.Tensor, q: tf.Tensor) -> tf.Tensor:
        pixels = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
        return tf.cast(tf.image.adjust_jpeg_quality(pixels, tf.cast(q, tf.int32)), tf.float32)

    return _each(compress, batch, quality)


def noise(batch: tf.Tensor, std: tf.Tensor, rng: tf.random.Generator) -> tf.Tensor:
    """Gaussian sensor noise of each image's standard deviation [N] in pixel levels."""
    return batch + rng.normal(tf.shape(batch)) * std[:, None, None, None]


def make_degrader(cfg: RetrainConfig, rng: tf.random.Generator) -> Degrade | None:
    """float [N, size, size, 3] pixels 0-255 -> the same, degraded as `cfg` asks, in the order a camera
    would: optics, colour processing, sensor noise, compression. None if `cfg` asks for none."""

    def uniform(batch: tf.Tensor, low: float, high: float, channels: int = 1) -> tf.Tensor:
        """A random strength per image (per channel too, if `channels`), in [low, high)."""
        drawn = rng.uniform(tf.concat([tf.shape(batch)[:1], [channels]], 0), low, high)
        return drawn if channels > 1 else drawn[:, 0]

    def cast(batch: tf.Tensor) -> tf.Tensor:
        most = cfg.random_colour / 100.0
        gains, saturation = uniform(batch, 1 - most, 1 + most, 3), uniform(batch, 1 - most, 1 + most)
        return colour(batch, gains, saturation, uniform(batch, -most * HUE_TURN, most * HUE_TURN))

    most_blur, worst_jpeg = cfg.random_blur, cfg.random_jpeg_quality
    steps: list[tuple[object, Degrade]] = [
        (cfg.random_low_resolution, lambda b: low_resolution(b, uniform(b, 1.0, cfg.random_low_resolution))),
        (most_blur, lambda b: blur(b, uniform(b, 0.0, most_blur), most_blur)),
        (cfg.random_colour, cast),
        (cfg.random_noise, lambda b: noise(b, uniform(b, 0.0, cfg.random_noise), rng)),
        (worst_jpeg, lambda b: jpeg(b, uniform(b, worst_jpeg, 101.0))),
    ]
    wanted = [step for asked, step in steps if asked]
    if not wanted:
        return None

    def degrade(batch: tf.Tensor) -> tf.Tensor:
        for step in wanted:
            batch = _on_a_share(batch, rng, cfg.camera_distortion_probability, step)
        return batch

    return degrade
