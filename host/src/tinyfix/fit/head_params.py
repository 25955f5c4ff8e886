# SPDX-License-Identifier: Apache-2.0
"""The int8 last layer the core's head stage runs, and how a float layer becomes one.

A float layer maps the real feature vector x = feature_scale * (f - feature_zero_point) to
logits W x + b. It is quantized as TFLite quantizes a FULLY_CONNECTED: symmetric int8
weights with weight_scale = max|W| / 127 (over the whole layer, or per class for a
per-channel layer), int32 biases in units of feature_scale * weight_scale, and the output
requantized by feature_scale * weight_scale / logit_step (TFLM's QuantizeMultiplier, one
multiplier and shift per class) into the model output's zero point. Dequantized with the
model output's scale, one output step is output_scale; the scale stage multiplies by
logit_step / output_scale (1 for a logits model) to get back to logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tinyfix.errors import TinyfixError
from tinyfix.twin.model import quantize_multiplier

BIAS_LIMIT = 1 << 30  # the core's documented range of head.bias
# A weight scale within this relative distance of the model's own is the model's own: the
# same layer then quantizes to the same integers (bit-exact with TFLM).
SAME_SCALE = 1e-6


@dataclass(frozen=True)
class HeadParams:
    """What goes into struct tinyfix_head_params, plus the real value of one output step."""

    weights: NDArray[np.int8]  # (classes, features)
    bias: NDArray[np.int32]  # (classes,)
    multiplier: NDArray[np.int64]  # (classes,)
    shift: NDArray[np.int64]  # (classes,)
    logit_step: float
    trained_features: int  # features whose weights differ from the model's (all: full head)

    @property
    def n_classes(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.weights.shape[1])

    @property
    def flash_bytes(self) -> int:
        """int8 weights, int32 biases, multipliers and shifts, as the parameter set holds
        them."""
        return self.n_classes * (self.n_features + 12)

    @property
    def residual_bytes(self) -> int:
        """What a store of only the re-fitted columns would need beside the model's own
        layer: their int8 weights, a one-byte index each, and the per-class integers."""
        k = self.trained_features
        index = k if k < self.n_features else 0
        return self.n_classes * (k + 12) + index


def _f32(x: float) -> float:
    return float(np.float32(x))


def _scales(w: NDArray[np.float64], per_class: bool,
            model_scales: tuple[float, ...] | None) -> NDArray[np.float64]:
    largest = np.max(np.abs(w), axis=1) if per_class else np.full(
        w.shape[0], np.max(np.abs(w)) if w.size else 0.0)
    scales = np.where(largest > 0, largest / 127.0, 1.0 / 127.0)
    if model_scales is not None:
        own = np.broadcast_to(np.asarray(model_scales, dtype=np.float64), scales.shape)
        same = np.abs(scales / own - 1.0) < SAME_SCALE
        scales = np.where(same, own, scales)
    return scales.astype(np.float32).astype(np.float64)  # TFLite stores scales as float32


def quantize_head(weights: NDArray[np.float64], bias: NDArray[np.float64],
                  feature_scale: float, logit_step: float, *, per_class: bool,
                  model_scales: tuple[float, ...] | None = None,
                  trained_features: int | None = None) -> HeadParams:
    """Float weights (C, F) in logits per real feature unit, biases (C,) in logits.

    per_class: one weight scale per class (TFLite's per-channel layers) or one for all.
    model_scales: the model's own weight scale(s); a layer whose largest weights give
    (nearly) those scales uses them exactly, so the model's own layer comes back bit for bit.
    """
    w = np.asarray(weights, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    if w.ndim != 2 or b.shape != (w.shape[0],):
        raise TinyfixError(f"head weights {w.shape} and bias {b.shape} do not match")
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
        raise TinyfixError("the head fit produced a non-finite weight or bias")
    scales = _scales(w, per_class, model_scales)
    w_q = np.clip(np.round(w / scales[:, None]), -127, 127).astype(np.int8)
    acc_scales = _f32(feature_scale) * scales
    b_q = np.clip(np.round(b / acc_scales), -BIAS_LIMIT, BIAS_LIMIT).astype(np.int32)
    quant = [quantize_multiplier(float(s) / _f32(logit_step)) for s in acc_scales]
    if any(m < 1 << 30 or not -31 <= sh <= 30 for m, sh in quant):
        raise TinyfixError("the head's requantization is out of the core's range "
                           f"(feature scale x weight scale / logit step "
                           f"{float(acc_scales.max()) / logit_step:.3g})")
    n_trained = w.shape[1] if trained_features is None else int(trained_features)
    return HeadParams(w_q, b_q, np.array([m for m, _ in quant], dtype=np.int64),
                      np.array([sh for _, sh in quant], dtype=np.int64), float(logit_step),
                      n_trained)
