# SPDX-License-Identifier: Apache-2.0
"""Make a zoo model keep state between invocations, as recurrent and streaming models do.

The pass rewrites the int8 flatbuffer: an operator's input gets its own value from the
previous invocation added, read from a TFLM resource variable (VAR_HANDLE, READ_VARIABLE,
ASSIGN_VARIABLE: the ops a converted tf.Variable becomes). carry_logits does it to the
logits before the final SOFTMAX. After a reset the variable holds its zero point (a real 0):
a sample run from a reset state gets the stateless model's outputs up to rounding; run after
another sample, it gets that sample's values added, so its output depends on what came
before.
"""

from __future__ import annotations

from typing import Any

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from tinyfix.zoo.flatbuffer import AlignedBuffer

STATE_NAME = b"previous_value"


def _operator_code(model: Any, kind: str) -> int:
    code = getattr(fb.BuiltinOperator, kind)
    codes = [oc.builtinCode for oc in model.operatorCodes]
    if code in codes:
        return codes.index(code)
    oc = fb.OperatorCodeT()
    oc.builtinCode = code
    oc.deprecatedBuiltinCode = min(code, 127)
    oc.version = 1
    model.operatorCodes.append(oc)
    return len(model.operatorCodes) - 1


def _quantization(scale: float, zero_point: int) -> Any:
    q = fb.QuantizationParametersT()
    q.scale = np.asarray([scale], dtype=np.float32)
    q.zeroPoint = np.asarray([zero_point], dtype=np.int64)
    return q


def carry_logits(tflite: bytes) -> bytes:
    """The model with its logits mixed with the previous invocation's (see module doc)."""
    model = fb.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    kinds = [model.operatorCodes[op.opcodeIndex].builtinCode
             for op in model.subgraphs[0].operators]
    if not kinds or kinds[-1] != fb.BuiltinOperator.SOFTMAX:
        raise ValueError("carry_logits needs a model that ends in SOFTMAX")
    # Twice the range for the sum of two logit vectors: SOFTMAX has no bias to rescale.
    return carry_state(tflite, len(kinds) - 1, widen=True)


def carry_state(tflite: bytes, op_index: int, widen: bool = False) -> bytes:
    """The model with the first input of operator `op_index` mixed with its value from the
    previous invocation (a resource variable). `widen`: the sum gets twice the tensor's
    range; else the tensor's own quantization (saturating), which keeps the scales of a
    weighted op reading it (its bias is quantized at input scale x weight scale)."""
    model = fb.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    sub = model.subgraphs[0]
    reader = sub.operators[op_index]
    source_index = int(reader.inputs[0])
    source = sub.tensors[source_index]
    scale = float(source.quantization.scale[0])
    zero_point = int(source.quantization.zeroPoint[0])

    def tensor(name: str, ttype: int, quantization: Any = None) -> int:
        t = fb.TensorT()
        t.name = name.encode()
        t.shape = np.asarray([] if ttype == fb.TensorType.RESOURCE else source.shape,
                             dtype=np.int32)
        t.type = ttype
        t.buffer = 0
        t.quantization = quantization
        sub.tensors.append(t)
        return len(sub.tensors) - 1

    def operator(kind: str, inputs: list[int], outputs: list[int],
                 options: tuple[int, Any] = (fb.BuiltinOptions.NONE, None)) -> Any:
        o = fb.OperatorT()
        o.opcodeIndex = _operator_code(model, kind)
        o.inputs = np.asarray(inputs, dtype=np.int32)
        o.outputs = np.asarray(outputs, dtype=np.int32)
        o.builtinOptionsType, o.builtinOptions = options
        return o

    handle = tensor("state_handle", fb.TensorType.RESOURCE)
    previous = tensor("previous_value", fb.TensorType.INT8, _quantization(scale, zero_point))
    mixed = tensor("value_and_previous", fb.TensorType.INT8,
                   _quantization((2.0 if widen else 1.0) * scale, zero_point))
    var = fb.VarHandleOptionsT()
    var.sharedName = STATE_NAME
    sub.operators[op_index:op_index] = [
        operator("VAR_HANDLE", [], [handle], (fb.BuiltinOptions.VarHandleOptions, var)),
        operator("READ_VARIABLE", [handle], [previous]),
        operator("ADD", [source_index, previous], [mixed],
                 (fb.BuiltinOptions.AddOptions, fb.AddOptionsT())),
        operator("ASSIGN_VARIABLE", [handle, source_index], []),
    ]
    inputs = np.array(reader.inputs, dtype=np.int32)
    inputs[0] = mixed
    reader.inputs = inputs
    # Unpacked buffers would be packed unaligned: keep the writer's 16-byte alignment.
    model.buffers = [AlignedBuffer(b"" if b.data is None else np.asarray(b.data).tobytes())
                     for b in model.buffers]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
