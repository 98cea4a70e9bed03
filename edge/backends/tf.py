"""TensorFlow SavedModel: runs on the GPU when TensorFlow sees one, else on the CPU."""

from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf

from common.bundle import SAVED_MODEL, Bundle
from edge.backends import graph_check
from edge.backends.base import Backend, BackendUnavailable

log = logging.getLogger(__name__)


class TFBackend(Backend):
    name = "tf"
    reads = SAVED_MODEL

    def __init__(self, bundle: Bundle) -> None:
        super().__init__(bundle)
        graph_check.check_bundle(bundle)
        try:
            loaded = tf.saved_model.load(str(bundle.saved_model_path))
        except (OSError, ValueError) as exc:
            raise BackendUnavailable(f"cannot load {bundle.saved_model_path}: {exc}") from exc
        self._loaded = loaded  # the signature holds only a weak reference to its variables
        self._fn = loaded.signatures["serving_default"]
        self._output = bundle.meta.output_layer
        self._input = bundle.meta.input.layer
        self.device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
        log.info("tf backend on %s", self.device)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        outputs = self._fn(**{self._input: tf.constant(batch, tf.uint8)})
        return outputs[self._output].numpy().astype(np.float32, copy=False)
