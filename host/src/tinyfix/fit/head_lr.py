# SPDX-License-Identifier: Apache-2.0
"""A last layer by multinomial logistic regression pulled toward the model's own layer.

Minimises mean NLL(offset + x W^T + b) + lam * (|W - W0|^2 + |b - b0|^2) by Newton-CG
(scipy), from W0, b0. With little data and a large lam the layer stays the model's; lam = inf
returns it unchanged. Only the columns of `trainable` features move (a re-fit on a feature
subset); the others keep the model's weights. A residual is the same fit with W0 = 0, b0 = 0
and the model's own logits as `offset`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import log_softmax

from tinyfix.errors import TinyfixError
from tinyfix.fit.targets import target_matrix

MAX_ITERATIONS = 200


def fit_layer(x: NDArray[np.float64], y: NDArray, w0: NDArray[np.float64],
              b0: NDArray[np.float64], lam: float,
              trainable: NDArray[np.bool_] | None = None,
              offset: NDArray[np.float64] | None = None
              ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Weights (C, F) and biases (C,) for real features x (N, F) and labels y (N,) or soft
    targets (N, C), on top of fixed logits `offset` (N, C) if given."""
    n_classes, n_features = w0.shape
    if x.ndim != 2 or x.shape[1] != n_features or len(y) != x.shape[0]:
        raise TinyfixError(f"features {x.shape} and labels {y.shape} do not fit a layer "
                           f"of {n_classes} x {n_features}")
    if lam < 0 or math.isnan(lam):
        raise TinyfixError(f"regularisation strength must be >= 0, got {lam}")
    if math.isinf(lam) or x.shape[0] == 0:
        return w0.copy(), b0.copy()
    cols = np.ones(n_features, dtype=bool) if trainable is None else np.asarray(trainable)
    x_t, x_fixed = x[:, cols], x[:, ~cols]
    fixed = x_fixed @ w0[:, ~cols].T  # logits from the frozen columns
    if offset is not None:
        fixed = fixed + offset
    w0_t = w0[:, cols]
    onehot = target_matrix(y, n_classes)
    n = x.shape[0]
    n_w = w0_t.size

    def probs(theta: NDArray[np.float64]) -> NDArray[np.float64]:
        w = theta[:n_w].reshape(w0_t.shape)
        return log_softmax(x_t @ w.T + fixed + theta[n_w:], axis=1)

    def objective(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        logp = probs(theta)
        residual = (np.exp(logp) - onehot) / n
        delta = theta - start
        loss = -np.sum(logp * onehot) / n + lam * float(delta @ delta)
        grad_w = residual.T @ x_t
        grad_b = residual.sum(axis=0)
        return float(loss), np.concatenate([grad_w.ravel(), grad_b]) + 2 * lam * delta

    def hessp(theta: NDArray[np.float64], v: NDArray[np.float64]) -> NDArray[np.float64]:
        p = np.exp(probs(theta))
        dz = x_t @ v[:n_w].reshape(w0_t.shape).T + v[n_w:]
        hz = p * dz - p * np.sum(p * dz, axis=1, keepdims=True)
        out = np.concatenate([(hz.T @ x_t).ravel(), hz.sum(axis=0)]) / n
        return out + 2 * lam * v

    start = np.concatenate([w0_t.ravel(), b0])
    # Newton-CG: each step costs a few matrix products in numpy. (L-BFGS-B spends most of
    # its time in threaded BLAS calls on vectors this small.)
    result = minimize(objective, start, jac=True, hessp=hessp, method="Newton-CG",
                      options={"maxiter": MAX_ITERATIONS, "xtol": 1e-8})
    w = w0.copy()
    w[:, cols] = result.x[:n_w].reshape(w0_t.shape)
    return w, result.x[n_w:].copy()


def feature_usefulness(x: NDArray[np.float64], y: NDArray,
                       logits: NDArray[np.float64]) -> NDArray[np.float64]:
    """How much the loss wants each feature's weights to move, at the model's own logits
    (N, C): the norm over classes of d mean NLL / d W[:, f]. A re-fit on the top features
    gains most per stored weight."""
    logp = log_softmax(logits, axis=1)
    onehot = target_matrix(y, logp.shape[1])
    grad = (np.exp(logp) - onehot).T @ x / max(len(y), 1)
    return np.sqrt(np.sum(grad ** 2, axis=0))
