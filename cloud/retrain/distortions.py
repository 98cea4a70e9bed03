"""Training image distortions, applied per image on a batch: retrain.py's (mirror, crop, scale,
brightness), then worse camera optics (see robustness). Each training image then looks different
every step, so no bottleneck can be cached for it."""

from __future__ import annotations

import tensorflow as tf

from cloud.retrain.config import RetrainConfig
from cloud.retrain.robustness import make_degrader


def make_distorter(cfg: RetrainConfig, size: int, seed: int):
    """A compiled function: uint8 [N, size, size, 3] -> distorted uint8 batch of the same shape."""
    rng = tf.random.Generator.from_seed(seed)
    margin = 1.0 + cfg.random_crop / 100.0
    max_scale = 1.0 + cfg.random_scale / 100.0
    brightness = cfg.random_brightness / 100.0
    degrade = make_degrader(cfg, rng)

    def one(image: tf.Tensor) -> tf.Tensor:
        image = tf.cast(image, tf.float32)
        scale = margin * rng.uniform([], 1.0, max_scale)
        grown = tf.cast(tf.round(scale * size), tf.int32)
        image = tf.image.resize(image, tf.stack([grown, grown]))
        offset = rng.uniform([2], 0, tf.cast(grown - size + 1, tf.float32))
        offset = tf.cast(offset, tf.int32)
        image = image[offset[0] : offset[0] + size, offset[1] : offset[1] + size]
        if cfg.flip_left_right:
            image = tf.cond(rng.uniform([]) < 0.5, lambda: tf.image.flip_left_right(image), lambda: image)
        return image * rng.uniform([], 1.0 - brightness, 1.0 + brightness)

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8)])
    def distort(batch: tf.Tensor) -> tf.Tensor:
        pixels = tf.cast(batch, tf.float32)
        if cfg.retrain_py_distortions:
            pixels = tf.map_fn(one, batch, fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))
        if degrade is not None:
            pixels = degrade(pixels)
        return tf.cast(tf.clip_by_value(tf.round(pixels), 0, 255), tf.uint8)

    return distort
