# SPDX-License-Identifier: Apache-2.0
"""The model's own last layer on its own: a one-op .tflite holding the graph's final
FULLY_CONNECTED exactly as the model stores it (the same weight, bias and quantization
tensors, the same op options), reading the feature vector and writing the model's logits.

The cost section runs it under callgrind to count what TFLM's FULLY_CONNECTED kernel spends
on the layer the head stage re-does: in the whole model the kernel also runs the first
FULLY_CONNECTED, and callgrind adds the two calls up. Its flatbuffer bytes are what the
layer takes in flash.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyfix.errors import TinyfixError
from tinyfix.twin.model import ModelGraph, schema


def _load(data: bytes) -> Any:
    fb = schema()
    return fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))


def _quant_bytes(tensor: Any) -> int:
    """Bytes of a tensor's quantization arrays as the flatbuffer stores them (float32
    scales, int64 zero points)."""
    q = tensor.quantization
    if q is None:
        return 0
    scales = 0 if q.scale is None else len(q.scale)
    zero_points = 0 if q.zeroPoint is None else len(q.zeroPoint)
    return 4 * scales + 8 * zero_points


@dataclass(frozen=True)
class LayerBytes:
    """The final FULLY_CONNECTED's constants in the .tflite."""

    weights: int  # int8 (classes x features)
    bias: int  # int32 (classes)
    quantization: int  # scales and zero points of the weight and bias tensors

    @property
    def weights_and_bias(self) -> int:
        return self.weights + self.bias

    @property
    def total(self) -> int:
        return self.weights + self.bias + self.quantization


def layer_bytes(graph: ModelGraph) -> LayerBytes:
    if graph.final is None:
        raise TinyfixError(f"{graph.name} does not end in FULLY_CONNECTED")
    model = _load(graph.data)
    sub = model.subgraphs[0]
    op = sub.operators[graph.final.op_index]
    w, b = sub.tensors[int(op.inputs[1])], sub.tensors[int(op.inputs[2])]
    size = [0 if model.buffers[t.buffer].data is None else len(model.buffers[t.buffer].data)
            for t in (w, b)]
    return LayerBytes(size[0], size[1], _quant_bytes(w) + _quant_bytes(b))


def last_layer_model(graph: ModelGraph) -> bytes:
    """A .tflite whose only op is `graph`'s final FULLY_CONNECTED (features in, the layer's
    int8 logits out)."""
    import flatbuffers

    if graph.final is None:
        raise TinyfixError(f"{graph.name} does not end in FULLY_CONNECTED")
    fb = schema()
    model = _load(graph.data)
    sub = model.subgraphs[0]
    op = copy.deepcopy(sub.operators[graph.final.op_index])
    old = [int(i) for i in op.inputs] + [int(i) for i in op.outputs]
    keep = list(dict.fromkeys(i for i in old if i >= 0))
    index = {o: n for n, o in enumerate(keep)}
    buffers = [fb.BufferT()]  # buffer 0 is the empty sentinel
    tensors = []
    for o in keep:
        t = copy.deepcopy(sub.tensors[o])
        data = model.buffers[t.buffer].data
        if data is not None and len(data):
            buf = fb.BufferT()
            buf.data = np.asarray(data, dtype=np.uint8)
            buffers.append(buf)
            t.buffer = len(buffers) - 1
        else:
            t.buffer = 0
        tensors.append(t)
    op.inputs = np.array([index[i] if i >= 0 else -1 for i in op.inputs], dtype=np.int32)
    op.outputs = np.array([index[int(i)] for i in op.outputs], dtype=np.int32)
    code = copy.deepcopy(model.operatorCodes[op.opcodeIndex])
    op.opcodeIndex = 0
    one = fb.SubGraphT()
    one.tensors = tensors
    one.operators = [op]
    one.inputs = np.array([index[int(sub.operators[graph.final.op_index].inputs[0])]],
                          dtype=np.int32)
    one.outputs = np.array([index[int(sub.operators[graph.final.op_index].outputs[0])]],
                           dtype=np.int32)
    one.name = b"last_layer"
    out = fb.ModelT()
    out.version = model.version
    out.operatorCodes = [code]
    out.subgraphs = [one]
    out.buffers = buffers
    out.description = b"the final FULLY_CONNECTED of " + graph.name.encode()
    builder = flatbuffers.Builder(0)
    builder.Finish(out.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
