# SPDX-License-Identifier: Apache-2.0
"""Which domain a model's outputs live in, and the values the scaling stage multiplies:
the dequantized logits, or the log of the dequantized probabilities (floored as the core
floors them: half a quantization step, so an empty bin has a finite log)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tinyfix.core import ModelInfo
from tinyfix.errors import TinyfixError

FLOAT_PROB_FLOOR = 1.0 / 65536  # one Q16.16 step, the core's floor for float outputs
INTEGER_TYPES = {"int8": (-128, 127), "int16": (-32768, 32767)}


def check_raw(raw: NDArray, model: ModelInfo) -> NDArray:
    """The raw outputs as an (N, outputs) array of the model's output type (one column for
    a binary model), or a clear error."""
    arr = np.asarray(raw)
    if arr.ndim != 2 or arr.shape[1] != model.outputs:
        raise TinyfixError(f"raw outputs must be (samples, {model.outputs}), got {arr.shape}")
    if model.output_type in INTEGER_TYPES:
        lo, hi = INTEGER_TYPES[model.output_type]
        if np.issubdtype(arr.dtype, np.floating) and (
                not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr))):
            raise TinyfixError(f"raw outputs of an {model.output_type} model must be whole "
                               "numbers")
        if arr.size and (arr.min() < lo or arr.max() > hi):
            raise TinyfixError(f"raw outputs outside the {model.output_type} range")
        return arr.astype(model.output_type)
    if not np.all(np.isfinite(arr)):
        raise TinyfixError("raw float outputs hold NaN or infinite values")
    return arr.astype(np.float32)


def dequantize(raw: NDArray, model: ModelInfo) -> NDArray[np.float64]:
    if model.output_type == "float32":
        return np.asarray(raw, dtype=np.float64)
    return (np.asarray(raw, dtype=np.float64) - model.output_zero_point) * model.output_scale


SIGMOID_SCALE = 1.0 / 256  # the int8 quantization TFLite gives LOGISTIC (and SOFTMAX)
SIGMOID_ZERO_POINT = -128


def detect_output_kind(raw: NDArray, model: ModelInfo) -> str:
    """"probs" when every dequantized row is non-negative and sums to 1 within rounding
    (a final SOFTMAX), or for a binary model when its one output is quantized as TFLite
    quantizes a sigmoid (scale 1/256, zero point -128); else "logits"."""
    real = dequantize(check_raw(raw, model), model)
    if real.size == 0:
        raise TinyfixError("no raw outputs to look at")
    if model.kind == "binary":
        sigmoid = (model.output_type == "int8" and model.output_zero_point == SIGMOID_ZERO_POINT
                   and abs(model.output_scale - SIGMOID_SCALE) < 1e-9)
        in_unit = bool(np.all(real >= 0.0) and np.all(real <= 1.0))
        return "probs" if (sigmoid or model.output_type == "float32") and in_unit else "logits"
    step = 0.0 if model.output_type == "float32" else model.output_scale
    tolerance = 0.01 + model.n_classes * step / 2
    sums = real.sum(axis=1)
    if np.all(real >= -step / 2) and np.all(np.abs(sums - 1.0) <= tolerance):
        return "probs"
    return "logits"


def prob_floor(model: ModelInfo) -> float:
    if model.output_type == "float32":
        return FLOAT_PROB_FLOOR
    return max(model.output_scale / 2, FLOAT_PROB_FLOOR)


def scaling_inputs(raw: NDArray, model: ModelInfo, output_kind: str) -> NDArray[np.float64]:
    """z (N, classes) of logit = z * scale + bias: logits as they are, probabilities in the
    log domain. A binary model's one output is class 1's; class 0 is 0 (a logit) or 1 - p."""
    real = dequantize(check_raw(raw, model), model)
    if output_kind not in ("logits", "probs"):
        raise TinyfixError(f"output kind must be 'logits' or 'probs', not {output_kind!r}")
    if model.kind == "binary":
        p1 = real[:, 0]
        p0 = np.zeros_like(p1) if output_kind == "logits" else 1.0 - p1
        real = np.stack([p0, p1], axis=1)
        if output_kind == "logits":
            return real
        return np.log(np.maximum(real, prob_floor(model)))
    if output_kind == "probs":
        return np.log(np.maximum(real, prob_floor(model)))
    return real
