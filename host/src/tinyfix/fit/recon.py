# SPDX-License-Identifier: Apache-2.0
"""Autoencoders as anomaly detectors: the reconstruction error (computed by the C core, as
the device computes it) judged by the adaptive threshold, alpha and its floor fitted for a
target false-alarm rate.

    result = fit_autoencoder(inputs, raw, y, model, FitOptions(target_false_alarm_rate=0.01))
    evaluate_autoencoder(result, inputs_eval, raw_eval, y_eval)   # before / after

Windows are judged in the order given (the adaptive threshold's window runs over them).
"before" is a fixed threshold on the same score at the target's quantile of the normal
calibration windows: what a lab sets without TinyFix. "after" is the core's adaptive
threshold: windowed mean + max(alpha * sigma, floor). Candidates are scored through the C
core on the earlier part of the calibration data; the choice is reported on the later part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tinyfix import metrics
from tinyfix.core import Core, ModelInfo
from tinyfix.errors import TinyfixError
from tinyfix.fit.float_params import AnomalySettings, FloatParams
from tinyfix.fit.options import FitOptions
from tinyfix.fit.quantize import Q16, quantize
from tinyfix.fit.result import Evaluation, FitResult, StageDecision
from tinyfix.fit.through_core import run_recon, run_scores

ALPHAS = (*np.arange(1.5, 12.01, 0.5).tolist(), 16.0, 24.0, 48.0)
FLOOR_QUANTILES = (0.5, 0.75, 0.9, 0.95, 0.98, 0.99, 0.995)
GUARDS = (0.0, 2.0, 3.0)
# Fixed thresholds: the seeded mean plus this many of its sigmas (fine steps: the whole
# detector is this one number).
FIXED_SIGMAS = tuple(np.round(np.arange(1.0, 24.01, 0.125), 3).tolist())
WINDOW, WARMUP = 64, 8
# Scores are scaled by 2^-shift so the calibration windows' 99.9th percentile stays below
# this (the adaptive threshold holds scores within +/-128.0).
SCORE_CEILING = 32.0
MIN_WINDOWS = 60


@dataclass(frozen=True)
class Operating:
    """One detector's figures on labelled windows."""

    false_alarm_rate: float
    detection_rate: float
    accuracy: float

    def as_dict(self) -> dict[str, float]:
        return {"false_alarm_rate": self.false_alarm_rate,
                "detection_rate": self.detection_rate, "accuracy": self.accuracy}


def operating(flags: NDArray[np.bool_], y: NDArray[np.int64],
              decided: NDArray[np.bool_] | None = None) -> Operating:
    """False-alarm rate over normal windows, detection rate over anomalous ones, accuracy
    over all (a window without a decision, in the warm-up, counts as normal)."""
    use = np.ones(y.size, dtype=bool) if decided is None else decided
    normal, anomalous = (y == 0) & use, (y == 1) & use
    fa = float(flags[normal].mean()) if normal.any() else float("nan")
    det = float(flags[anomalous].mean()) if anomalous.any() else float("nan")
    return Operating(fa, det, float(np.mean(flags.astype(np.int64) == y)))


