# SPDX-License-Identifier: Apache-2.0
"""Float parameters to the core's integer formats (tinyfix.h), clipped to the documented
ranges with a note for every clipped value, then sealed into a core Params."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyfix.core import Core, ModelInfo, Params
from tinyfix.errors import TinyfixError
from tinyfix.fit.float_params import FloatParams
from tinyfix.fit.options import DeviceLimits

Q16, Q15, Q8 = 65536, 32768, 256
STAGE = {"head": 0x01, "scale": 0x02, "threshold": 0x04, "vote": 0x08, "anomaly": 0x10,
         "input": 0x20, "adapt": 0x40}
OUTPUT_KINDS = {"logits": 0, "probs": 1}
VOTE_MODES = {"average": 0, "majority": 1}
VOTE_SOURCES = {"corrected": 0, "raw": 1}
ANOMALY_MODES = {"high": 0, "low": 1, "both": 2}
CLASS_BACKGROUND = 0x01

# (lowest, highest) integer of each format as tinyfix.h documents it.
INV_TEMPERATURE_RANGE = (256, 64 * Q16)
CLASS_SCALE_RANGE = (0, 64 * Q16)
CLASS_BIAS_RANGE = (-1024 * Q16, 1024 * Q16)
THRESHOLD_RANGE = (0, Q15)
ALPHA_RANGE = (1, 65535)
MIN_DEV_RANGE = (0, 128 * Q16)
SCORE_SHIFT_RANGE = (0, 30)
SEED_MEAN_RANGE = (-128 * Q16, 128 * Q16)
SEED_SIGMA_RANGE = (0, 64 * Q16)
VOTE_WINDOW_RANGE = (0, 600_000)
SUPPRESSION_RANGE = (0, 3_600_000)
SCORE8_RANGE = (0, 255)
INPUT_OFFSET_RANGE = (-(1 << 30), 1 << 30)
INPUT_GAIN_RANGE = (1, 64 * Q16)


@dataclass(frozen=True)
class Clip:
    """A value the fit found outside its format's range, and what it became."""

    field: str
    value: float
    stored: float

    def __str__(self) -> str:
        return f"{self.field}: {self.value:.6g} clipped to {self.stored:.6g}"


def to_fixed(value: float, one: int, lo: int, hi: int, name: str, clips: list[Clip]) -> int:
    """round(value * one) half away from zero, clipped to [lo, hi]; NaN and inf refused."""
    value = float(value)
    if not math.isfinite(value):
        raise TinyfixError(f"{name}: the fit produced {value}, not a finite number")
    scaled = value * one  # a huge finite value may overflow to inf: it is clipped
    q = lo - 1 if scaled < lo - 1 else hi + 1 if scaled > hi + 1 else int(
        math.copysign(math.floor(abs(scaled) + 0.5), scaled))
    if q < lo or q > hi:
        stored = lo if q < lo else hi
        clips.append(Clip(name, value, stored / one))
        return stored
    return q


def _int_in(value: int, lo: int, hi: int, name: str, clips: list[Clip]) -> int:
    return to_fixed(value, 1, lo, hi, name, clips)


