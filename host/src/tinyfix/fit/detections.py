# SPDX-License-Identifier: Apache-2.0
"""Detections a parameter set makes on a stream, from the C core's per-frame results."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tinyfix import metrics
from tinyfix.core import Core, ModelInfo, Params
from tinyfix.fit.quantize import STAGE
from tinyfix.fit.through_core import CoreRun, run_frames


def detections_from_run(run: CoreRun, t_ms: NDArray[np.int64], vote_on: bool,
                        background: tuple[int, ...]
                        ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    if vote_on:
        return t_ms[run.vote_event], run.vote_class[run.vote_event]
    return metrics.transition_detections(run.decision, t_ms, background)


def detections_of(core: Core, model: ModelInfo, params: Params, raw: NDArray,
                  t_ms: NDArray, background: tuple[int, ...],
                  features: NDArray | None = None
                  ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Vote events with the vote stage on, else each change of the decision to a
    non-background class (what "before" means for a raw model)."""
    t = np.asarray(t_ms, dtype=np.int64)
    run = run_frames(core, model, params, raw, t, features)
    return detections_from_run(run, t, bool(params.c.flags & STAGE["vote"]), background)
