# SPDX-License-Identifier: Apache-2.0
"""New class priors from unlabeled outputs by EM (Saerens, Latinne and Decaestecker, 2002).

Given posteriors p(c | x) that are calibrated for the source class mix pi_s, the priors of
the unlabeled target data are the fixed point of
    w_i(c) = p_i(c) pi(c) / pi_s(c), normalised over c;   pi(c) = mean_i w_i(c).
The posteriors must be calibrated first (Alexandari, Kundaje and Shrikumar, 2020: with
bias-corrected temperature scaling EM beats the alternatives); uncalibrated, overconfident
posteriors make EM overshoot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tinyfix.errors import TinyfixError

MAX_ITERATIONS = 1000
TOLERANCE = 1e-8
FLOOR = 1e-6  # no class prior falls below this (a class seen nowhere may still come)


@dataclass(frozen=True)
class PriorEstimate:
    priors: NDArray[np.float64]
    iterations: int
    converged: bool


def em_priors(probs: NDArray[np.float64], source_priors: NDArray[np.float64]
              ) -> PriorEstimate:
    """Target priors from calibrated posteriors (N, C) under source priors (C,)."""
    p = np.asarray(probs, dtype=np.float64)
    source = np.asarray(source_priors, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != source.size or p.shape[0] == 0:
        raise TinyfixError(f"EM needs posteriors (samples, {source.size}), got {p.shape}")
    if np.any(source <= 0) or not np.all(np.isfinite(p)):
        raise TinyfixError("EM needs positive source priors and finite posteriors")
    source = source / source.sum()
    pi = source.copy()
    for it in range(1, MAX_ITERATIONS + 1):
        w = p * (pi / source)
        w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
        new = np.maximum(w.mean(axis=0), FLOOR)
        new /= new.sum()
        if np.max(np.abs(new - pi)) < TOLERANCE:
            return PriorEstimate(new, it, True)
        pi = new
    return PriorEstimate(pi, MAX_ITERATIONS, False)


def prior_shift(target: NDArray[np.float64], source: NDArray[np.float64]
                ) -> NDArray[np.float64]:
    """Logit offsets that move posteriors from the source to the target class mix:
    log(target / source), centred (softmax does not see a common offset)."""
    shift = np.log(np.asarray(target, dtype=np.float64)) - np.log(
        np.asarray(source, dtype=np.float64) / np.sum(source))
    return shift - shift.mean()
