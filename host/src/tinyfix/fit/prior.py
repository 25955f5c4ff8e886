# SPDX-License-Identifier: Apache-2.0
"""Label-shift correction: add log(target prior / model prior) to the class biases.

The target priors are the calibration labels' class frequencies (smoothed by one sample per
class, so a class absent from a small set is not ruled out). The model's priors are the
training mix when the user knows it (FitOptions.source_priors); otherwise the mix the
model implies on the calibration inputs, found as the offsets that make its mean corrected
posterior equal the target priors (the fixed point of Saerens et al.'s EM, run with known
target priors). Only class counts are used, not which sample has which label, so it needs
far fewer samples than a per-sample fit.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.special import softmax

from tinyfix.errors import TinyfixError
from tinyfix.fit.float_params import FloatParams
from tinyfix.fit.targets import class_mass

SMOOTHING = 1.0
MIN_SAMPLES_PER_CLASS = 5
ITERATIONS = 200


def target_priors(y: NDArray, n_classes: int) -> NDArray[np.float64]:
    counts = class_mass(y, n_classes)
    return (counts + SMOOTHING) / (counts.sum() + SMOOTHING * n_classes)


def implied_shift(logits: NDArray[np.float64], priors: NDArray[np.float64]
                  ) -> NDArray[np.float64]:
    """Offsets d with mean(softmax(logits + d)) == priors."""
    d = np.zeros(priors.size)
    for _ in range(ITERATIONS):
        mean = softmax(logits + d, axis=1).mean(axis=0)
        step = np.log(priors) - np.log(np.maximum(mean, 1e-300))
        d += step
        if np.max(np.abs(step)) < 1e-7:
            break
    return d


def fit_prior_shift(z: NDArray[np.float64], y: NDArray, fp: FloatParams,
                    source_priors: tuple[float, ...] | None = None) -> FloatParams:
    priors = target_priors(y, fp.n_classes)
    if source_priors is not None:
        source = np.asarray(source_priors, dtype=float)
        if source.size != fp.n_classes or np.any(source <= 0) or not np.all(np.isfinite(source)):
            raise TinyfixError(f"source priors need {fp.n_classes} positive numbers")
        shift = np.log(priors) - np.log(source / source.sum())
    else:
        shift = implied_shift(fp.logits(z), priors)
    return fp.replace(class_bias=fp.class_bias + shift - np.mean(shift))
