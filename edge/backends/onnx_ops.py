"""The operators an ONNX model asks for, read from its protobuf before ONNX Runtime sees it. ONNX
Runtime runs no code from a model, but an op of a custom domain needs a library registered to run it,
and a tensor stored as "external data" makes the runtime read a file the model names. A bundle's
model may hold ONNX's own ops of INFERENCE_OPS only, and every tensor inside it.

INFERENCE_OPS is what the retrainer's exports hold (tf2onnx from the TFLite model, opset 17), listed
from an export of each architecture it offers (MobileNet v1/v2/v3, Inception v3, EfficientNet-B0)
at float32, float16 and int8. The protobuf is read by hand (its wire format is stable and the fields
needed are five deep), so this needs no `onnx` package on the device."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from common.bundle import BundleError

log = logging.getLogger(__name__)

INFERENCE_OPS = frozenset(
    {
        *("Add", "AveragePool", "Cast", "Clip", "Concat", "Conv", "GlobalAveragePool", "HardSwish"),
        *("MatMul", "MaxPool", "Mul", "ReduceMean", "Relu", "Reshape", "Sigmoid", "Softmax", "Squeeze"),
        *("Transpose", "QuantizeLinear", "DequantizeLinear"),
    }
)
ONNX_DOMAINS = ("", "ai.onnx")  # ONNX's own operator set, by both of its names
# Field numbers of onnx.proto3
MODEL_GRAPH, MODEL_FUNCTIONS = 7, 25
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_SPARSE_INITIALIZER = 1, 5, 15
NODE_OP_TYPE, NODE_ATTRIBUTE, NODE_DOMAIN = 4, 5, 7
ATTRIBUTE_TENSORS = (5, 10, 22, 23)  # t, tensors, sparse_tensor, sparse_tensors
TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION = 13, 14
SPARSE_VALUES, SPARSE_INDICES = 1, 2
EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


def _varint(data: memoryview, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError(f"a varint runs past byte {at}")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def fields(data: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) of each field of a message: an int, or the bytes of a length-delimited one.
    A message given a field twice merges both (protobuf's rule), so callers look at every occurrence."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        value: int | memoryview
        if wire == VARINT:
            value, at = _varint(data, at)
        elif wire in (FIXED64, FIXED32):
            value, at = 0, at + (8 if wire == FIXED64 else 4)
        elif wire == LENGTH:
            size, at = _varint(data, at)
            value, at = data[at : at + size], at + size
        else:
            raise ValueError(f"wire type {wire} (field {number}) is none that ONNX uses")
        if at > len(data):
            raise ValueError(f"field {number} runs past the end")
        yield number, value


def _messages(data: memoryview, number: int) -> list[memoryview]:
    return [value for n, value in fields(data) if n == number and isinstance(value, memoryview)]


def _external(tensor: memoryview, sparse: bool = False) -> bool:
    if sparse:
        parts = _messages(tensor, SPARSE_VALUES) + _messages(tensor, SPARSE_INDICES)
        return any(_external(part) for part in parts)
    return any(
        n == TENSOR_EXTERNAL_DATA or (n == TENSOR_DATA_LOCATION and value == EXTERNAL) for n, value in fields(tensor)
    )


def _node_problems(node: memoryview) -> Iterator[str]:
    values = list(fields(node))
    ops = [bytes(v).decode("utf-8", "replace") for n, v in values if n == NODE_OP_TYPE and isinstance(v, memoryview)]
    domains = [bytes(v).decode("utf-8", "replace") for n, v in values if n == NODE_DOMAIN and isinstance(v, memoryview)]
    for domain in domains:
        if domain not in ONNX_DOMAINS:
            yield f"{'/'.join(ops) or '(unnamed)'} of custom domain {domain!r}"
    for op in ops or ["(no op_type)"]:
        if op not in INFERENCE_OPS:
            yield op
    for attribute in (v for n, v in values if n == NODE_ATTRIBUTE and isinstance(v, memoryview)):
        for number in ATTRIBUTE_TENSORS:
            if any(_external(t, sparse=number > 10) for t in _messages(attribute, number)):
                yield f"a tensor of {'/'.join(ops)} stored as external data"


def problems(model: bytes) -> list[str]:
    """What in the model is refused: ops off the allowlist, custom domains, external data, functions."""
    data = memoryview(model)
    graphs = _messages(data, MODEL_GRAPH)
    if not graphs:
        raise ValueError("no graph")
    found = ["local functions"] if _messages(data, MODEL_FUNCTIONS) else []
    for graph in graphs:
        for node in _messages(graph, GRAPH_NODE):
            found.extend(_node_problems(node))
        if any(_external(t) for t in _messages(graph, GRAPH_INITIALIZER)):
            found.append("initializers stored as external data")
        if any(_external(t, sparse=True) for t in _messages(graph, GRAPH_SPARSE_INITIALIZER)):
            found.append("sparse initializers stored as external data")
    return sorted(set(found))


def check(model: bytes, where: str) -> None:
    """Raise BundleError when the model is no ONNX protobuf or holds anything problems() refuses."""
    try:
        refused = problems(model)
    except ValueError as exc:
        raise BundleError(f"{where} is not an ONNX model: {exc}") from exc
    if refused:
        raise BundleError(f"{where} holds what no inference needs: {', '.join(refused)}")
    log.debug("%s: every op is on the inference allowlist", where)
