"""TF-TRT: the bundle's SavedModel converted to TensorRT FP16 engines on the device itself (engines
are specific to a GPU and a TensorRT version), built once and cached next to the bundle."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from common.bundle import SAVED_MODEL, Bundle, BundleError
from edge.backends import graph_check
from edge.backends.base import Backend, BackendUnavailable, engine_cache

log = logging.getLogger(__name__)

try:
    from tensorflow.python.compiler.tensorrt import trt_convert as trt
except ImportError as exc:  # TensorFlow builds without TF-TRT
    raise ImportError(f"this TensorFlow has no TF-TRT: {exc}") from exc


def engine_dir(bundle: Bundle, gpu: str) -> Path:
    """Where this GPU's engines for this bundle live: keyed by the GPU, TensorFlow and the model."""
    return engine_cache(
        bundle, "tensorrt-fp16", gpu, tf.__version__, bundle.meta.files.get("saved_model/saved_model.pb")
    )


class TensorRTBackend(Backend):
    name = "tensorrt"
    reads = SAVED_MODEL

    @classmethod
    def unavailable(cls) -> str | None:
        if not trt._pywrap_py_utils.is_tensorrt_enabled():
            return "this TensorFlow was built without TensorRT (use NVIDIA's L4T TensorFlow on a Jetson)"
        if not tf.config.list_physical_devices("GPU"):
            return "TensorFlow sees no GPU here"
        return None

    def __init__(self, bundle: Bundle) -> None:
        super().__init__(bundle)
        graph_check.check_bundle(bundle)  # before the converter loads it
        gpus = tf.config.list_physical_devices("GPU")
        target = engine_dir(bundle, tf.config.experimental.get_device_details(gpus[0]).get("device_name", "gpu"))
        engines = target / "saved_model.pb"
        if not engines.exists():
            self._build(target)
        try:  # the device's own cache (an archive never brings one), in no model.json: its graph is checked
            graph_check.check(engines.read_bytes(), str(engines), graph_check.TENSORRT_OPS)
        except BundleError as exc:  # left unloaded: `auto` goes on to the tf backend and its own check
            log.warning("%s", exc)
            raise BackendUnavailable(f"the TF-TRT engines cached at {target} are refused: {exc}") from exc
        loaded = tf.saved_model.load(str(target))
        self._loaded = loaded
        self._fn = loaded.signatures["serving_default"]
        self._input = bundle.meta.input.layer
        self._output = bundle.meta.output_layer

    def _build(self, target: Path) -> None:
        log.info("building TensorRT FP16 engines for %s (once per device; minutes on a Jetson)", self.bundle)
        shape = (1, *self.input_shape)
        try:
            converter = trt.TrtGraphConverterV2(
                input_saved_model_dir=str(self.bundle.saved_model_path),
                precision_mode=trt.TrtPrecisionMode.FP16,
            )
            converter.convert()
            converter.build(input_fn=lambda: [tf.zeros(shape, tf.uint8)])
            partial = target.with_name(target.name + f".partial-{os.getpid()}")
            converter.save(str(partial))
            os.replace(partial, target)
        except (RuntimeError, ValueError, OSError, tf.errors.OpError) as exc:
            raise BackendUnavailable(f"TF-TRT could not convert {self.bundle}: {exc}") from exc

    def predict(self, batch: np.ndarray) -> np.ndarray:
        outputs = self._fn(**{self._input: tf.constant(batch, tf.uint8)})
        return outputs[self._output].numpy().astype(np.float32, copy=False)
