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
        self._model = model
        self._threads = threads or os.cpu_count() or 1
        self._planned: dict[int, tuple[Interpreter, int, int]] = {}
        try:
            self._plan(1)
        except (ValueError, RuntimeError) as exc:
            raise BackendUnavailable(f"cannot load {bundle.tflite_path}: {exc}") from exc

    def _plan(self, batch: int) -> tuple[Interpreter, int, int]:
        """An interpreter planned for batches of `batch`, made once per size: resizing one interpreter
        re-plans the graph (~5 ms) at every change of size, and the cameras' batches vary; a batch of 4
        in one call runs faster than 4 frames in turn (tests/bench/bench_cameras.py measures both)."""
        if batch not in self._planned:
            interpreter = Interpreter(model_content=self._model, num_threads=self._threads)
            index = interpreter.get_input_details()[0]["index"]
            interpreter.resize_tensor_input(index, [batch, *self.input_shape])
            interpreter.allocate_tensors()
            self._planned[batch] = (interpreter, index, interpreter.get_output_details()[0]["index"])
        return self._planned[batch]

    def predict(self, batch: np.ndarray) -> np.ndarray:
        interpreter, input_index, output_index = self._plan(len(batch))
        interpreter.set_tensor(input_index, np.ascontiguousarray(batch, np.uint8))
        interpreter.invoke()
        return np.array(interpreter.get_tensor(output_index), np.float32)
