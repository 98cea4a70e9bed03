"""The operators a .tflite model asks for, read from its flatbuffer before LiteRT sees it. Builtin ops
are LiteRT's own kernels, none of which touches a file; a custom op runs whatever code registered its
name, and a Flex op (`FlexWriteFile`, ...) runs a TensorFlow kernel inside LiteRT. A bundle's model
may hold builtin ops only. The flatbuffer is read by hand (its layout is stable and four fields
deep), so this needs no schema package on the device."""

from __future__ import annotations

import logging
import struct

from common.bundle import BundleError

log = logging.getLogger(__name__)

CUSTOM = 32  # BuiltinOperator.CUSTOM in LiteRT's schema
MODEL_OPERATOR_CODES = 1  # Model.operator_codes: the field's index in the table
CODE_DEPRECATED_BUILTIN, CODE_CUSTOM, CODE_BUILTIN = 0, 1, 3  # OperatorCode's fields


class _Reader:
    """Bounds-checked reads of a flatbuffer: a malformed one is an error, never a wrong answer."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def scalar(self, fmt: str, at: int) -> int:
        if at < 0 or at + struct.calcsize(fmt) > len(self.data):
            raise ValueError(f"offset {at} outside the {len(self.data)} bytes")
        value: int = struct.unpack_from(fmt, self.data, at)[0]
        return value

    def deref(self, at: int) -> int:
        return at + self.scalar("<I", at)

    def field(self, table: int, index: int) -> int | None:
        """Where a table's field lies, or None when it is absent (its default applies)."""
        vtable = table - self.scalar("<i", table)
        entry = 4 + 2 * index
        if entry + 2 > self.scalar("<H", vtable):
            return None
        offset = self.scalar("<H", vtable + entry)
        return table + offset if offset else None

    def vector(self, at: int) -> list[int]:
        """The positions of a vector's table elements."""
        start = self.deref(at)
        count = self.scalar("<I", start)
        if start + 4 + 4 * count > len(self.data):
            raise ValueError(f"a vector of {count} runs past the end")
        return [self.deref(start + 4 + 4 * i) for i in range(count)]

    def string(self, at: int) -> str:
        start = self.deref(at)
        size = self.scalar("<I", start)
        if start + 4 + size > len(self.data):
            raise ValueError("a string runs past the end")
        return self.data[start + 4 : start + 4 + size].decode("utf-8", "replace")


def operator_codes(model: bytes) -> list[tuple[int, str]]:
    """(builtin code, custom code) of each operator the model's subgraphs may use."""
    read = _Reader(model)
    codes_at = read.field(read.deref(0), MODEL_OPERATOR_CODES)
    result = []
    for code in read.vector(codes_at) if codes_at is not None else []:
        deprecated, custom, builtin = (
            read.field(code, i) for i in (CODE_DEPRECATED_BUILTIN, CODE_CUSTOM, CODE_BUILTIN)
        )
        number = max(  # the schema's rule: the larger of the old int8 field and the new int32 one
            read.scalar("<b", deprecated) if deprecated is not None else 0,
            read.scalar("<i", builtin) if builtin is not None else 0,
        )
        result.append((number, read.string(custom) if custom is not None else ""))
    return result


def check(model: bytes, where: str) -> None:
    """Raise BundleError when the model is no TFLite flatbuffer or asks for a custom (or Flex) op."""
    try:
        codes = operator_codes(model)
    except (ValueError, struct.error) as exc:
        raise BundleError(f"{where} is not a TFLite model: {exc}") from exc
    custom = sorted({name or "(unnamed)" for number, name in codes if number == CUSTOM})
    if custom:
        raise BundleError(f"{where} asks for custom ops {', '.join(custom)}: only LiteRT's builtin ops load")
