"""Training the new last layer (`final_result`, a softmax) with plain gradient descent, as retrain.py
does, on random batches of bottlenecks; accuracy and cross-entropy go to TensorBoard."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cloud.retrain.progress import Progress

log = logging.getLogger(__name__)

BatchSource = Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]


def bottleneck_batches(
    features: np.ndarray, y: np.ndarray, indices: np.ndarray, batch_size: int, p: np.ndarray | None
) -> BatchSource:
    """retrain.py's random batches of cached bottlenecks: `batch_size` of `indices`, drawn with
    replacement (by `p` when images are weighted)."""

    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        chosen = rng.choice(indices, batch_size, p=p)
        return features[chosen], y[chosen]

    return draw


def new_head(dim: int, num_classes: int, seed: int) -> keras.layers.Dense:
    head = keras.layers.Dense(
        num_classes,
        activation="softmax",
        name="final_result",
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.001, seed=seed),
    )
    head.build((None, dim))
    return head


def _logits(head: keras.layers.Dense, x: tf.Tensor) -> tf.Tensor:
    return tf.matmul(x, head.kernel) + head.bias


class Summaries:
    """TensorBoard writers for train/ and validation/, as retrain.py laid them out; off when dir is None."""

    def __init__(self, root: Path | None) -> None:
        self._writers = {}
        if root is not None:
            for kind in ("train", "validation"):  # retrain.py starts each run with empty summaries
                shutil.rmtree(Path(root) / kind, ignore_errors=True)
            self._writers = {k: tf.summary.create_file_writer(str(Path(root) / k)) for k in ("train", "validation")}

    def scalars(self, kind: str, step: int, **values: float) -> None:
        if writer := self._writers.get(kind):
            with writer.as_default():
                for name, value in values.items():
                    tf.summary.scalar(name, value, step=step)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()


def train_head(
    head: keras.layers.Dense,
    next_batch: BatchSource,
    validation: tuple[np.ndarray, np.ndarray],
    steps: int,
    learning_rate: float,
    eval_interval: int,
    summaries: Summaries,
    seed: int,
) -> dict[str, float]:
    optimizer = keras.optimizers.SGD(learning_rate)
    variables = head.trainable_variables

    @tf.function
    def step(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            logits = _logits(head, x)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=False))
        return loss, tf.reduce_mean(tf.cast(tf.argmax(logits, 1, output_type=tf.int32) == y, tf.float32))

    @tf.function
    def evaluate(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        logits = _logits(head, x)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        return loss, tf.reduce_mean(tf.cast(tf.argmax(logits, 1, output_type=tf.int32) == y, tf.float32))

    rng = np.random.default_rng(seed)
    val_x, val_y = tf.constant(validation[0], tf.float32), tf.constant(validation[1], tf.int32)
    last: dict[str, float] = {}
    with Progress(steps, "training", "step") as bar:
        for i in range(steps):
            x, y = next_batch(rng)
            loss, accuracy = step(tf.constant(x, tf.float32), tf.constant(y, tf.int32))
            if (i + 1) % eval_interval == 0 or i + 1 == steps:
                last = {"train_accuracy": float(accuracy), "cross_entropy": float(loss)}
                summaries.scalars("train", i + 1, accuracy=last["train_accuracy"], cross_entropy=last["cross_entropy"])
                if len(val_y):
                    val_loss, val_accuracy = evaluate(val_x, val_y)
                    last["validation_accuracy"] = float(val_accuracy)
                    summaries.scalars("validation", i + 1, accuracy=float(val_accuracy), cross_entropy=float(val_loss))
                bar.set_postfix(**last)
                log.debug("step %d: %s", i + 1, last)
            bar.update()
    log.info("step %d: %s", steps, ", ".join(f"{k} {v:.3f}" for k, v in last.items()))
    return last
