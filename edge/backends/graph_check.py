"""The ops a SavedModel may hold, checked in saved_model.pb before TensorFlow loads it. Loading runs
code from the graph (a resource's initializer runs at load, the serving function at every frame),
and TensorFlow has ops that write files (WriteFile, SaveV2, PrintV2 to a file), read them, or call
back into Python: a bundle whose graph holds one could take over the device. Every node of the
graph and of every function in its library must be an op of INFERENCE_OPS.

INFERENCE_OPS is what the retrainer's exports hold, listed from a SavedModel of each architecture
it offers (MobileNet v1/v2/v3, Inception v3, EfficientNet-B0: preprocessing, base, softmax head,
variables), plus the pure string ops of the saver's functions and FusedBatchNormV3 (batch norm as
tf.keras exports it). The saver's functions also hold the checkpoint ops (SaveV2, RestoreV2,
MergeV2Checkpoints); TensorFlow's loader never runs them (it restores the variables with checkpoint
ops of its own, built in Python), so they are allowed there and only there: in functions the
saver_def's nodes reach and nothing else does. A TF1 SavedModel, whose loader does run the graph's
own restore op, is refused."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from google.protobuf.message import DecodeError
from tensorflow.core.framework.attr_value_pb2 import AttrValue
from tensorflow.core.framework.node_def_pb2 import NodeDef
from tensorflow.core.protobuf.meta_graph_pb2 import MetaGraphDef
from tensorflow.core.protobuf.saved_model_pb2 import SavedModel

from common.bundle import SAVED_MODEL_PB, Bundle, BundleError

log = logging.getLogger(__name__)

INFERENCE_OPS = frozenset(
    {
        # the network: preprocessing, MobileNet, Inception, EfficientNet, the softmax head
        *("AddV2", "AvgPool", "BiasAdd", "Cast", "ConcatV2", "Conv2D", "DepthwiseConv2dNative"),
        *("FusedBatchNormV3", "MatMul", "Maximum", "MaxPool", "Mean", "Mul", "Pad", "RealDiv", "Relu"),
        *("Relu6", "Reshape", "Rsqrt", "Shape", "Sigmoid", "Softmax", "Sqrt", "Square", "Squeeze"),
        *("StridedSlice", "Sub", "Sum", "Pack"),
        # graph plumbing: constants, inputs, identities, calls of the library's functions
        *("Const", "Identity", "IdentityN", "NoOp", "Placeholder", "PartitionedCall", "StatefulPartitionedCall"),
        # variables
        *("AssignVariableOp", "DisableCopyOnRead", "ReadVariableOp", "VarHandleOp", "VarIsInitializedOp"),
        # the saver's file names, computed without touching a file
        *("Select", "ShardedFilename", "StaticRegexFullMatch", "StringJoin"),
    }
)
CHECKPOINT_OPS = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints"})  # in the saver's functions only
# What TF-TRT's converted SavedModel adds: the engines, the resource that loads them from the model's
# assets, and the transposes of grappler's layout pass (NCHW on a GPU).
TENSORRT_OPS = frozenset(
    {"TRTEngineOp", "CreateTRTResourceHandle", "InitializeTRTResource", "DestroyResourceOp", "Transpose"}
)
# Never allowed, named so a refusal says "never" rather than "not yet listed": file I/O, Python,
# printing and summaries (both can write files), debugging, reading data sets, the network.
NEVER = frozenset(
    {
        *("WriteFile", "ReadFile", "MatchingFiles", "ImmutableConst", "Save", "SaveSlices", "Restore"),
        *("RestoreSlice", "LoadAndRemapMatrix", "GenerateVocabRemapping", "InitializeTableFromTextFileV2"),
        *("PyFunc", "PyFuncStateless", "EagerPyFunc", "Print", "PrintV2"),
        *("CreateSummaryFileWriter", "CreateSummaryDbWriter", "WriteSummary", "WriteScalarSummary"),
        *("WriteImageSummary", "WriteHistogramSummary", "WriteAudioSummary", "WriteRawProtoSummary"),
        *("DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount", "DebugNumericSummaryV2"),
        *("TextLineDataset", "TFRecordDataset", "FixedLengthRecordDatasetV2", "SaveDatasetV2", "LoadDataset"),
        *("DatasetToTFRecord", "WholeFileReaderV2", "ReaderReadV2", "Rpc", "RpcClient", "RpcServer"),
    }
)


def _function_refs(value: AttrValue) -> Iterable[str]:
    """Functions an attribute names: `f` of a call, a loop's body, a branch of a conditional..."""
    if value.HasField("func"):
        yield value.func.name
        for nested in value.func.attr.values():
            yield from _function_refs(nested)
    for func in value.list.func:
        yield func.name
        for nested in func.attr.values():
            yield from _function_refs(nested)


