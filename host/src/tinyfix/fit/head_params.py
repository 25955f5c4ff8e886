# SPDX-License-Identifier: Apache-2.0
"""The int8 last layer the core's head stage runs, and how a float layer becomes one.

A float layer maps the real feature vector x = feature_scale * (f - feature_zero_point) to
logits W x + b. Quantized as TFLM quantizes a per-tensor FULLY_CONNECTED: symmetric int8
weights with weight_scale = max|W| / 127, int32 bias in units of feature_scale *
weight_scale, and the output requantized by feature_scale * weight_scale / logit_step
(TFLM's QuantizeMultiplier) into the model output's zero point. Dequantized with the model
output's scale, one output step is output_scale; the scale stage multiplies by
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
    multiplier: int
    shift: int
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
        """int8 weights, int32 biases, multiplier and shift, as the parameter set holds them."""
        return self.n_classes * self.n_features + 4 * self.n_classes + 8

    @property
    def residual_bytes(self) -> int:
        """What a store of only the re-fitted columns would need: their int8 weights and a
        one-byte-per-index list (beside the model's own layer, which stays in flash)."""
        k = self.trained_features
        return self.n_classes * k + (k if k < self.n_features else 0) + 4 * self.n_classes + 8


def _f32(x: float) -> float:
    return float(np.float32(x))


def quantize_head(weights: NDArray[np.float64], bias: NDArray[np.float64],
                  feature_scale: float, logit_step: float, *,
                  model_weight_scale: float | None = None,
                  trained_features: int | None = None) -> HeadParams:
    """Float weights (C, F) in logits per real feature unit, biases (C,) in logits.

    model_weight_scale: the model's own per-tensor weight scale; a layer whose largest
    weight gives (nearly) that scale uses it exactly, so the model's own layer comes back
    bit for bit.
    """
    w = np.asarray(weights, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    if w.ndim != 2 or b.shape != (w.shape[0],):
        raise TinyfixError(f"head weights {w.shape} and bias {b.shape} do not match")
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
        raise TinyfixError("the head fit produced a non-finite weight or bias")
    largest = float(np.max(np.abs(w))) if w.size else 0.0
    scale = largest / 127.0 if largest > 0 else 1.0 / 127.0
    if model_weight_scale is not None and abs(scale / model_weight_scale - 1.0) < SAME_SCALE:
        scale = model_weight_scale
    scale = _f32(scale)  # TFLite stores scales as float32
    w_q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    acc_scale = _f32(feature_scale) * scale
    b_q = np.clip(np.round(b / acc_scale), -BIAS_LIMIT, BIAS_LIMIT).astype(np.int32)
    multiplier, shift = quantize_multiplier(acc_scale / _f32(logit_step))
    if multiplier < 1 << 30 or not -31 <= shift <= 30:
        raise TinyfixError(f"the head's requantization {acc_scale / logit_step:.3g} is out "
                           "of the core's range")
    n_trained = w.shape[1] if trained_features is None else int(trained_features)
    return HeadParams(w_q, b_q, multiplier, shift, float(logit_step), n_trained)

