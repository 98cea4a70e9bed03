"""Loading a model runs no code it should not: a bundle's files are checked against model.json just
before a runtime reads them, a SavedModel's graph holds inference ops only, a TFLite model builtin
ops only, an ONNX model ONNX's own ops and no external data. The hostile models here are real: a
SavedModel that writes a file when it is loaded and when it serves, a TFLite model asking for
TensorFlow's WriteFile as a Flex op, ONNX models with a custom op or weights read from a file."""

import json
import shutil
import tarfile
from pathlib import Path

import onnx
import pytest
import tensorflow as tf
from tensorflow.core.framework.node_def_pb2 import NodeDef
from tensorflow.core.protobuf.saved_model_pb2 import SavedModel
from tensorflow.lite.tools import flatbuffer_utils

from cloud.registry.versions import RegistryError, check_models
from common import bundle
from edge import backends
from edge.backends import graph_check, onnx_ops, tflite_ops
from tests.support.broker import Mosquitto
from tests.support.device import run_edge
from tests.support.hostile_models import hostile_bundle


def _copy(tiny_bundle: Path, to: Path) -> Path:
    return Path(shutil.copytree(tiny_bundle, to))


@pytest.fixture(scope="module")
def hostile(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """The tiny bundle with a hostile SavedModel, every file listed with its right sha256: only the
    graph check can refuse it. Returns the bundle and the files it would write."""
    root = tmp_path_factory.mktemp("hostile")
    markers = [root / "written-at-load", root / "written-at-serve"]
    return hostile_bundle(tiny_bundle, root / "bundle", *markers), markers


def test_a_savedmodel_that_writes_files_is_refused_before_tensorflow_loads_it(hostile, monkeypatch) -> None:
    path, markers = hostile
    monkeypatch.setattr(backends, "has_gpu", lambda: True)  # auto: TensorRT (not here), then tf
    for name in ("tf", "auto"):
        with pytest.raises(bundle.BundleError, match=r"WriteFile \(in __inference__initializer_\d+, __inference_serve"):
            backends.create(name, bundle.load(path))
    assert not any(m.exists() for m in markers)

    # What the check stops: loaded unchecked, the model writes its file at once.
    tf.saved_model.load(str(path / bundle.SAVED_MODEL))
    assert markers[0].exists()
    markers[0].unlink()


@pytest.fixture(scope="module")
def own_graph(tiny_bundle: Path) -> SavedModel:
    model = SavedModel()
    model.ParseFromString((tiny_bundle / bundle.SAVED_MODEL_PB).read_bytes())
    return model


def _function(model: SavedModel, prefix: str):
    return next(f for f in model.meta_graphs[0].graph_def.library.function if f.signature.name.startswith(prefix))


def _refusal(model: SavedModel) -> str:
    with pytest.raises(bundle.BundleError) as refused:
        graph_check.check(model.SerializeToString(), "saved_model.pb")
    return str(refused.value)


def test_checkpoint_ops_are_allowed_only_where_the_loader_never_runs_them(own_graph: SavedModel) -> None:
    graph_check.check(own_graph.SerializeToString(), "saved_model.pb")  # the saver's SaveV2, RestoreV2 pass

    saving = SavedModel()
    saving.CopyFrom(own_graph)
    _function(saving, "__inference_<lambda>").node_def.append(NodeDef(name="save", op="SaveV2"))
    assert "SaveV2 (in __inference_<lambda>" in _refusal(saving)

    calling_the_saver = SavedModel()
    calling_the_saver.CopyFrom(own_graph)
    call = NodeDef(name="call", op="StatefulPartitionedCall")
    call.attr["f"].func.name = _function(calling_the_saver, "__inference__traced_save").signature.name
    _function(calling_the_saver, "__inference_<lambda>").node_def.append(call)
    assert "SaveV2 (in __inference__traced_save" in _refusal(calling_the_saver)

    tf1 = SavedModel()
    tf1.CopyFrom(own_graph)
    tf1.meta_graphs[0].ClearField("object_graph_def")
    assert "TF1 SavedModel" in _refusal(tf1)
    assert not graph_check.INFERENCE_OPS & (graph_check.NEVER | graph_check.CHECKPOINT_OPS)


@pytest.fixture(scope="module")
def flex_bundle(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny bundle whose TFLite model asks for TensorFlow's WriteFile (a Flex op), sha256 right."""
    path = _copy(tiny_bundle, tmp_path_factory.mktemp("flex") / "bundle")
    model = flatbuffer_utils.read_model_from_bytearray(bytearray((path / bundle.TFLITE).read_bytes()))
    code = model.operatorCodes[0]
    code.builtinCode = code.deprecatedBuiltinCode = tflite_ops.CUSTOM
    code.customCode = "FlexWriteFile"
    (path / bundle.TFLITE).write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    bundle.write_meta(path, bundle.read_meta(path))
    return path


def test_a_tflite_model_with_a_custom_op_is_refused(tiny_bundle: Path, flex_bundle: Path) -> None:
    own = (tiny_bundle / bundle.TFLITE).read_bytes()
    schema = flatbuffer_utils.read_model_from_bytearray(bytearray(own))
    read_by_hand = tflite_ops.operator_codes(own)
    assert read_by_hand == [(max(c.builtinCode, c.deprecatedBuiltinCode), "") for c in schema.operatorCodes]
    with pytest.raises(bundle.BundleError, match="asks for custom ops FlexWriteFile"):
        backends.create("tflite", bundle.load(flex_bundle))


def test_files_changed_after_the_bundle_was_verified_are_refused_before_load(tiny_bundle, tmp_path) -> None:
    path = _copy(tiny_bundle, tmp_path / "b")
    loaded = bundle.load(path)  # verified; then the files change under it
    variables = next((path / bundle.SAVED_MODEL / "variables").glob("*.data-*"))
    variables.write_bytes(variables.read_bytes()[::-1])
    with pytest.raises(bundle.BundleError, match=r"variables\.data-.* does not match its sha256"):
        backends.create("tf", loaded)
    backends.create("tflite", loaded, warm_up=False)  # what LiteRT reads is unchanged

    extra = path / bundle.SAVED_MODEL / "assets" / "extra.pb"
    extra.write_bytes(b"")
    with pytest.raises(bundle.BundleError, match=r"saved_model/assets/extra\.pb is not listed"):
        backends.create("tflite", loaded)
    extra.unlink()
    (path / bundle.TFLITE).rename(path / "elsewhere.tflite")
    (path / bundle.TFLITE).symlink_to(path / "elsewhere.tflite")
    with pytest.raises(bundle.BundleError, match=r"model\.tflite is a link"):
        backends.create("tflite", loaded)


def test_an_archive_never_brings_a_device_cache(tiny_bundle: Path, tmp_path: Path) -> None:
    path = _copy(tiny_bundle, tmp_path / "colours")
    (path / bundle.CACHE / "tensorrt-fp16-0").mkdir(parents=True)
    (path / bundle.CACHE / "tensorrt-fp16-0" / "saved_model.pb").write_bytes(b"engines of someone else")
    archive = bundle.pack(path)
    assert bundle.load(path).meta == bundle.load(tiny_bundle).meta, "a device's cache is not part of its bundle"
    with pytest.raises(bundle.BundleError, match="a device's cache"):
        bundle.unpack(_with_cache_member(archive, tmp_path), tmp_path / "out")


def _with_cache_member(archive: Path, tmp_path: Path) -> Path:
    engines = tmp_path / "colours" / bundle.CACHE / "tensorrt-fp16-0" / "saved_model.pb"
    hostile = tmp_path / "with-cache.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(hostile, "w:gz") as out:
        for member in src.getmembers():
            out.addfile(member, src.extractfile(member))
        out.add(engines, arcname=f"colours/{bundle.CACHE}/tensorrt-fp16-0/saved_model.pb")
    return hostile


def test_our_own_bundles_load_on_every_backend(tiny_bundle: Path) -> None:
    loaded = bundle.load(tiny_bundle)
    for name in ("tf", "tflite", "onnx"):
        assert backends.create(name, loaded).name == name


def test_edge_run_passes_over_a_remembered_model_it_refuses(
    tiny_bundle: Path, flex_bundle: Path, tiny_images: Path, broker: Mosquitto, tmp_path: Path
) -> None:
    """A model an older device switched to and this one refuses: the device runs --model instead."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "current.json").write_text(json.dumps({"bundle": str(flex_bundle)}))
    done = run_edge(tiny_bundle, tiny_images, broker.url, state, 5, "--backend", "tflite")
    assert done.returncode == 0, done.stderr
    assert f"not running {flex_bundle}, the model last updated to" in done.stderr
    assert "asks for custom ops FlexWriteFile" in done.stderr
    assert f"at {tiny_bundle}) on" in done.stderr, "it ran --model"


def _with_onnx(tiny_bundle: Path, to: Path, model: onnx.ModelProto) -> Path:
    """The tiny bundle with `model` as its model.onnx, listed with its right sha256."""
    path = _copy(tiny_bundle, to)
    (path / bundle.ONNX).write_bytes(model.SerializeToString())
    bundle.write_meta(path, bundle.read_meta(path))
    return path


def test_an_onnx_model_with_a_custom_op_or_external_data_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    own = onnx.load_from_string((tiny_bundle / bundle.ONNX).read_bytes())
    assert onnx_ops.problems(own.SerializeToString()) == []
    custom = onnx.ModelProto()
    custom.CopyFrom(own)
    custom.graph.node[0].domain = "com.example"  # a custom op: its kernel comes from a library
    custom.opset_import.append(onnx.helper.make_opsetid("com.example", 1))
    external = onnx.ModelProto()
    external.CopyFrom(own)
    weights = external.graph.initializer[0]  # read from a file the model names, at load
    weights.ClearField("raw_data")
    weights.data_location = onnx.TensorProto.EXTERNAL
    weights.external_data.add(key="location", value="../../../etc/hostname")
    for name, model, refusal in [
        ("custom", custom, r"of custom domain 'com\.example'"),
        ("external", external, "initializers stored as external data"),
    ]:
        path = _with_onnx(tiny_bundle, tmp_path / name, model)
        with pytest.raises(bundle.BundleError, match=refusal):
            backends.create("onnx", bundle.load(path))
        with pytest.raises(RegistryError, match=refusal):
            check_models(bundle.load(path))
    path = _copy(tiny_bundle, tmp_path / "garbage")
    (path / bundle.ONNX).write_bytes(b"\x0f not a protobuf")
    bundle.write_meta(path, bundle.read_meta(path))
    with pytest.raises(bundle.BundleError, match="is not an ONNX model"):
        backends.create("onnx", bundle.load(path))


def test_a_model_onnx_changed_after_the_bundle_was_verified_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    path = _copy(tiny_bundle, tmp_path / "b")
    loaded = bundle.load(path)
    model = path / bundle.ONNX
    model.write_bytes(model.read_bytes().replace(b"final_result", b"final_resulT"))
    with pytest.raises(bundle.BundleError, match=r"model\.onnx does not match its sha256"):
        backends.create("onnx", loaded)
    backends.create("tflite", loaded, warm_up=False)  # what LiteRT reads is unchanged
