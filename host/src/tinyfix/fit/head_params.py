# SPDX-License-Identifier: Apache-2.0
"""The int8 last layer the core's head stage runs, and how a float layer becomes one.

Two forms (struct tinyfix_head_params):

- A whole layer maps the real feature vector x = feature_scale * (f - feature_zero_point) to
  logits W x + b. It is quantized as TFLite quantizes a FULLY_CONNECTED: symmetric int8
  weights with weight_scale = max|W| / 127 (over the whole layer, or per row for a
  per-channel layer), int32 biases in units of feature_scale * weight_scale, and the output
  requantized by feature_scale * weight_scale / logit_step (TFLM's QuantizeMultiplier, one
  multiplier and shift per row) into the model output's zero point. Dequantized with the
  model output's scale, one output step is output_scale; the scale stage multiplies by
  logit_step / output_scale (1 for a logits model) to get back to logits.
- A residual adds dW x_S + db to the model's own logits, from a subset S of the features
  (`columns`): int8 weights per row with weight_scale = max|dW_r| / 127, int32 biases in
  feature_scale * weight_scale units, and a multiplier and shift that turn the accumulator
  into a Q16.16 logit (tinyfix_mul_q31). The model's own layer is not stored again.

Rows are the model's outputs: one per class, or one for a binary model (class 1's logit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tinyfix.errors import TinyfixError
from tinyfix.twin.model import quantize_multiplier

BIAS_LIMIT = 1 << 30  # the core's documented range of head.bias
# A weight scale within this relative distance of the model's own is the model's own: the
# same layer then quantizes to the same integers (bit-exact with TFLM).
SAME_SCALE = 1e-6
PER_ROW_BYTES = 12  # int32 multiplier, shift and bias per row
Q16 = 65536.0


@dataclass(frozen=True)
class HeadParams:
    """What goes into struct tinyfix_head_params, plus the real value of one output step.

    columns: None for a whole layer (weights (rows, features)); else the sorted feature
    indices of a residual (weights (rows, len(columns))), and n_features says how many
    features the model's layer reads."""

    weights: NDArray[np.int8]
    bias: NDArray[np.int32]  # (rows,)
    multiplier: NDArray[np.int64]  # (rows,)
    shift: NDArray[np.int64]  # (rows,)
    logit_step: float
    n_features: int
    columns: NDArray[np.int64] | None = None

    @property
    def n_rows(self) -> int:
        return int(self.weights.shape[0])

    @property
    def is_residual(self) -> bool:
        return self.columns is not None

    @property
    def n_columns(self) -> int:
        """Features the head reads: all for a whole layer, its columns for a residual."""
        return self.n_features if self.columns is None else int(self.columns.size)

    @property
    def flash_bytes(self) -> int:
        """Bytes of the head in a parameter set: int8 weights, the per-row integers and, for
        a residual, the bitmap of its columns."""
        return head_bytes(self.n_rows, self.n_features,
                          None if self.columns is None else self.n_columns)

    @property
    def column_bitmap(self) -> bytes:
        """The core's columns[]: bit f % 8 of byte f / 8 set for each feature read."""
        bits = bytearray((self.n_features + 7) // 8)
        for f in (self.columns if self.columns is not None else ()):
            bits[int(f) // 8] |= 1 << (int(f) % 8)
        return bytes(bits)

    def describe(self) -> str:
        if self.columns is None:
            return (f"a whole layer: {self.n_rows}x{self.n_features} int8 weights and "
                    f"{self.n_rows} int32 biases, multipliers and shifts")
        return (f"a residual on {self.n_columns} of the {self.n_features} features: "
                f"{self.n_rows}x{self.n_columns} int8 weights, per-row integers and a "
                f"{len(self.column_bitmap)}-byte column bitmap")


def head_bytes(rows: int, features: int, columns: int | None) -> int:
    """Parameter-set bytes of a head: whole layer (columns None) or residual on k columns
    (TINYFIX_PARAMS_HEAD_SIZE)."""
    if columns is None:
        return rows * (features + PER_ROW_BYTES)
    return rows * (columns + PER_ROW_BYTES) + (features + 7) // 8


def _f32(x: float) -> float:
    return float(np.float32(x))


def _scales(w: NDArray[np.float64], per_row: bool,
            model_scales: tuple[float, ...] | None) -> NDArray[np.float64]:
    largest = np.max(np.abs(w), axis=1) if per_row else np.full(
        w.shape[0], np.max(np.abs(w)) if w.size else 0.0)
    scales = np.where(largest > 0, largest / 127.0, 1.0 / 127.0)
    if model_scales is not None:
        own = np.broadcast_to(np.asarray(model_scales, dtype=np.float64), scales.shape)
        same = np.abs(scales / own - 1.0) < SAME_SCALE
        scales = np.where(same, own, scales)
    return scales.astype(np.float32).astype(np.float64)  # TFLite stores scales as float32


def _check(w: NDArray[np.float64], b: NDArray[np.float64]) -> None:
    if w.ndim != 2 or b.shape != (w.shape[0],):
        raise TinyfixError(f"head weights {w.shape} and bias {b.shape} do not match")
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
        raise TinyfixError("the head fit produced a non-finite weight or bias")


def _multipliers(reals: NDArray[np.float64], what: str) -> tuple[NDArray, NDArray]:
    quant = [quantize_multiplier(float(r)) for r in reals]
    if any(m < 1 << 30 or not -31 <= sh <= 30 for m, sh in quant):
        raise TinyfixError(f"the head's {what} is out of the core's range "
                           f"({float(np.max(reals)):.3g})")
    return (np.array([m for m, _ in quant], dtype=np.int64),
            np.array([sh for _, sh in quant], dtype=np.int64))


def quantize_head(weights: NDArray[np.float64], bias: NDArray[np.float64],
                  feature_scale: float, logit_step: float, *, per_class: bool,
                  model_scales: tuple[float, ...] | None = None) -> HeadParams:
    """A whole layer: float weights (rows, F) in logits per real feature unit, biases
    (rows,) in logits.

    per_class: one weight scale per row (TFLite's per-channel layers) or one for all.
    model_scales: the model's own weight scale(s); a layer whose largest weights give
    (nearly) those scales uses them exactly, so the model's own layer comes back bit for bit.
    """
    w = np.asarray(weights, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    _check(w, b)
    scales = _scales(w, per_class, model_scales)
    w_q = np.clip(np.round(w / scales[:, None]), -127, 127).astype(np.int8)
    acc_scales = _f32(feature_scale) * scales
    b_q = np.clip(np.round(b / acc_scales), -BIAS_LIMIT, BIAS_LIMIT).astype(np.int32)
    mult, shift = _multipliers(acc_scales / _f32(logit_step), "requantization")
    return HeadParams(w_q, b_q, mult, shift, float(logit_step), w.shape[1])


def quantize_residual(weights: NDArray[np.float64], bias: NDArray[np.float64],
                      feature_scale: float, columns: NDArray[np.int64],
                      n_features: int) -> HeadParams:
    """A residual: float weight changes (rows, k) on the features `columns`, bias changes
    (rows,), both in logits; one int8 scale per row."""
    w = np.asarray(weights, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    _check(w, b)
    cols = np.asarray(columns, dtype=np.int64)
    if cols.shape != (w.shape[1],) or np.any(np.diff(cols) <= 0) or (
            cols.size and (cols[0] < 0 or cols[-1] >= n_features)):
        raise TinyfixError("residual columns must be increasing feature indices")
    scales = _scales(w, True, None)
    w_q = np.clip(np.round(w / scales[:, None]), -127, 127).astype(np.int8)
    acc_scales = _f32(feature_scale) * scales
    b_q = np.clip(np.round(b / acc_scales), -BIAS_LIMIT, BIAS_LIMIT).astype(np.int32)
    # tinyfix_mul_q31(acc, m, s) = acc * m * 2^(s - 31): the accumulator as a Q16.16 logit.
    mult, shift = _multipliers(acc_scales * Q16, "residual scale")
    return HeadParams(w_q, b_q, mult, shift, math.nan, int(n_features), cols)
