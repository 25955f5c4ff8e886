# SPDX-License-Identifier: Apache-2.0
"""Write a quantized zoo graph as a .tflite flatbuffer with the schema's object API.

Laid out as the converter does: schema version 3, file identifier "TFL3", buffer 0 empty
(activations point at it), one buffer per constant aligned to 16 bytes (TFLM reads biases
and float weights in place, and a Cortex-M0 faults on an unaligned word load), operator
codes carrying both `builtinCode` and `deprecatedBuiltinCode = min(code, 127)`. With
`float_io`, a float32 input feeds a QUANTIZE and a DEQUANTIZE produces a float32 output, as
the converter leaves an integer model whose inference input/output types stay float.
"""

from __future__ import annotations

from typing import Any

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from tinyfix.zoo.graph import Graph, Op
from tinyfix.zoo.quantize import QParams, QuantizedGraph

_TENSOR_TYPE = {"float32": fb.TensorType.FLOAT32, "int8": fb.TensorType.INT8,
                "int16": fb.TensorType.INT16, "int32": fb.TensorType.INT32,
                "int64": fb.TensorType.INT64}
_ACTIVATION = {"NONE": fb.ActivationFunctionType.NONE, "RELU": fb.ActivationFunctionType.RELU,
               "RELU6": fb.ActivationFunctionType.RELU6}
_PADDING = {"SAME": fb.Padding.SAME, "VALID": fb.Padding.VALID}
_BUFFER_ALIGNMENT = 16


class AlignedBuffer(fb.BufferT):  # type: ignore[misc]
    """A buffer whose bytes start on a 16-byte boundary (the converter's force_align)."""

    def __init__(self, payload: bytes = b"") -> None:
        super().__init__()
        self.payload = payload

    def Pack(self, builder: flatbuffers.Builder) -> int:
        data = None
        if self.payload:
            n = len(self.payload)
            builder.StartVector(1, n, _BUFFER_ALIGNMENT)
            builder.head -= n
            builder.Bytes[builder.head:builder.head + n] = self.payload
            builder.vectorNumElems = n
            data = builder.EndVector()
        fb.BufferStart(builder)
        if data is not None:
            fb.BufferAddData(builder, data)
        return int(fb.BufferEnd(builder))


def _quantization(p: QParams) -> Any:
    if not p.scale:
        return None
    q = fb.QuantizationParametersT()
    q.scale = np.asarray(p.scale, dtype=np.float32)
    q.zeroPoint = np.asarray(p.zero_point, dtype=np.int64)
    q.quantizedDimension = p.axis
    return q


def _tensor(name: str, shape: tuple[int, ...], p: QParams, buffer: int) -> Any:
    t = fb.TensorT()
    t.name = name.encode()
    t.shape = np.asarray(shape, dtype=np.int32)
    t.type = _TENSOR_TYPE[p.dtype]
    t.buffer = buffer
    t.quantization = _quantization(p)
    return t


def _options(op: Op, hybrid: bool) -> tuple[int, Any]:
    act = _ACTIVATION[op.activation]
    if op.kind == "FULLY_CONNECTED":
        o = fb.FullyConnectedOptionsT()
        o.fusedActivationFunction = act
        o.asymmetricQuantizeInputs = hybrid
        return fb.BuiltinOptions.FullyConnectedOptions, o
    if op.kind == "CONV_2D":
        o = fb.Conv2DOptionsT()
    elif op.kind == "DEPTHWISE_CONV_2D":
        o = fb.DepthwiseConv2DOptionsT()
        o.depthMultiplier = op.depth_multiplier
    elif op.kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        o = fb.Pool2DOptionsT()
        o.filterHeight, o.filterWidth = op.filter_size
    elif op.kind == "SOFTMAX":
        o = fb.SoftmaxOptionsT()
        o.beta = 1.0
        return fb.BuiltinOptions.SoftmaxOptions, o
    elif op.kind == "ADD":
        o = fb.AddOptionsT()
        o.fusedActivationFunction = act
        return fb.BuiltinOptions.AddOptions, o
    elif op.kind == "MEAN":
        o = fb.ReducerOptionsT()
        o.keepDims = op.keep_dims
        return fb.BuiltinOptions.ReducerOptions, o
    else:  # RESHAPE (the converter gives it a shape tensor, no options), LOGISTIC
        return fb.BuiltinOptions.NONE, None
    o.padding = _PADDING[op.padding]
    o.strideH, o.strideW = op.stride
    o.fusedActivationFunction = act
    option_type = {"CONV_2D": fb.BuiltinOptions.Conv2DOptions,
                   "DEPTHWISE_CONV_2D": fb.BuiltinOptions.DepthwiseConv2DOptions}
    return option_type.get(op.kind, fb.BuiltinOptions.Pool2DOptions), o


def write_tflite(graph: Graph, q: QuantizedGraph, float_io: bool = False,
                 description: str = "TinyFix zoo") -> bytes:
    """The flatbuffer bytes (deterministic: the same graph and quantization, the same bytes)."""
    buffers: list[Any] = [AlignedBuffer()]
    tensors: list[Any] = []
    for i, t in enumerate(graph.tensors):
        buffer = 0
        if i in q.constants:
            buffers.append(AlignedBuffer(np.ascontiguousarray(q.constants[i]).tobytes()))
            buffer = len(buffers) - 1
        tensors.append(_tensor(t.name, t.shape, q.params[i], buffer))

    codes: list[int] = []
    operators: list[Any] = []

    def add_operator(kind: str, inputs: tuple[int, ...], output: int,
                     options: tuple[int, Any]) -> None:
        code = getattr(fb.BuiltinOperator, kind)
        if code not in codes:
            codes.append(code)
        o = fb.OperatorT()
        o.opcodeIndex = codes.index(code)
        o.inputs = np.asarray(inputs, dtype=np.int32)
        o.outputs = np.asarray([output], dtype=np.int32)
        o.builtinOptionsType, o.builtinOptions = options
        operators.append(o)

    graph_input, graph_output = graph.input, graph.output
    if float_io:
        tensors.append(_tensor("input_float", graph.tensors[graph.input].shape,
                               QParams("float32"), 0))
        graph_input = len(tensors) - 1
        add_operator("QUANTIZE", (graph_input,), graph.input, (fb.BuiltinOptions.NONE, None))
    for op in graph.ops:
        add_operator(op.kind, op.inputs, op.output, _options(op, q.scheme == "hybrid"))
    if float_io:
        tensors.append(_tensor("output_float", graph.tensors[graph.output].shape,
                               QParams("float32"), 0))
        graph_output = len(tensors) - 1
        add_operator("DEQUANTIZE", (graph.output,), graph_output,
                     (fb.BuiltinOptions.NONE, None))

    sub = fb.SubGraphT()
    sub.tensors = tensors
    sub.inputs = np.asarray([graph_input], dtype=np.int32)
    sub.outputs = np.asarray([graph_output], dtype=np.int32)
    sub.operators = operators
    sub.name = b"main"
    model = fb.ModelT()
    model.version = 3
    model.description = description.encode()
    model.buffers = buffers
    model.subgraphs = [sub]
    model.operatorCodes = []
    for code in codes:
        oc = fb.OperatorCodeT()
        oc.builtinCode = code
        oc.deprecatedBuiltinCode = min(code, 127)
        oc.version = 1
        model.operatorCodes.append(oc)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
