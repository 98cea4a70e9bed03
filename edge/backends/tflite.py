"""LiteRT (TensorFlow Lite) with XNNPACK: the default on a CPU, and the smallest install."""

from __future__ import annotations

import logging
import os

import numpy as np

from common.bundle import TFLITE, Bundle
from edge.backends import tflite_ops
from edge.backends.base import Backend, BackendUnavailable

log = logging.getLogger(__name__)

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # older Jetson images: the standalone runtime, or TensorFlow's copy of it
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError:
        try:
            from tensorflow.lite.python.interpreter import Interpreter
        except ImportError as exc:
            raise ImportError("none of ai-edge-litert, tflite-runtime or tensorflow is installed") from exc


class TFLiteBackend(Backend):
    name = "tflite"
    reads = TFLITE

    def __init__(self, bundle: Bundle, threads: int | None = None) -> None:
        super().__init__(bundle)
        model = bundle.read(TFLITE)  # the interpreter gets the very bytes checked here, not a path
        tflite_ops.check(model, str(bundle.tflite_path))
        try:
            self._interpreter = Interpreter(model_content=model, num_threads=threads or os.cpu_count() or 1)
        except (ValueError, RuntimeError) as exc:
            raise BackendUnavailable(f"cannot load {bundle.tflite_path}: {exc}") from exc
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._interpreter.resize_tensor_input(self._input, [1, *self.input_shape])
        self._interpreter.allocate_tensors()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """One frame per invoke, at the batch of 1 the interpreter was planned for: with XNNPACK a batch
        of 4 runs no faster than 4 frames in turn, and resizing the input for each new batch size (the
        cameras' batches vary) re-plans the graph every time (tests/bench/bench_cameras.py measures both)."""
        rows = []
        for frame in np.ascontiguousarray(batch, np.uint8):
            self._interpreter.set_tensor(self._input, frame[None])
            self._interpreter.invoke()
            rows.append(self._interpreter.get_tensor(self._output)[0])
        return np.array(rows, np.float32)
