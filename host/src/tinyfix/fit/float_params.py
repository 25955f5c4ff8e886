# SPDX-License-Identifier: Apache-2.0
"""A parameter set in real units, as the fit works on it before quantization."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from tinyfix.fit.head_params import HeadParams


@dataclass(frozen=True)
class VoteSettings:
    window_ms: int = 1000
    min_count: int = 3
    threshold: int = 200  # score8: probability * 256 the window average must exceed
    suppression_ms: int = 1500
    mode: str = "average"  # or "majority"
    source: str = "corrected"  # or "raw" (int8 output + 128, as RecognizeCommands)


@dataclass(frozen=True)
class AnomalySettings:
    class_index: int
    alpha: float = 3.0
    window: int = 64
    warmup: int = 8
    mode: str = "high"  # "low", "both"
    learn_anomalies: bool = False
    # A floor under alpha * sigma (score units) and, for autoencoders, the score's scale
    # (reconstruction MSE in squared input steps / 2^score_shift).
    min_dev: float = 0.0
    score_shift: int = 0
    # The baseline a reset starts the window from (0 sigma: an empty window, warm-up).
    seed_mean: float = 0.0
    seed_sigma: float = 0.0
    # Frames further than guard sigmas from the mean are not learned (0: off).
    guard: float = 0.0
    # Learn nothing: a fixed threshold at seed_mean + max(alpha * seed_sigma, min_dev).
    frozen: bool = False


@dataclass(frozen=True)
class InputSettings:
    """Input correction before the model: x' = (x - offset) * gain per channel, in sensor
    units (offset) and as a factor (gain)."""

    offset: NDArray[np.float64]
    gain: NDArray[np.float64]


@dataclass(frozen=True)
class FloatParams:
    """logit_c = z_c * inv_temperature * class_scale[c] + class_bias[c], where z is the
    dequantized output (its log for probability outputs), or with a head the dequantized
    output of the re-fitted last layer (already int8: it is quantized when fitted)."""

    n_classes: int
    output_kind: str = "logits"
    inv_temperature: float = 1.0
    class_scale: NDArray[np.float64] = field(default_factory=lambda: np.ones(0))
    class_bias: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    # Q15-exact confidence thresholds in [0, 1]; None keeps the threshold stage off.
    class_threshold: NDArray[np.float64] | None = None
    background: tuple[int, ...] = ()
    vote: VoteSettings | None = None
    anomaly: AnomalySettings | None = None
    head: HeadParams | None = None
    input: InputSettings | None = None

    @classmethod
    def identity(cls, n_classes: int, output_kind: str = "logits",
                 background: tuple[int, ...] = ()) -> FloatParams:
        return cls(n_classes, output_kind, 1.0, np.ones(n_classes), np.zeros(n_classes),
                   background=tuple(background))

    def replace(self, **changes: object) -> FloatParams:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def effective_scale(self) -> NDArray[np.float64]:
        return self.inv_temperature * self.class_scale

    def logits(self, z: NDArray[np.float64]) -> NDArray[np.float64]:
        """The float model the fit optimises (the product path is the C core)."""
        return z * self.effective_scale + self.class_bias