def roc_auc(score: NDArray, y: NDArray[np.int64]) -> float:
    """Area under the ROC curve of `score` for anomaly (y = 1) against normal (Mann-Whitney,
    ties count half); NaN without both kinds."""
    pos, neg = score[y == 1], score[y == 0]
    if not pos.size or not neg.size:
        return float("nan")
    order = np.argsort(np.concatenate([neg, pos]), kind="mergesort")
    ranks = np.empty(order.size)
    values = np.concatenate([neg, pos])[order]
    i = 0
    while i < values.size:  # average ranks over ties
        j = i
        while j + 1 < values.size and values[j + 1] == values[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos_ranks = ranks[neg.size:]
    return float((pos_ranks.sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def score_shift(scores_q16: NDArray[np.int64]) -> int:
    """Smallest shift that keeps the 99.9th percentile of scores (Q16.16 at shift 0)
    below SCORE_CEILING."""
    top = float(np.percentile(scores_q16, 99.9)) / Q16 if scores_q16.size else 0.0
    return int(min(30, max(0, math.ceil(math.log2(max(top, 1e-9) / SCORE_CEILING)))))


@dataclass
class _Split:
    inputs: NDArray
    raw: NDArray
    y: NDArray[np.int64]

    def part(self, index: slice) -> _Split:
        return _Split(self.inputs[index], self.raw[index], self.y[index])


def _state(shift: int, alpha: float, floor: float, window: int,
           seed: tuple[float, float] = (0.0, 0.0), guard: float = 0.0,
           frozen: bool = False) -> FloatParams:
    settings = AnomalySettings(0, alpha, window, min(WARMUP, window), "high",
                               min_dev=floor, score_shift=shift, seed_mean=seed[0],
                               seed_sigma=seed[1], guard=guard, frozen=frozen)
    return FloatParams.identity(2, "logits").replace(anomaly=settings)


def baseline_seed(normal_scores: NDArray[np.float64]) -> tuple[float, float]:
    """(mean, sigma) the window starts from: the normal calibration scores', robustly
    (median and scaled MAD), so a few mislabelled anomalies do not move it."""
    if normal_scores.size < 2:
        return 0.0, 0.0
    median = float(np.median(normal_scores))
    mad = float(np.median(np.abs(normal_scores - median))) * 1.4826
    return min(median, 128.0), min(max(mad, 1.0 / Q16), 64.0)


def _judge(core: Core, model: ModelInfo, fp: FloatParams, d: _Split,
           options: FitOptions) -> tuple[Operating, NDArray[np.int64]]:
    params, _ = quantize(core, model, fp, options.device)
    run = run_recon(core, model, params, d.inputs, d.raw)
    return operating(run.anomaly, d.y), run.score


def _rank(op: Operating, target: float) -> tuple[float, float, float]:
    """Within the target first, then the most detections, then the fewest false alarms."""
    det = 0.0 if math.isnan(op.detection_rate) else op.detection_rate
    return (max(0.0, op.false_alarm_rate - target), -det, op.false_alarm_rate)


def fit_autoencoder(inputs: NDArray, raw: NDArray, labels: NDArray | None, model: ModelInfo,
                    options: FitOptions | None = None, core: Core | None = None) -> FitResult:
    """Fit the adaptive threshold on an autoencoder's int8 inputs (N, ...) and raw outputs
    (N, ...) from the device, `labels` 0 normal / 1 anomaly (None: all normal)."""
    options = options or FitOptions()
    core = core or Core(options.core_variant)
    if model.kind != "autoencoder":
        raise TinyfixError("fit_autoencoder needs an autoencoder (output of the input's shape)")
    x = np.asarray(inputs).reshape(len(inputs), -1)
    r = np.asarray(raw).reshape(len(raw), -1)
    y = np.zeros(x.shape[0], dtype=np.int64) if labels is None else np.asarray(labels,
                                                                               np.int64)
    if not x.shape[0] == r.shape[0] == y.size or r.shape[1] != model.outputs:
        raise TinyfixError(f"{x.shape[0]} inputs, {r.shape[0]} outputs and {y.size} labels "
                           f"for a model of {model.outputs} outputs")
    target = options.target_false_alarm_rate
    if not 0.0 < target < 1.0:
        raise TinyfixError(f"target false-alarm rate must be in (0, 1), got {target}")
    window = min(WINDOW, options.device.max_anomaly_window)
    data = _Split(x, r, y)
    cut = round(y.size * (1.0 - options.heldout_fraction))
    fit, held = data.part(slice(0, cut)), data.part(slice(cut, None))
    _, raw_scores = _judge(core, model, _state(0, 3.0, 0.0, window), fit, options)
    shift = score_shift(raw_scores)
    default = _state(shift, AnomalySettings.alpha, 0.0, window)
    if min(cut, y.size - cut) < MIN_WINDOWS:
        params, clips = quantize(core, model, default, options.device)
        reason = (f"too few windows: {min(cut, y.size - cut)} < {MIN_WINDOWS}; default "
                  f"alpha {AnomalySettings.alpha:g}")
        return FitResult("autoencoder", core, model, params, default,
                         [StageDecision("anomaly", True, reason)], clips, cut, y.size - cut)
    scores = raw_scores / Q16 / 2.0 ** shift
    normal = scores[fit.y == 0]
    seed = baseline_seed(normal)
    spread = np.abs(normal - np.median(normal)) if normal.size else np.zeros(1)
    floors = (0.0, *sorted({float(np.quantile(spread, q)) for q in FLOOR_QUANTILES}))
    # The score does not depend on the threshold: compute it once (at the chosen shift),
    # then run every candidate threshold through the core's adaptive threshold alone.
    shifted = _judge(core, model, _state(shift, 3.0, 0.0, window), fit, options)[1]

    def judge(a: float, f: float, g: float, frozen: bool) -> Operating:
        fp = _state(shift, a, min(f, 128.0), window, seed, g, frozen)
        params, _ = quantize(core, model, fp, options.device)
        return operating(run_scores(core, model, params, shifted), fit.y)

    # Adaptive thresholds (with or without a guard band), and fixed ones at the seeded
    # baseline (frozen): the data decide whether the baseline moves enough to track it.
    trials = [(a, f, g, False, judge(a, f, g, False)) for a in ALPHAS for f in floors
              for g in GUARDS if not g or g <= a]
    trials += [(a, 0.0, 0.0, True, judge(a, 0.0, 0.0, True)) for a in FIXED_SIGMAS]
    alpha, floor, guard, frozen, _ = min(
        trials, key=lambda t: (_rank(t[4], target), t[0], t[1], t[2]))
    chosen = _state(shift, alpha, min(floor, 128.0), window, seed, guard, frozen)
    before = _judge(core, model, default, held, options)[0]
    after = _judge(core, model, chosen, held, options)[0]
    form = ("a fixed threshold at the seeded baseline + alpha sigma" if frozen
            else f"an adaptive threshold, floor {floor:.3g}, guard {guard:g} sigma")
    text = (f"{form}: alpha {alpha:g}, window seeded at {seed[0]:.3g} +/- "
            f"{seed[1]:.3g} (score units: reconstruction MSE in "
            f"squared input steps / 2^{shift}), chosen for a false-alarm rate of at most "
            f"{target:.1%} per window over {len(trials)} candidates; held-out against alpha "
            f"{AnomalySettings.alpha:g} without floor: false alarms "
            f"{before.false_alarm_rate:.1%} -> {after.false_alarm_rate:.1%}, detections "
            f"{_pct(before.detection_rate)} -> {_pct(after.detection_rate)}")
    params, clips = quantize(core, model, chosen, options.device)
    return FitResult("autoencoder", core, model, params, chosen,
                     [StageDecision("anomaly", True, text, before.as_dict(), after.as_dict())],
                     clips, cut, y.size - cut,
                     fixed_threshold=_fixed_threshold(raw_scores[fit.y == 0], target))


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1%}"


def _fixed_threshold(normal_scores_q16: NDArray[np.int64], target: float) -> float:
    """The lab's threshold: the (1 - target) quantile of the normal calibration scores."""
    if not normal_scores_q16.size:
        return float("inf")
    return float(np.quantile(normal_scores_q16, 1.0 - target))


def evaluate_autoencoder(result: FitResult, inputs: NDArray, raw: NDArray,
                         labels: NDArray | None) -> Evaluation:
    """before: the fixed threshold of the calibration data; after: the fitted adaptive
    threshold through the C core. Scores, decisions and ROC AUC on these windows."""
    x = np.asarray(inputs).reshape(len(inputs), -1)
    r = np.asarray(raw).reshape(len(raw), -1)
    y = np.zeros(x.shape[0], dtype=np.int64) if labels is None else np.asarray(labels,
                                                                               np.int64)
    # The device's score at shift 0 is what the fixed threshold was set on.
    plain = quantize(result.core, result.model, _state(0, 3.0, 0.0, WINDOW))[0]
    score = run_recon(result.core, result.model, plain, x, r).score
    fixed = score > result.fixed_threshold
    after = run_recon(result.core, result.model, result.params, x, r)
    before_op, after_op = operating(fixed, y), operating(after.anomaly, y)
    auc = roc_auc(score.astype(np.float64), y)
    return Evaluation(
        before={**before_op.as_dict(), "roc_auc": auc},
        after={**after_op.as_dict(), "roc_auc": auc},
        predictions={"pred": after.decision, "score_q16": score,
                     "anomaly": after.anomaly, "fixed_threshold_anomaly": fixed},
        histogram=_histogram(score / Q16, y, result.fixed_threshold / Q16),
    )


def _histogram(score: NDArray[np.float64], y: NDArray[np.int64], fixed: float
               ) -> metrics.ScoreHistogram:
    return metrics.score_histogram(score, y, fixed)
