# SPDX-License-Identifier: Apache-2.0
"""A small read-only reader for the part of a .tflite flatbuffer TinyFix's build needs.

Standard library only: it runs at CMake configure time in a user's Zephyr Python, where
neither `flatbuffers` nor `tflite-micro` is installed. It reads the model version, operator
codes, every subgraph's tensors (shape, type, buffer, name, quantization), operators
(opcode, inputs, outputs, intermediates and the options of CONV_2D, DEPTHWISE_CONV_2D,
the pools and FULLY_CONNECTED), the subgraph inputs and outputs, and how many bytes each
buffer holds (the bytes themselves are never copied).

Field ids follow tensorflow/compiler/mlir/lite/schema/schema.fbs: a table's fields are
numbered in declaration order, a union takes two ids (its type, then its value). Every
read is bounds-checked and every index is validated, so a truncated, corrupt or foreign
file raises TfliteFormatError with one readable line, never an IndexError or struct.error.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

FILE_IDENTIFIER = b"TFL3"

# schema TensorType -> (name, bytes per element, TfLiteType value in TFLM's C API).
TENSOR_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("float32", 4, 1), 1: ("float16", 2, 10), 2: ("int32", 4, 2), 3: ("uint8", 1, 3),
    4: ("int64", 8, 4), 5: ("string", 1, 5), 6: ("bool", 1, 6), 7: ("int16", 2, 7),
    8: ("complex64", 8, 8), 9: ("int8", 1, 9), 10: ("float64", 8, 11),
    11: ("complex128", 16, 12), 12: ("uint64", 8, 13), 13: ("resource", 1, 14),
    14: ("variant", 1, 15), 15: ("uint32", 4, 16), 16: ("uint16", 2, 17),
    # TFLM unpacks int4 weights to one byte each before use.
    17: ("int4", 1, 18), 18: ("bfloat16", 2, 19),
}
FLOAT32, INT32, UINT8, INT16, INT8, INT4 = 0, 2, 3, 7, 9, 17

# BuiltinOptions union members this reader decodes.
OPTIONS_CONV_2D, OPTIONS_DEPTHWISE_CONV_2D, OPTIONS_POOL_2D, OPTIONS_FULLY_CONNECTED = 1, 2, 5, 8
PADDING_SAME, PADDING_VALID = 0, 1
ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")
CUSTOM_CODE = 32


class TfliteFormatError(ValueError):
    """The bytes are not a TFLite flatbuffer this reader can make sense of."""


@dataclass(frozen=True)
class Quantization:
    """Affine quantization: real = scale * (q - zero_point), per channel along `dimension`."""

    scale: tuple[float, ...] = ()
    zero_point: tuple[int, ...] = ()
    dimension: int = 0


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: int  # schema TensorType
    buffer: int
    quantization: Quantization | None
    is_variable: bool = False

    @property
    def elements(self) -> int:
        count = 1
        for d in self.shape:
            count *= d
        return count

    @property
    def type_name(self) -> str:
        return TENSOR_TYPES.get(self.dtype, (f"type {self.dtype}", 1, 0))[0]

    @property
    def nbytes(self) -> int:
        return self.elements * TENSOR_TYPES.get(self.dtype, ("", 1, 0))[1]


@dataclass(frozen=True)
class ConvOptions:
    """Conv2DOptions or DepthwiseConv2DOptions (depth_multiplier 0 for CONV_2D)."""

    padding: int = PADDING_SAME
    stride_w: int = 0
    stride_h: int = 0
    activation: int = 0
    dilation_w: int = 1
    dilation_h: int = 1
    depth_multiplier: int = 0


@dataclass(frozen=True)
class PoolOptions:
    padding: int = PADDING_SAME
    stride_w: int = 0
    stride_h: int = 0
    filter_w: int = 0
    filter_h: int = 0
    activation: int = 0


@dataclass(frozen=True)
class FullyConnectedOptions:
    activation: int = 0
    weights_format: int = 0
    keep_num_dims: bool = False


Options = ConvOptions | PoolOptions | FullyConnectedOptions


@dataclass(frozen=True)
class Operator:
    opcode_index: int
    inputs: tuple[int, ...]  # -1 marks an omitted optional input
    outputs: tuple[int, ...]
    intermediates: tuple[int, ...]
    options_type: int
    options: Options | None


@dataclass(frozen=True)
class OperatorCode:
    builtin_code: int
    deprecated_builtin_code: int
    custom_code: str | None
    version: int

    @property
    def code(self) -> int:
        """The real builtin code: old files fill only the int8 field, new ones both."""
        return max(self.builtin_code, self.deprecated_builtin_code)


@dataclass(frozen=True)
class SubGraph:
    tensors: tuple[Tensor, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    operators: tuple[Operator, ...]
    name: str


@dataclass(frozen=True)
class Model:
    version: int
    operator_codes: tuple[OperatorCode, ...]
    subgraphs: tuple[SubGraph, ...]
    buffer_sizes: tuple[int, ...]  # bytes of constant data in each buffer (0: none)
    description: str

    def is_constant(self, tensor: Tensor) -> bool:
        """True for a tensor whose values are in the file, as TFLM decides it."""
        return self.buffer_sizes[tensor.buffer] > 0


class _Buffer:
    """Bounds-checked little-endian reads of flatbuffer primitives."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def unpack(self, fmt: str, pos: int, what: str) -> tuple:
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.data):
            raise TfliteFormatError(f"truncated or corrupt flatbuffer ({what} at byte {pos} "
                                    f"lies outside the {len(self.data)}-byte file)")
        return struct.unpack_from(fmt, self.data, pos)

    def u32(self, pos: int, what: str) -> int:
        return int(self.unpack("<I", pos, what)[0])

    def table(self, pos: int, what: str) -> _Table:
        vtable = pos - int(self.unpack("<i", pos, what)[0])
        vt_size, _ = self.unpack("<HH", vtable, f"{what} vtable")
        if vt_size < 4 or vt_size % 2:
            raise TfliteFormatError(f"corrupt flatbuffer ({what} has a {vt_size}-byte vtable)")
        self.unpack(f"<{vt_size // 2}H", vtable, f"{what} vtable")
        return _Table(self, pos, vtable, vt_size, what)


