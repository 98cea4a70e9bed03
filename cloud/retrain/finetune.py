"""Optional fine-tuning of the base's top layers, after the new layer has been trained on
bottlenecks: end to end on the images, with a small step, batch norm kept frozen (Keras' advice)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from cloud.retrain.progress import Progress

log = logging.getLogger(__name__)


def unfreeze_top(base: keras.Model, layers: int) -> list[str]:
    """Make the top `layers` layers with weights (batch norm aside) trainable; returns their names."""
    base.trainable = True
    candidates = [
        layer for layer in base.layers if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
    ]
    top = {id(layer) for layer in candidates[-layers:]}
    for layer in base.layers:
        layer.trainable = id(layer) in top
    return [layer.name for layer in candidates[-layers:]]


def fine_tune(
    model: keras.Model,
    pixels: np.ndarray,
    labels: np.ndarray,
    steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    distort: Callable[[tf.Tensor], tf.Tensor] | None = None,
) -> float:
    optimizer = keras.optimizers.SGD(learning_rate, momentum=0.9)
    variables = model.trainable_variables

    @tf.function
    def step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        if distort is not None:
            x = distort(x)
        with tf.GradientTape() as tape:
            probabilities = model(x, training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, probabilities))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=False))
        return loss

    rng = np.random.default_rng(seed)
    loss = float("nan")
    with Progress(steps, "fine-tuning", "step") as bar:
        for _ in range(steps):
            idx = rng.integers(0, len(pixels), batch_size)
            loss = float(step(tf.constant(pixels[idx]), tf.constant(labels[idx], tf.int32)))
            bar.set_postfix(loss=loss)
            bar.update()
    log.info("fine-tuned %d steps, last loss %.4f", steps, loss)
    return loss
