# SPDX-License-Identifier: Apache-2.0
"""What a fit is fitted to: class labels (N,), or soft targets (N, classes) whose rows are
probabilities, such as a float reference model's softmax (fit.reference).

Every loss in the fit is the cross-entropy of the targets with the model's corrected
probabilities. With one-hot rows that is the usual NLL; with a teacher's probabilities it
differs from the KL divergence to the teacher only by the teacher's entropy, a constant,
so the same fitters match the teacher's probabilities (knowledge distillation's soft
targets). Scores report the KL divergence, which is the NLL for labels.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tinyfix.errors import TinyfixError

# Rows of soft targets must sum to 1 within this.
SUM_TOLERANCE = 1e-3


def is_soft(y: NDArray) -> bool:
    return np.ndim(y) == 2


def target_matrix(y: NDArray, n_classes: int) -> NDArray[np.float64]:
    """(N, n_classes) probabilities: one-hot rows for labels, soft targets as given."""
    arr = np.asarray(y)
    if arr.ndim == 2:
        if arr.shape[1] != n_classes:
            raise TinyfixError(f"soft targets have {arr.shape[1]} classes, the model "
                               f"{n_classes}")
        soft = arr.astype(np.float64)
        if (not np.all(np.isfinite(soft)) or np.any(soft < 0)
                or np.any(np.abs(soft.sum(axis=1) - 1.0) > SUM_TOLERANCE)):
            raise TinyfixError("soft targets must be finite, non-negative and sum to 1 per row")
        return soft
    labels = arr.astype(np.int64)
    onehot = np.zeros((labels.size, n_classes))
    onehot[np.arange(labels.size), labels] = 1.0
    return onehot


def hard_labels(y: NDArray) -> NDArray[np.int64]:
    """The labels, or each soft row's most likely class."""
    arr = np.asarray(y)
    if arr.ndim == 2:
        return np.argmax(arr, axis=1).astype(np.int64)
    return arr.astype(np.int64)


def class_mass(y: NDArray, n_classes: int) -> NDArray[np.float64]:
    """Samples per class: label counts, or the soft targets' column sums."""
    if is_soft(y):
        return target_matrix(y, n_classes).sum(axis=0)
    return np.bincount(hard_labels(y), minlength=n_classes).astype(np.float64)


def kl_divergence(targets: NDArray[np.float64], log_prob: NDArray[np.float64]) -> float:
    """Mean KL(targets || prob) from log-probabilities (N, C): the NLL for one-hot rows."""
    t = np.asarray(targets, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        own = np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0)
    return float(np.mean(np.sum(own - t * log_prob, axis=1)))
