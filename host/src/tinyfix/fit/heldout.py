# SPDX-License-Identifier: Apache-2.0
"""Scores of a quantized parameter set on labelled frames, computed from what the C core
outputs: the figures every keep-or-drop decision is made on."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tinyfix import metrics
from tinyfix.core import Core, ModelInfo, Params
from tinyfix.fit.targets import hard_labels, kl_divergence, target_matrix
from tinyfix.fit.through_core import Q15, CoreRun, run_frames

# A Q15 probability of 0 means "below half a step"; score it as half a step.
PROB_FLOOR_Q15 = 0.5


def classification_scores(run: CoreRun, y: NDArray, n_classes: int) -> dict[str, float]:
    """Against labels (N,), or soft targets (N, C): then "nll" is the KL divergence to them
    and accuracy, precision and ECE count their most likely class as the label."""
    log_prob = np.log(np.maximum(run.prob[:, :n_classes], PROB_FLOOR_Q15) / Q15)
    labels = hard_labels(y)
    scores = metrics.classification_metrics(labels, run.decision, run.confidence, n_classes)
    scores.update({
        "nll": kl_divergence(target_matrix(y, n_classes), log_prob),
        "precision": metrics.decision_precision(labels, run.decision),
        "coverage": metrics.coverage(run.decision),
    })
    return scores


def score_classification(core: Core, model: ModelInfo, params: Params, raw: NDArray,
                         y: NDArray, features: NDArray | None = None
                         ) -> dict[str, float]:
    run = run_frames(core, model, params, raw, features=features)
    return classification_scores(run, y, model.n_classes)


def describe(scores: dict[str, float], keys: tuple[str, ...]) -> str:
    parts = []
    for key in keys:
        value = scores[key]
        if key in ("accuracy", "precision", "coverage", "false_reject_rate", "macro_f1",
                   "ece", "agreement"):
            parts.append(f"{key} {100 * value:.1f}%")
        elif key == "kl":
            parts.append(f"KL {value:.4f}")
        else:
            parts.append(f"{key} {value:.3f}")
    return ", ".join(parts)


def change(before: dict[str, float], after: dict[str, float], keys: tuple[str, ...]) -> str:
    return f"{describe(before, keys)} -> {describe(after, keys)}"
