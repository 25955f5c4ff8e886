# SPDX-License-Identifier: Apache-2.0
"""Stage 5: alpha of the adaptive threshold (windowed mean +/- alpha * sigma of one
corrected logit) for a target false-alarm rate.

Every candidate alpha runs through the C core over the earlier part of the calibration
stream; the smallest alpha (the most sensitive detector) that keeps false alarms within the
target is chosen, and kept over the default alpha = 3 only if it does at least as well on
the later part: within the target where the default is not, or a higher detection rate (or
fewer false alarms) where both are.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from tinyfix import metrics
from tinyfix.core import Core, ModelInfo
from tinyfix.errors import TinyfixError
from tinyfix.fit.domain import check_raw, detect_output_kind
from tinyfix.fit.float_params import AnomalySettings, FloatParams
from tinyfix.fit.options import FitOptions
from tinyfix.fit.quantize import quantize
from tinyfix.fit.result import FitResult, StageDecision
from tinyfix.fit.through_core import run_frames

ALPHAS = tuple(np.arange(1.0, 12.01, 0.25).tolist())  # exact in Q8.8
DEFAULT_ALPHA = 3.0
MIN_FRAMES = 200


def _scores(core: Core, model: ModelInfo, fp: FloatParams, raw: NDArray, t: NDArray,
            truth: NDArray | None, options: FitOptions) -> dict[str, float]:
    params, _ = quantize(core, model, fp, options.device)
    run = run_frames(core, model, params, raw, t)
    return metrics.alarm_metrics(run.anomaly, t, truth)


def _key(s: dict[str, float], target: float) -> tuple[float, float, float]:
    fa = s["false_alarms_per_hour"]
    detection = s.get("detection_rate", 0.0)
    return (max(0.0, fa - target), -(0.0 if np.isnan(detection) else detection), fa)


def fit_anomaly(raw_outputs: NDArray, t_ms: NDArray, model: ModelInfo, class_index: int,
                anomalous: NDArray | None = None, *, window: int = 64, warmup: int = 16,
                mode: str = "high", options: FitOptions | None = None,
                core: Core | None = None) -> FitResult:
    """Fit alpha on a stream of raw outputs (T, C) at t_ms (T,); `anomalous` (T,) marks
    the frames that truly are anomalies (None: all normal)."""
    options = options or FitOptions()
    core = core or Core(options.core_variant)
    raw = check_raw(raw_outputs, model)
    t = np.asarray(t_ms, dtype=np.int64)
    truth = None if anomalous is None else np.asarray(anomalous, dtype=bool)
    if t.shape != (raw.shape[0],) or (truth is not None and truth.shape != t.shape):
        raise TinyfixError("raw outputs, t_ms and anomaly labels differ in length")
    if not 0 <= class_index < model.n_classes:
        raise TinyfixError(f"anomaly class index {class_index} not in [0, {model.n_classes})")
    kind = options.output_kind or detect_output_kind(raw, model)
    window = min(window, options.device.max_anomaly_window)
    settings = AnomalySettings(class_index, DEFAULT_ALPHA, window, min(warmup, window), mode)
    state = FloatParams.identity(model.n_classes, kind).replace(anomaly=settings)
    cut = round(raw.shape[0] * (1.0 - options.heldout_fraction))
    n_fit, n_held = cut, raw.shape[0] - cut
    if min(n_fit, n_held) < MIN_FRAMES:
        decision = StageDecision("anomaly", False,
                                 f"too few samples: {min(n_fit, n_held)} < {MIN_FRAMES} "
                                 f"frames; default alpha {DEFAULT_ALPHA}")
    else:
        target = options.target_false_alarms_per_hour
        fit_truth = None if truth is None else truth[:cut]
        held_truth = None if truth is None else truth[cut:]
        by_alpha = {a: _scores(core, model, state.replace(anomaly=replace(settings, alpha=a)),
                               raw[:cut], t[:cut], fit_truth, options) for a in ALPHAS}
        alpha = min(ALPHAS, key=lambda a: (_key(by_alpha[a], target), a))
        candidate = state.replace(anomaly=replace(settings, alpha=alpha))
        before = _scores(core, model, state, raw[cut:], t[cut:], held_truth, options)
        after = _scores(core, model, candidate, raw[cut:], t[cut:], held_truth, options)
        text = (f"alpha {DEFAULT_ALPHA:g} -> {alpha:g}: held-out "
                + ", ".join(f"{k} {before[k]:.3g} -> {after[k]:.3g}" for k in after))
        kept = _key(after, target) <= _key(before, target)
        decision = StageDecision("anomaly", kept, text if kept else f"no gain: {text}",
                                 before, after)
        if kept:
            state = candidate
    params, clips = quantize(core, model, state, options.device)
    return FitResult("anomaly", core, model, params, state, [decision], clips, n_fit, n_held)
