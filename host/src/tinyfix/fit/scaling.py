# SPDX-License-Identifier: Apache-2.0
"""Stage 1 fits: temperature scaling (one factor), bias (per-class offsets with the
temperature re-fitted jointly), bias only, and vector scaling (per-class factor and offset),
each fitted from the current parameters on, to labels or soft targets (fit.targets)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tinyfix.fit.float_params import FloatParams
from tinyfix.fit.nll import fit_affine

INV_TEMPERATURE_LIMITS = (1.0 / 256, 64.0)
CLASS_SCALE_LIMIT = 64.0
CLASS_BIAS_LIMIT = 1024.0

# Least calibration samples (fit split) per fitted parameter; below it a stage is skipped.
SAMPLES_PER_PARAMETER = 10
MIN_TEMPERATURE_SAMPLES = 30


def min_samples(stage: str, n_classes: int) -> int:
    per_class = {"temperature": 0, "bias": 1, "bias_only": 1, "vector": 2}[stage]
    return max(MIN_TEMPERATURE_SAMPLES, SAMPLES_PER_PARAMETER * per_class * n_classes)


def _offset_bounds(fp: FloatParams) -> list[tuple[float, float]]:
    return [(-CLASS_BIAS_LIMIT - b, CLASS_BIAS_LIMIT - b) for b in fp.class_bias]


def fit_temperature(z: NDArray[np.float64], y: NDArray, fp: FloatParams,
                    l2: float) -> FloatParams:
    lo, hi = INV_TEMPERATURE_LIMITS
    fit = fit_affine(z, y, fp.effective_scale, fp.class_bias, scale="shared", bias=False,
                     l2=l2, factor_bounds=[(lo / fp.inv_temperature, hi / fp.inv_temperature)],
                     offset_bounds=[])
    return fp.replace(inv_temperature=float(fp.inv_temperature * fit.factor[0]))


def fit_bias_only(z: NDArray[np.float64], y: NDArray, fp: FloatParams,
                  l2: float) -> FloatParams:
    """Per-class offsets alone, the temperature left as it is."""
    fit = fit_affine(z, y, fp.effective_scale, fp.class_bias, scale="none", bias=True, l2=l2,
                     factor_bounds=[], offset_bounds=_offset_bounds(fp))
    return fp.replace(class_bias=fp.class_bias + fit.offset - np.mean(fit.offset))


def fit_bias(z: NDArray[np.float64], y: NDArray, fp: FloatParams,
             l2: float) -> FloatParams:
    """Per-class offsets with the temperature re-fitted jointly (bias-corrected temperature
    scaling, Alexandari et al., 2020): offsets change how sharp the best softmax is."""
    lo, hi = INV_TEMPERATURE_LIMITS
    fit = fit_affine(z, y, fp.effective_scale, fp.class_bias, scale="shared", bias=True,
                     l2=l2, factor_bounds=[(lo / fp.inv_temperature, hi / fp.inv_temperature)],
                     offset_bounds=_offset_bounds(fp))
    return fp.replace(inv_temperature=float(fp.inv_temperature * fit.factor[0]),
                      class_bias=fp.class_bias + fit.offset - np.mean(fit.offset))


def fit_vector(z: NDArray[np.float64], y: NDArray, fp: FloatParams,
               l2: float) -> FloatParams:
    limit = CLASS_SCALE_LIMIT
    factor_bounds = [(0.0, limit / s if s > 0 else 1.0) for s in fp.class_scale]
    fit = fit_affine(z, y, fp.effective_scale, fp.class_bias, scale="per_class", bias=True,
                     l2=l2, factor_bounds=factor_bounds, offset_bounds=_offset_bounds(fp))
    return fp.replace(class_scale=fp.class_scale * fit.factor,
                      class_bias=fp.class_bias + fit.offset - np.mean(fit.offset))
