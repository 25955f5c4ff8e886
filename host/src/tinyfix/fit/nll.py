# SPDX-License-Identifier: Apache-2.0
"""Regularised multinomial negative log-likelihood of logit = z * a + b, minimised with
L-BFGS-B (scipy) under the parameter ranges of the core's formats.

The parameters are relative to a starting point (a0, b0): per-class (or shared) factors m on
the scale, a = a0 * m, and offsets d on the bias, b = b0 + d. The penalty
l2 / N * (|m - 1|^2 + |d|^2) pulls toward "no change", so a small data set moves little.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import log_softmax

from tinyfix.errors import TinyfixError
from tinyfix.fit.targets import target_matrix


def mean_nll(logits: NDArray[np.float64], y: NDArray) -> float:
    """Mean cross-entropy of labels (N,) or soft targets (N, C) with softmax(logits)."""
    targets = target_matrix(y, logits.shape[1])
    return float(-np.mean(np.sum(targets * log_softmax(logits, axis=1), axis=1)))


@dataclass(frozen=True)
class AffineFit:
    factor: NDArray[np.float64]  # multiplies a0 (length 1 if shared, else C)
    offset: NDArray[np.float64]  # added to b0 (zeros if biases were not fitted)
    nll: float
    converged: bool


def fit_affine(z: NDArray[np.float64], y: NDArray, a0: NDArray[np.float64],
               b0: NDArray[np.float64], *, scale: str, bias: bool, l2: float,
               factor_bounds: list[tuple[float, float]],
               offset_bounds: list[tuple[float, float]]) -> AffineFit:
    """scale: "none" (factor 1), "shared" (one factor: temperature) or "per_class"; y:
    labels (N,) or soft targets (N, C) (fit.targets)."""
    n, c = z.shape
    if n == 0:
        raise TinyfixError("no samples to fit on")
    n_factor = {"none": 0, "shared": 1, "per_class": c}[scale]
    n_offset = c if bias else 0
    onehot = target_matrix(y, c)
    weight = l2 / n

    def unpack(theta: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        factor = theta[:n_factor] if n_factor else np.ones(1)
        offset = theta[n_factor:] if n_offset else np.zeros(c)
        return factor, offset

    def objective(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        factor, offset = unpack(theta)
        a = a0 * factor
        logits = z * a + b0 + offset
        logp = log_softmax(logits, axis=1)
        loss = -np.sum(logp * onehot) / n
        residual = (np.exp(logp) - onehot) / n  # d loss / d logits
        grads = []
        if n_factor == 1:
            grads.append(np.array([np.sum(residual * z * a0)]))
        elif n_factor:
            grads.append(np.sum(residual * z, axis=0) * a0)
        if n_offset:
            grads.append(residual.sum(axis=0))
        loss += weight * (np.sum((factor - 1.0) ** 2) if n_factor else 0.0)
        loss += weight * np.sum(offset ** 2) if n_offset else 0.0
        grad = np.concatenate(grads) if grads else np.zeros(0)
        if n_factor:
            grad[:n_factor] += 2 * weight * (factor - 1.0)
        if n_offset:
            grad[n_factor:] += 2 * weight * offset
        return float(loss), grad

    theta0 = np.concatenate([np.ones(n_factor), np.zeros(n_offset)])
    bounds = factor_bounds[:n_factor] + (offset_bounds if n_offset else [])
    theta0 = np.clip(theta0, [b[0] for b in bounds], [b[1] for b in bounds])
    result = minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"maxiter": 500})
    factor, offset = unpack(result.x)
    return AffineFit(factor.copy(), offset.copy(),
                     mean_nll(z * (a0 * factor) + b0 + offset, y), bool(result.success))