def _calls(nodes: Iterable[NodeDef], library: set[str]) -> set[str]:
    """The library functions these nodes call, by op name or through an attribute."""
    called = set()
    for node in nodes:
        called.add(node.op)
        for value in node.attr.values():
            called.update(_function_refs(value))
    return called & library


def _reach(roots: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), list(roots)
    while todo:
        if (name := todo.pop()) not in seen:
            seen.add(name)
            todo.extend(edges[name])
    return seen


def _saver_only(graph: MetaGraphDef, edges: dict[str, set[str]]) -> set[str]:
    """The functions only the saver_def's save and restore nodes reach: nothing that runs at load or
    at inference can call them."""
    saver = {graph.saver_def.save_tensor_name, graph.saver_def.restore_op_name}
    saver = {name.lstrip("^").split(":")[0] for name in saver if name}
    library = set(edges)
    nodes = graph.graph_def.node
    saver_reach = _reach(_calls((n for n in nodes if n.name in saver), library), edges)
    objects = graph.object_graph_def
    restored = set(objects.concrete_functions)  # the loader restores these as callables
    for obj in objects.nodes:
        restored.update(obj.function.concrete_functions)
        restored.add(obj.bare_concrete_function.concrete_function_name)
    others = _calls((n for n in nodes if n.name not in saver), library) | (restored & library)
    return saver_reach - _reach(others | (library - saver_reach), edges)


def _refused(graph: MetaGraphDef, extra: frozenset[str]) -> dict[str, set[str]]:
    """op -> where it is (the graph, or a function's name), for each op the graph may not hold."""
    functions = graph.graph_def.library.function
    library = {f.signature.name for f in functions}
    edges = {f.signature.name: _calls(f.node_def, library) for f in functions}
    saver_only = _saver_only(graph, edges)
    refused: dict[str, set[str]] = {}
    places = [("the graph", graph.graph_def.node, False)]
    places += [(f.signature.name, f.node_def, f.signature.name in saver_only) for f in functions]
    for where, nodes, in_saver in places:
        allowed = INFERENCE_OPS | extra | (CHECKPOINT_OPS if in_saver else frozenset())
        for node in nodes:
            if node.op not in allowed and node.op not in library:
                refused.setdefault(node.op, set()).add(where)
    return refused


def check(saved_model_pb: bytes, where: str, extra: frozenset[str] = frozenset()) -> None:
    """Raise BundleError, naming the ops and where they are, unless every op of the SavedModel is one
    a model for inference needs (INFERENCE_OPS, and `extra`)."""
    model = SavedModel()
    try:
        model.ParseFromString(saved_model_pb)
    except DecodeError as exc:
        raise BundleError(f"{where} is not a SavedModel: {exc}") from exc
    if not model.meta_graphs:
        raise BundleError(f"{where} holds no graph")
    refused: dict[str, set[str]] = {}
    for graph in model.meta_graphs:
        if not graph.HasField("object_graph_def"):
            raise BundleError(f"{where} is a TF1 SavedModel, whose loader runs the graph's own restore op")
        for op, places in _refused(graph, extra).items():
            refused.setdefault(op, set()).update(places)
    if refused:
        listed = [
            f"{op} (in {', '.join(sorted(places))}{'; never allowed' if op in NEVER | CHECKPOINT_OPS else ''})"
            for op, places in sorted(refused.items())
        ]
        raise BundleError(f"{where} holds ops outside the inference allowlist: {', '.join(listed)}")
    log.debug("%s: every op is on the inference allowlist", where)


def check_bundle(bundle: Bundle) -> None:
    """The check, on the bundle's saved_model.pb as read and checked against its sha256."""
    check(bundle.read(SAVED_MODEL_PB), str(bundle.path / SAVED_MODEL_PB))