class _Table:
    """One flatbuffer table: fields by id, absent ones at their schema default."""

    def __init__(self, buf: _Buffer, pos: int, vtable: int, vt_size: int, what: str) -> None:
        self.buf, self.pos, self.vtable, self.vt_size, self.what = buf, pos, vtable, vt_size, what

    def _field(self, field_id: int) -> int | None:
        at = 4 + 2 * field_id
        if at >= self.vt_size:
            return None
        offset = int(self.buf.unpack("<H", self.vtable + at, self.what)[0])
        return self.pos + offset if offset else None

    def scalar(self, field_id: int, fmt: str, default: int | float = 0) -> int | float:
        pos = self._field(field_id)
        if pos is None:
            return default
        return self.buf.unpack("<" + fmt, pos, f"{self.what} field {field_id}")[0]

    def _target(self, field_id: int) -> int | None:
        pos = self._field(field_id)
        if pos is None:
            return None
        return pos + self.buf.u32(pos, f"{self.what} field {field_id}")

    def _vector(self, field_id: int, elem_size: int) -> tuple[int, int] | None:
        start = self._target(field_id)
        if start is None:
            return None
        length = self.buf.u32(start, f"{self.what} field {field_id} length")
        end = start + 4 + length * elem_size
        if end > len(self.buf.data):
            raise TfliteFormatError(
                f"truncated or corrupt flatbuffer ({self.what} field {field_id}: {length} "
                f"elements run past the end of the {len(self.buf.data)}-byte file)")
        return start + 4, length

    def vector(self, field_id: int, fmt: str) -> tuple:
        found = self._vector(field_id, struct.calcsize(fmt))
        if found is None:
            return ()
        start, length = found
        return self.buf.unpack(f"<{length}{fmt}", start, f"{self.what} field {field_id}")

    def vector_length(self, field_id: int) -> int:
        """Element count of a [ubyte] vector without reading its bytes."""
        found = self._vector(field_id, 1)
        return 0 if found is None else found[1]

    def tables(self, field_id: int, what: str) -> list[_Table]:
        found = self._vector(field_id, 4)
        if found is None:
            return []
        start, length = found
        return [self.buf.table(at + self.buf.u32(at, what), f"{what} {i}")
                for i, at in enumerate(range(start, start + 4 * length, 4))]

    def table_field(self, field_id: int, what: str) -> _Table | None:
        pos = self._target(field_id)
        return None if pos is None else self.buf.table(pos, what)

    def string(self, field_id: int) -> str | None:
        found = self._vector(field_id, 1)
        if found is None:
            return None
        start, length = found
        return self.buf.data[start:start + length].decode("utf-8", errors="replace")


def read_model(data: bytes) -> Model:
    """Parse and validate a .tflite flatbuffer. Raises TfliteFormatError."""
    if len(data) < 8:
        raise TfliteFormatError(f"not a TFLite flatbuffer (only {len(data)} bytes)")
    if data[4:8] != FILE_IDENTIFIER:
        raise TfliteFormatError("not a TFLite flatbuffer (no TFL3 file identifier)")
    buf = _Buffer(bytes(data))
    root = buf.table(buf.u32(0, "root offset"), "model")
    model = Model(
        version=int(root.scalar(0, "I")),
        operator_codes=tuple(_operator_code(t) for t in root.tables(1, "operator code")),
        subgraphs=tuple(_subgraph(t) for t in root.tables(2, "subgraph")),
        buffer_sizes=tuple(_buffer_size(t) for t in root.tables(4, "buffer")),
        description=root.string(3) or "",
    )
    _validate(model)
    return model


