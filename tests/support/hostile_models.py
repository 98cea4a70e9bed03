"""A hostile model bundle, real: its SavedModel writes a file when TensorFlow loads it (a resource's
initializer, which the loader runs) and another each time it serves. Every file is listed in
model.json with its right sha256, so only the check of the graph's ops can refuse it."""

from __future__ import annotations

import shutil
from pathlib import Path

import tensorflow as tf

from common import bundle


class _WritesAtLoad(tf.saved_model.experimental.TrackableResource):
    """A resource whose initializer TensorFlow's loader runs: it writes a file."""

    def __init__(self, path: Path) -> None:
        self._path = str(path)
        super().__init__()

    def _create_resource(self):
        return tf.raw_ops.VarHandleOp(dtype=tf.int32, shape=[], shared_name="")

    def _initialize(self):
        tf.io.write_file(self._path, "written when the model was loaded")


class _Hostile(tf.Module):
    def __init__(self, at_load: Path, at_serve: Path) -> None:
        super().__init__()
        self.resource = _WritesAtLoad(at_load)
        self._at_serve = str(at_serve)

    @tf.function(input_signature=[tf.TensorSpec([None, 128, 128, 3], tf.uint8, name="image")])
    def serve(self, image):
        tf.io.write_file(self._at_serve, "written by the serving function")
        return {"final_result": tf.nn.softmax(tf.reduce_mean(tf.cast(image, tf.float32), axis=[1, 2]))}


def hostile_bundle(tiny_bundle: Path, to: Path, at_load: Path, at_serve: Path, version: str | None = None) -> Path:
    """A copy of `tiny_bundle` at `to` (as `version`, if given) whose SavedModel writes `at_load` when
    loaded and `at_serve` when it serves."""
    path = Path(shutil.copytree(tiny_bundle, to))
    shutil.rmtree(path / bundle.SAVED_MODEL)
    module = _Hostile(at_load, at_serve)
    tf.saved_model.save(module, str(path / bundle.SAVED_MODEL), signatures={"serving_default": module.serve})
    meta = bundle.read_meta(path)
    bundle.write_meta(path, meta.model_copy(update={"version": version}) if version else meta)
    return path
