# SPDX-License-Identifier: Apache-2.0
"""Stage 3: per-class confidence thresholds for a target precision.

For each class, among the fit-split samples the current parameters put on top as that
class (confidences from the C core, in Q15), the lowest threshold whose kept samples reach
the target precision. Precision is smoothed, (right + 1) / (kept + 2), so that two lucky
samples do not set a threshold; a class that cannot reach the target gets the threshold of
its best smoothed precision, and a class with too few samples keeps 0 (no threshold).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tinyfix.fit.through_core import Q15, CoreRun

MIN_CLASS_SUPPORT = 5


@dataclass(frozen=True)
class ThresholdFit:
    threshold_q15: NDArray[np.int64]
    notes: tuple[str, ...]


def _class_threshold(conf: NDArray[np.int64], right: NDArray[np.bool_], target: float
                     ) -> tuple[int, float]:
    order = np.argsort(-conf, kind="stable")
    conf, right = conf[order], right[order]
    kept = np.arange(1, conf.size + 1)
    smoothed = (np.cumsum(right) + 1) / (kept + 2)
    # A threshold can only fall between distinct confidences: use the last of each run.
    last_of_run = np.append(conf[1:] != conf[:-1], True)
    ok = np.flatnonzero(last_of_run & (smoothed >= target))
    k = int(ok[-1]) if ok.size else int(np.flatnonzero(last_of_run)[
        np.argmax(smoothed[last_of_run])])
    if k == conf.size - 1:
        return 0, float(smoothed[k])
    # Midway between the last kept and the first dropped confidence, rounded up.
    return int((conf[k] + conf[k + 1]) // 2 + 1), float(smoothed[k])


def fit_thresholds(run: CoreRun, y: NDArray[np.int64], n_classes: int, target: float
                   ) -> ThresholdFit:
    thresholds = np.zeros(n_classes, dtype=np.int64)
    notes: list[str] = []
    for c in range(n_classes):
        mine = run.top_class == c
        if mine.sum() < MIN_CLASS_SUPPORT:
            notes.append(f"class {c}: too few predictions: {int(mine.sum())} < "
                         f"{MIN_CLASS_SUPPORT}, no threshold")
            continue
        t, precision = _class_threshold(run.top_prob[mine], y[mine] == c, target)
        thresholds[c] = t
        if precision < target:
            notes.append(f"class {c}: best smoothed precision {precision:.2f} < target "
                         f"{target:.2f}, threshold {t / Q15:.3f}")
    return ThresholdFit(thresholds, tuple(notes))