def _operator_code(t: _Table) -> OperatorCode:
    return OperatorCode(builtin_code=int(t.scalar(3, "i")),
                        deprecated_builtin_code=int(t.scalar(0, "b")),
                        custom_code=t.string(1), version=int(t.scalar(2, "i", 1)))


def _buffer_size(t: _Table) -> int:
    inline = t.vector_length(0)
    if inline:
        return inline
    # Models over 2 GB keep data outside the flatbuffer: an offset (> 1) and a size.
    return int(t.scalar(2, "Q")) if int(t.scalar(1, "Q")) > 1 else 0


def _subgraph(t: _Table) -> SubGraph:
    return SubGraph(
        tensors=tuple(_tensor(i, x) for i, x in enumerate(t.tables(0, "tensor"))),
        inputs=tuple(int(i) for i in t.vector(1, "i")),
        outputs=tuple(int(i) for i in t.vector(2, "i")),
        operators=tuple(_operator(x) for x in t.tables(3, "operator")),
        name=t.string(4) or "",
    )


def _tensor(index: int, t: _Table) -> Tensor:
    q = t.table_field(4, f"tensor {index} quantization")
    return Tensor(index=index, name=t.string(3) or "", shape=tuple(t.vector(0, "i")),
                  dtype=int(t.scalar(1, "b")), buffer=int(t.scalar(2, "I")),
                  quantization=None if q is None else _quantization(q),
                  is_variable=bool(t.scalar(5, "B")))


def _quantization(t: _Table) -> Quantization:
    return Quantization(scale=tuple(float(s) for s in t.vector(2, "f")),
                        zero_point=tuple(int(z) for z in t.vector(3, "q")),
                        dimension=int(t.scalar(6, "i")))


def _operator(t: _Table) -> Operator:
    options_type = int(t.scalar(3, "B"))
    options = t.table_field(4, "operator options")
    return Operator(opcode_index=int(t.scalar(0, "I")),
                    inputs=tuple(t.vector(1, "i")), outputs=tuple(t.vector(2, "i")),
                    intermediates=tuple(t.vector(8, "i")), options_type=options_type,
                    options=None if options is None else _options(options_type, options))


def _options(kind: int, t: _Table) -> Options | None:
    def i(field_id: int, default: int = 0) -> int:
        return int(t.scalar(field_id, "i", default))

    def b(field_id: int) -> int:
        return int(t.scalar(field_id, "b"))

    if kind == OPTIONS_CONV_2D:
        return ConvOptions(padding=b(0), stride_w=i(1), stride_h=i(2), activation=b(3),
                           dilation_w=i(4, 1), dilation_h=i(5, 1))
    if kind == OPTIONS_DEPTHWISE_CONV_2D:
        return ConvOptions(padding=b(0), stride_w=i(1), stride_h=i(2), depth_multiplier=i(3),
                           activation=b(4), dilation_w=i(5, 1), dilation_h=i(6, 1))
    if kind == OPTIONS_POOL_2D:
        return PoolOptions(padding=b(0), stride_w=i(1), stride_h=i(2), filter_w=i(3),
                           filter_h=i(4), activation=b(5))
    if kind == OPTIONS_FULLY_CONNECTED:
        return FullyConnectedOptions(activation=b(0), weights_format=b(1),
                                     keep_num_dims=bool(t.scalar(2, "B")))
    return None


def _validate(model: Model) -> None:
    """Check every index the rest of the build follows, so that it can trust them."""
    if not model.subgraphs:
        raise TfliteFormatError("the model has no subgraph")
    if not model.buffer_sizes:
        raise TfliteFormatError("the model has no buffers (not even the empty buffer 0)")
    for s, sub in enumerate(model.subgraphs):
        where = f"subgraph {s}"
        n = len(sub.tensors)
        for t in sub.tensors:
            if not 0 <= t.buffer < len(model.buffer_sizes):
                raise TfliteFormatError(f"{where}: tensor {t.index} refers to buffer "
                                        f"{t.buffer} of {len(model.buffer_sizes)}")
            if any(d < 0 for d in t.shape):
                raise TfliteFormatError(f"{where}: tensor {t.index} ({t.name}) has a dynamic "
                                        f"shape {list(t.shape)}; TFLM needs static shapes")
        for name, indices in (("input", sub.inputs), ("output", sub.outputs)):
            for i in indices:
                if not 0 <= i < n:
                    raise TfliteFormatError(f"{where}: {name} tensor {i} of {n}")
        for k, op in enumerate(sub.operators):
            if not 0 <= op.opcode_index < len(model.operator_codes):
                raise TfliteFormatError(f"{where}: operator {k} uses opcode {op.opcode_index} "
                                        f"of {len(model.operator_codes)}")
            for i in op.inputs + op.outputs + op.intermediates:
                if not -1 <= i < n or (i == -1 and i in op.outputs):
                    raise TfliteFormatError(f"{where}: operator {k} refers to tensor {i} "
                                            f"of {n}")