def quantize(core: Core, model: ModelInfo, fp: FloatParams,
             limits: DeviceLimits | None = None) -> tuple[Params, list[Clip]]:
    """A sealed Params from float parameters: identity, then every field the fit sets."""
    limits = limits or DeviceLimits()
    if fp.n_classes != model.n_classes:
        raise TinyfixError(f"parameters for {fp.n_classes} classes, model has "
                           f"{model.n_classes}")
    clips: list[Clip] = []
    p = Params.identity(core, model)
    c = p.c
    flags = STAGE["scale"]
    c.output_kind = OUTPUT_KINDS[fp.output_kind]
    c.inv_temperature = to_fixed(fp.inv_temperature, Q16, *INV_TEMPERATURE_RANGE,
                                 "inv_temperature", clips)
    for k in range(fp.n_classes):
        c.class_scale[k] = to_fixed(fp.class_scale[k], Q16, *CLASS_SCALE_RANGE,
                                    f"class_scale[{k}]", clips)
        c.class_bias[k] = to_fixed(fp.class_bias[k], Q16, *CLASS_BIAS_RANGE,
                                   f"class_bias[{k}]", clips)
        c.class_flags[k] = CLASS_BACKGROUND if k in fp.background else 0
    if fp.class_threshold is not None:
        flags |= STAGE["threshold"]
        for k in range(fp.n_classes):
            c.class_threshold[k] = to_fixed(fp.class_threshold[k], Q15, *THRESHOLD_RANGE,
                                            f"class_threshold[{k}]", clips)
    c.vote.min_count = min(int(c.vote.min_count), limits.max_vote_frames)
    if fp.vote is not None:
        v = fp.vote
        flags |= STAGE["vote"]
        c.vote.mode = VOTE_MODES[v.mode]
        c.vote.source = VOTE_SOURCES[v.source]
        c.vote.threshold = _int_in(v.threshold, *SCORE8_RANGE, "vote.threshold", clips)
        c.vote.min_count = _int_in(v.min_count, 1, limits.max_vote_frames, "vote.min_count",
                                   clips)
        c.vote.window_ms = _int_in(v.window_ms, *VOTE_WINDOW_RANGE, "vote.window_ms", clips)
        c.vote.suppression_ms = _int_in(v.suppression_ms, *SUPPRESSION_RANGE,
                                        "vote.suppression_ms", clips)
    # The host core's identity window is its own (larger) capacity; fit the device's.
    window = min(int(c.anomaly.window), limits.max_anomaly_window)
    c.anomaly.window = window
    c.anomaly.warmup = min(int(c.anomaly.warmup), window)
    if fp.anomaly is not None:
        a = fp.anomaly
        flags |= STAGE["anomaly"]
        c.anomaly.mode = ANOMALY_MODES[a.mode]
        c.anomaly.options = (1 if a.learn_anomalies else 0) | (2 if a.frozen else 0)
        c.anomaly.class_index = _int_in(a.class_index, 0, fp.n_classes - 1,
                                        "anomaly.class_index", clips)
        c.anomaly.window = _int_in(a.window, 2, limits.max_anomaly_window, "anomaly.window",
                                   clips)
        c.anomaly.warmup = _int_in(a.warmup, 2, int(c.anomaly.window), "anomaly.warmup",
                                   clips)
        c.anomaly.alpha_q8 = to_fixed(a.alpha, Q8, *ALPHA_RANGE, "anomaly.alpha", clips)
        c.anomaly.min_dev = to_fixed(a.min_dev, Q16, *MIN_DEV_RANGE, "anomaly.min_dev", clips)
        c.anomaly.score_shift = _int_in(a.score_shift, *SCORE_SHIFT_RANGE,
                                        "anomaly.score_shift", clips)
        c.anomaly.seed_mean = to_fixed(a.seed_mean, Q16, *SEED_MEAN_RANGE,
                                       "anomaly.seed_mean", clips)
        c.anomaly.seed_sigma = to_fixed(a.seed_sigma, Q16, *SEED_SIGMA_RANGE,
                                        "anomaly.seed_sigma", clips)
        c.anomaly.guard_q8 = to_fixed(a.guard, Q8, 0, 65535, "anomaly.guard", clips)
    if fp.head is not None:
        flags |= STAGE["head"]
        _put_head(c, fp, model, core)
    if fp.input is not None:
        flags |= STAGE["input"]
        _put_input(c, fp, model, clips)
    c.flags = flags
    p.seal()
    err = p.validate(model)
    if err:
        raise TinyfixError(f"internal: quantized parameters refused by the core ({err})")
    return p, clips


def _put_head(c: Any, fp: FloatParams, model: ModelInfo, core: Core) -> None:
    head = fp.head
    assert head is not None
    if head.n_rows != model.head_rows or head.n_features != model.n_features:
        raise TinyfixError(f"a head of {head.n_rows} x {head.n_features} for a model with "
                           f"{model.head_rows} outputs and {model.n_features} features")
    if not head.is_residual and fp.output_kind != "logits":
        raise TinyfixError("a whole-layer head outputs logits: its parameter set's output "
                           "kind must be 'logits'")
    c.n_features = head.n_features
    c.head_rows = head.n_rows
    c.head_columns = head.n_columns if head.is_residual else 0
    for k in range(head.n_rows):
        c.head.multiplier[k] = int(head.multiplier[k])
        c.head.shift[k] = int(head.shift[k])
        c.head.bias[k] = int(head.bias[k])
    if head.is_residual:
        for k, bits in enumerate(head.column_bitmap):
            c.head.columns[k] = bits
    # One bulk copy: a large layer has thousands of weights.
    weights = np.ascontiguousarray(head.weights, dtype=np.int8).reshape(-1)
    core.ffi.memmove(c.head.weights, weights.tobytes(), weights.size)


def _put_input(c: Any, fp: FloatParams, model: ModelInfo, clips: list[Clip]) -> None:
    settings = fp.input
    assert settings is not None
    n = model.n_channels
    if n == 0 or len(settings.offset) != n or len(settings.gain) != n:
        raise TinyfixError(f"input correction for {len(settings.offset)} channels, the model "
                           f"takes {n}")
    for k in range(n):
        c.input.offset[k] = to_fixed(settings.offset[k], Q16, *INPUT_OFFSET_RANGE,
                                     f"input.offset[{k}]", clips)
        c.input.gain[k] = to_fixed(settings.gain[k], Q16, *INPUT_GAIN_RANGE,
                                   f"input.gain[{k}]", clips)


def dequantized(p: Params) -> dict[str, object]:
    """Real values of the fields the fit sets, read back from the integers."""
    c, n = p.c, int(p.c.n_classes)
    return {
        "inv_temperature": c.inv_temperature / Q16,
        "class_scale": np.array(list(c.class_scale[0:n])) / Q16,
        "class_bias": np.array(list(c.class_bias[0:n])) / Q16,
        "class_threshold": np.array(list(c.class_threshold[0:n])) / Q15,
    }
