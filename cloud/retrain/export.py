"""Export: the trained network (preprocessing, base, new layer) as a SavedModel with a named
signature (`image` uint8 in, `final_result` out) and as a TFLite model, float32, float16 or int8."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

log = logging.getLogger(__name__)

CALIBRATION_IMAGES = 200


def full_model(extractor: keras.Model, head: keras.layers.Dense) -> keras.Model:
    image = extractor.input
    return keras.Model(image, head(extractor(image)), name="edgeloop_classifier")


def save_model(model: keras.Model, path: Path, input_name: str, output_name: str) -> None:
    height, width = model.input_shape[1:3]
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serving_default",
        fn=lambda image: {output_name: model(image, training=False)},
        input_signature=[tf.TensorSpec([None, height, width, 3], tf.uint8, name=input_name)],
    )
    archive.write_out(str(path), verbose=False)


def to_tflite(saved_model: Path, quantization: str, calibration: np.ndarray | None = None) -> bytes:
    """Convert; int8 is post-training quantization calibrated on (a sample of) training images."""
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        if calibration is None or not len(calibration):
            raise ValueError("int8 quantization needs calibration images")

        def representative() -> Iterator[list[np.ndarray]]:
            for image in calibration[:CALIBRATION_IMAGES]:
                yield [image[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
    return converter.convert()
