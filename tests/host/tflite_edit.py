# SPDX-License-Identifier: Apache-2.0
"""Model variants for tests, made by editing a .tflite flatbuffer (no TensorFlow needed)."""

from __future__ import annotations

from typing import Any

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb


def _load(data: bytes) -> Any:
    return fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))


def _save(model: Any) -> bytes:
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def replace_op(data: bytes, old: str, new: str) -> bytes:
    """The same graph with every `old` builtin op code changed to `new`."""
    model = _load(data)
    old_code, new_code = getattr(fb.BuiltinOperator, old), getattr(fb.BuiltinOperator, new)
    for code in model.operatorCodes:
        if max(code.builtinCode, code.deprecatedBuiltinCode) == old_code:
            code.builtinCode = new_code
            code.deprecatedBuiltinCode = min(new_code, 127)
    return _save(model)


def per_tensor_last_layer(data: bytes) -> bytes:
    """The model with its final FULLY_CONNECTED re-quantized per tensor.

    Weights of row c become round(w * s_c / S) with S the largest row scale, and the bias
    is rescaled to the new input * weight scale. TFLM then runs the layer with one output
    multiplier, which the core's head stage can express.
    """
    model = _load(data)
    sub = model.subgraphs[0]
    fc = sub.operators[-1]
    feature, w_index, b_index = (int(i) for i in fc.inputs[:3])
    w_t, b_t = sub.tensors[w_index], sub.tensors[b_index]
    scales = np.asarray(w_t.quantization.scale, dtype=np.float64)
    if scales.size == 1:
        return data
    big = float(np.float32(scales.max()))
    w = np.frombuffer(bytes(model.buffers[w_t.buffer].data), np.int8).reshape(w_t.shape)
    b = np.frombuffer(bytes(model.buffers[b_t.buffer].data), np.int32)
    ratio = (scales / big)[:, None]
    w_new = np.clip(np.round(w * ratio), -127, 127).astype(np.int8)
    b_new = np.round(b * ratio[:, 0]).astype(np.int32)
    in_scale = float(sub.tensors[feature].quantization.scale[0])
    model.buffers[w_t.buffer].data = np.frombuffer(w_new.tobytes(), np.uint8)
    model.buffers[b_t.buffer].data = np.frombuffer(b_new.tobytes(), np.uint8)
    for tensor, scale in ((w_t, big), (b_t, in_scale * big)):
        tensor.quantization.scale = np.array([scale], dtype=np.float32)
        tensor.quantization.zeroPoint = np.array([0], dtype=np.int64)
        tensor.quantization.quantizedDimension = 0
    return _save(model)
