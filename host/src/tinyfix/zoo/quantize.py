# SPDX-License-Identifier: Apache-2.0
"""Calibration and quantization of a zoo graph, following the TFLite converter's rules.

Schemes:
  - "int8": full-integer post-training quantization. Activations int8 asymmetric from the
    calibration min/max (range widened to include 0, scale (max-min)/255, zero point in
    [-128, 127]); weights int8 symmetric in [-127, 127], per output channel for CONV_2D
    (dimension 0) and DEPTHWISE_CONV_2D (dimension 3), per channel or per tensor for
    FULLY_CONNECTED; int32 biases at input_scale * weight_scale[c]; SOFTMAX and LOGISTIC
    outputs at 1/256 with zero point -128; pools and RESHAPE keep their input's parameters.
  - "int16x8": the same with int16 activations (symmetric, zero point 0, scale max|x|/32767),
    int64 biases, SOFTMAX/LOGISTIC outputs at 1/32768 with zero point 0.
  - "hybrid": dynamic-range quantization (no representative data): float32 activations and
    biases, FULLY_CONNECTED weights int8 symmetric; everything else stays float.
  - "float": every tensor float32 (the float twin).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyfix.zoo.graph import PASS_THROUGH_OPS, Graph

SCHEMES = ("int8", "int16x8", "hybrid", "float")
_WEIGHT_AXIS = {"FULLY_CONNECTED": 0, "CONV_2D": 0, "DEPTHWISE_CONV_2D": 3}
_PROBABILITY_OPS = ("SOFTMAX", "LOGISTIC")


@dataclass(frozen=True)
class QParams:
    """How one tensor is stored; scale and zero point empty for float and int32 tensors."""

    dtype: str  # "int8", "int16", "int32", "int64" or "float32"
    scale: tuple[float, ...] = ()
    zero_point: tuple[int, ...] = ()
    axis: int = 0

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Real values to this tensor's integers (round half away from zero, saturate)."""
        if self.dtype == "float32":
            return np.asarray(x, dtype=np.float32)
        info = np.iinfo(self.dtype)
        q = _round(np.asarray(x, dtype=np.float64) / np.float32(self.scale[0]))
        return np.clip(q + self.zero_point[0], info.min, info.max).astype(self.dtype)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        if self.dtype == "float32":
            return np.asarray(q, dtype=np.float32)
        scale = np.float32(self.scale[0])
        return (np.asarray(q, dtype=np.float64) - self.zero_point[0]) * scale


@dataclass(frozen=True)
class QuantizedGraph:
    """The storage of every tensor of a graph under one scheme, and its constants' values."""

    scheme: str
    params: dict[int, QParams]
    constants: dict[int, np.ndarray]


