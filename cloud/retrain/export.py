"""Export: the trained network (preprocessing, base, new layer) as a SavedModel with a named
signature (`image` uint8 in, `final_result` out), as a TFLite model, float32, float16 or int8, and
as an ONNX model converted from that TFLite model."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import onnx
import tensorflow as tf
import tf2onnx

log = logging.getLogger(__name__)
logging.getLogger("tf2onnx").setLevel(logging.WARNING)  # its INFO lines narrate every conversion pass

CALIBRATION_IMAGES = 200
# Opset 17 holds every op the architectures' exports use (HardSwish came in 14) and is the newest that
# JetPack 5's TensorRT 8.5 parses; ONNX Runtime reads it from 1.13.
ONNX_OPSET = 17


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


def to_onnx(tflite: Path, input_name: str, output_name: str) -> bytes:
    """Convert the exported TFLite model, batch dimension left dynamic. From the TFLite file rather than
    the SavedModel: its graph is already frozen and folded (0.5 s against 6 s on a small MobileNet),
    and the ONNX model computes what the TFLite one does, quantization included (int8 becomes
    QuantizeLinear/DequantizeLinear pairs, float16 weights float32 again)."""
    with warnings.catch_warnings():  # tf2onnx reads the model with TensorFlow's deprecated interpreter
        warnings.simplefilter("ignore", UserWarning)
        model, _ = tf2onnx.convert.from_tflite(str(tflite), opset=ONNX_OPSET)
    graph = model.graph
    _rename(graph, graph.input[0].name, input_name)
    _rename(graph, graph.output[0].name, output_name)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Give a graph input or output the SavedModel signature's name, wherever the graph uses it."""
    for value in [*graph.input, *graph.output]:
        if value.name == old:
            value.name = new
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