def _round(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def calibrate(graph: Graph, x: np.ndarray) -> dict[int, tuple[float, float]]:
    """(min, max) of every activation over the calibration inputs (the representative data)."""
    values = graph.forward(x)
    return {i: (float(v.min()), float(v.max())) for i, v in values.items()}


def activation_params(low: float, high: float, dtype: str) -> QParams:
    low, high = min(low, 0.0), max(high, 0.0)
    if dtype == "int16":
        bound = max(-low, high)
        scale = float(np.float32(bound / 32767.0)) if bound > 0 else 1.0
        return QParams("int16", (scale,), (0,))
    span = high - low
    scale = float(np.float32(span / 255.0)) if span > 0 else 1.0
    zero_point = int(np.clip(_round(np.array(-128.0 - low / scale)), -128, 127))
    return QParams("int8", (scale,), (zero_point,))


def weight_params(w: np.ndarray, axis: int, per_channel: bool) -> QParams:
    if per_channel:
        other = tuple(a for a in range(w.ndim) if a != axis)
        bound = np.abs(w).max(axis=other)
    else:
        bound = np.array([np.abs(w).max()])
    scales = np.where(bound > 0, bound / 127.0, 1.0).astype(np.float32)
    return QParams("int8", tuple(float(s) for s in scales), (0,) * scales.size,
                   axis if per_channel else 0)


def _quantize_weights(w: np.ndarray, p: QParams) -> np.ndarray:
    shape = [1] * w.ndim
    shape[p.axis] = -1
    scales = np.asarray(p.scale, dtype=np.float32).reshape(shape if len(p.scale) > 1 else [1])
    return np.clip(_round(w.astype(np.float64) / scales), -127, 127).astype(np.int8)


def _quantize_bias(b: np.ndarray, input_scale: float, w: QParams, dtype: str) -> tuple[
        QParams, np.ndarray]:
    scales = (np.float32(input_scale) * np.asarray(w.scale, dtype=np.float32)).astype(np.float32)
    if scales.size == 1:
        scales = np.full(b.shape, scales[0], dtype=np.float32)
    info = np.iinfo(dtype)
    q = np.clip(_round(b.astype(np.float64) / scales), info.min, info.max).astype(dtype)
    per_channel = len(w.scale) > 1
    stored = scales if per_channel else scales[:1]
    return QParams(dtype, tuple(float(s) for s in stored), (0,) * stored.size), q


def quantize(graph: Graph, ranges: dict[int, tuple[float, float]] | None,
             scheme: str) -> QuantizedGraph:
    """Storage for every tensor; `ranges` (from calibrate()) is unused by "hybrid"/"float"."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown quantization scheme {scheme!r}; one of {SCHEMES}")
    params: dict[int, QParams] = {}
    constants: dict[int, np.ndarray] = {}
    for i, t in enumerate(graph.tensors):
        if t.role == "int32":
            params[i] = QParams("int32")
            constants[i] = np.asarray(t.data, dtype=np.int32)
        elif t.is_constant:
            params[i] = QParams("float32")
            constants[i] = np.asarray(t.data, dtype=np.float32)
    if scheme in ("float", "hybrid"):
        for i in range(len(graph.tensors)):
            params.setdefault(i, QParams("float32"))
        if scheme == "hybrid":
            for op in graph.ops:
                if op.kind == "FULLY_CONNECTED":
                    w_index = op.inputs[1]
                    w = graph.tensors[w_index].data
                    assert w is not None
                    p = weight_params(w, 0, op.per_channel)
                    params[w_index] = p
                    constants[w_index] = _quantize_weights(w, p)
        return QuantizedGraph(scheme, params, constants)
    if ranges is None:
        raise ValueError(f"the {scheme} scheme needs calibration ranges")
    act = "int16" if scheme == "int16x8" else "int8"
    bias_dtype = "int64" if scheme == "int16x8" else "int32"
    params[graph.input] = activation_params(*ranges[graph.input], act)
    for op in graph.ops:
        if op.kind in PASS_THROUGH_OPS:
            params[op.output] = params[op.inputs[0]]
        elif op.kind in _PROBABILITY_OPS:
            params[op.output] = (QParams("int16", (1.0 / 32768.0,), (0,)) if act == "int16"
                                 else QParams("int8", (1.0 / 256.0,), (-128,)))
        else:
            params[op.output] = activation_params(*ranges[op.output], act)
        if op.kind in _WEIGHT_AXIS:
            w_index, b_index = op.inputs[1], op.inputs[2]
            w = graph.tensors[w_index].data
            b = graph.tensors[b_index].data
            assert w is not None and b is not None
            per_channel = op.per_channel or op.kind != "FULLY_CONNECTED"
            wp = weight_params(w, _WEIGHT_AXIS[op.kind], per_channel)
            params[w_index], constants[w_index] = wp, _quantize_weights(w, wp)
            input_scale = params[op.inputs[0]].scale[0]
            params[b_index], constants[b_index] = _quantize_bias(b, input_scale, wp, bias_dtype)
    return QuantizedGraph(scheme, params, constants)
