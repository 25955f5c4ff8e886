# SPDX-License-Identifier: Apache-2.0
"""Fit a classification correction: temperature, label-shift prior, bias, vector scaling,
a re-fitted last layer (when the data has the model's feature vectors), then per-class
thresholds, each kept only if it helps on a held-out split of the calibration data (scored
through the C core).

The labels may be soft targets (N, classes), e.g. a float reference model's probabilities
on unlabeled inputs (teacher labels): every stage is then fitted and judged against them.
Given a float model's probabilities as `reference` beside real labels, a "quantization"
stage comes first, fitted to the float model alone (fit.quantization_stage); the labelled
stages then fit what remains to the labels, each from the state before it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tinyfix.core import Core, ModelInfo, Params
from tinyfix.datasets import stratified_split
from tinyfix.errors import TinyfixError
from tinyfix.fit import prior, scaling
from tinyfix.fit.domain import check_raw, detect_output_kind, scaling_inputs
from tinyfix.fit.float_params import FloatParams
from tinyfix.fit.head import fit_head
from tinyfix.fit.head import min_samples as head_min_samples
from tinyfix.fit.head_source import HeadSource, within_limits
from tinyfix.fit.heldout import change, score_classification
from tinyfix.fit.options import ALL_CLASSIFICATION_STAGES, CLASSIFICATION_STAGES, FitOptions
from tinyfix.fit.quantization_stage import quantization_stage
from tinyfix.fit.quantize import Q15, quantize
from tinyfix.fit.result import FitResult, StageDecision
from tinyfix.fit.targets import hard_labels, target_matrix
from tinyfix.fit.thresholds import fit_thresholds
from tinyfix.fit.through_core import check_features, run_frames

MIN_HELDOUT = 20
SCALING_KEYS = ("nll", "accuracy", "ece")
THRESHOLD_KEYS = ("precision", "coverage", "accuracy")
HEAD_KEYS = ("nll", "accuracy", "macro_f1", "ece")


@dataclass
class _Fit:
    """Data and the current state shared by the stages."""

    core: Core
    model: ModelInfo
    options: FitOptions
    raw_fit: NDArray
    raw_held: NDArray
    z_fit: NDArray[np.float64]
    y_fit: NDArray  # labels (N,) or soft targets (N, C)
    y_held: NDArray
    state: FloatParams
    params: Params
    scores: dict[str, float]
    feats_fit: NDArray | None = None
    feats_held: NDArray | None = None
    # A float reference model's probabilities (fit.quantization_stage), or None.
    ref_fit: NDArray[np.float64] | None = None
    ref_held: NDArray[np.float64] | None = None

    @property
    def n_fit(self) -> int:
        return len(self.y_fit)

    @property
    def n_held(self) -> int:
        return len(self.y_held)

    def score(self, params: Params) -> dict[str, float]:
        return score_classification(self.core, self.model, params, self.raw_held, self.y_held,
                                    self.feats_held)

    def adopt(self, state: FloatParams, params: Params, scores: dict[str, float]) -> None:
        self.state, self.params, self.scores = state, params, scores


def _check_labels(labels: NDArray, n: int, n_classes: int) -> NDArray:
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[0] == n:
        return target_matrix(y, n_classes)
    if y.shape != (n,):
        raise TinyfixError(f"{n} raw outputs but labels have shape {y.shape}")
    y = y.astype(np.int64)
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise TinyfixError(f"labels must be class indices in [0, {n_classes - 1}]")
    return y


def _min_samples(name: str, n_classes: int) -> int:
    if name == "prior":
        return prior.MIN_SAMPLES_PER_CLASS * n_classes
    return scaling.min_samples(name, n_classes)


def _scaling_fitter(name: str, options: FitOptions
                    ) -> Callable[[NDArray[np.float64], NDArray[np.int64], FloatParams],
                                  FloatParams]:
    if name == "temperature":
        return lambda z, y, fp: scaling.fit_temperature(z, y, fp, options.l2)
    if name == "bias":
        return lambda z, y, fp: scaling.fit_bias(z, y, fp, options.l2)
    if name == "bias_only":
        return lambda z, y, fp: scaling.fit_bias_only(z, y, fp, options.l2)
    if name == "vector":
        return lambda z, y, fp: scaling.fit_vector(z, y, fp, options.l2)
    return lambda z, y, fp: prior.fit_prior_shift(z, y, fp, options.source_priors)


def _scaling_stage(f: _Fit, name: str) -> StageDecision:
    need = _min_samples(name, f.model.n_classes)
    if f.n_fit < need:
        return StageDecision(name, False, f"too few samples: {f.n_fit} < {need}")
    state = _scaling_fitter(name, f.options)(f.z_fit, f.y_fit, f.state)
    params, clips = quantize(f.core, f.model, state, f.options.device)
    after = f.score(params)
    before = f.scores
    one_sample = 1.0 / f.n_held
    better = after["nll"] < before["nll"] * (1.0 - f.options.min_nll_gain)
    kept_accuracy = after["accuracy"] >= before["accuracy"] - one_sample - 1e-12
    text = "held-out " + change(before, after, SCALING_KEYS)
    if clips:
        text += "; clipped " + "; ".join(str(c) for c in clips)
    if better and kept_accuracy:
        f.adopt(state, params, after)
        return StageDecision(name, True, text, before, after)
    why = "no NLL gain" if not better else "costs accuracy"
    return StageDecision(name, False, f"{why}: {text}", before, after)


def _threshold_stage(f: _Fit) -> StageDecision:
    target = f.options.target_precision
    if target is None:
        return StageDecision("thresholds", False, "not tried: no target precision given")
    if not 0.0 < target < 1.0:
        raise TinyfixError(f"target precision must be in (0, 1), got {target}")
    before = f.scores
    if before["precision"] >= target:
        return StageDecision("thresholds", False,
                             f"held-out precision {100 * before['precision']:.1f}% already "
                             f"meets the target {100 * target:.1f}%", before, before)
    run = run_frames(f.core, f.model, f.params, f.raw_fit, features=f.feats_fit)
    fitted = fit_thresholds(run, hard_labels(f.y_fit), f.model.n_classes, target)
    state = f.state.replace(class_threshold=fitted.threshold_q15 / Q15)
    params, _ = quantize(f.core, f.model, state, f.options.device)
    after = f.score(params)
    text = "held-out " + change(before, after, THRESHOLD_KEYS)
    if fitted.notes:
        text += "; " + "; ".join(fitted.notes)
    if not np.any(fitted.threshold_q15):
        return StageDecision("thresholds", False, f"no class needs a threshold: {text}",
                             before, after)
    if np.isfinite(after["precision"]) and after["precision"] > before["precision"]:
        f.adopt(state, params, after)
        return StageDecision("thresholds", True, text, before, after)
    return StageDecision("thresholds", False, f"no precision gain: {text}", before, after)


def _beats(before: dict[str, float], after: dict[str, float], n_held: int,
           min_nll_gain: float) -> bool:
    """The head must beat the output-only stages on the held-out split: lower NLL at no
    loss of accuracy, or more than one sample more right at no worse NLL."""
    nll_gain = after["nll"] < before["nll"] * (1.0 - min_nll_gain)
    more_right = after["accuracy"] > before["accuracy"] + 1.0 / n_held + 1e-12
    return ((nll_gain and after["accuracy"] >= before["accuracy"] - 1e-12)
            or (more_right and after["nll"] <= before["nll"]))


def _head_stage(f: _Fit, head: HeadSource | str | None) -> StageDecision:
    if isinstance(head, str):  # why the model's last layer cannot be re-fitted comes first
        return StageDecision("head", False, f"skipped: {head}")
    if f.feats_fit is None or f.feats_held is None:
        return StageDecision("head", False, "skipped: the data has no feature vectors")
    head = within_limits(head, f.options.device.max_features)
    if head is None:
        head = "the model's last layer was not given"
    if isinstance(head, str):
        return StageDecision("head", False, f"skipped: {head}")
    need = head_min_samples(f.model.n_classes)
    if f.n_fit < need:
        return StageDecision("head", False, f"too few samples: {f.n_fit} < {need}")
    try:
        fitted = fit_head(f.core, f.model, head, f.feats_fit, f.y_fit, f.options, f.raw_fit,
                          f.state.output_kind)
    except TinyfixError as exc:  # e.g. a size budget too small for one feature column
        return StageDecision("head", False, f"skipped: {exc}")
    params, clips = quantize(f.core, f.model, fitted.state, f.options.device)
    before, after = f.scores, f.score(params)
    text = (f"held-out {change(before, after, HEAD_KEYS)} against the output-only stages; "
            f"{fitted.describe()}; the model's own last layer {head.own_bytes} B")
    if clips:
        text += "; clipped " + "; ".join(str(c) for c in clips)
    if _beats(before, after, f.n_held, f.options.min_nll_gain):
        f.adopt(fitted.state, params, after)
        return StageDecision("head", True, text, before, after)
    return StageDecision("head", False, f"does not beat the output-only stages: {text}",
                         before, after)


def fit_classification(raw_outputs: NDArray, labels: NDArray, model: ModelInfo,
                       options: FitOptions | None = None, core: Core | None = None, *,
                       features: NDArray | None = None,
                       head: HeadSource | str | None = None,
                       reference: NDArray | None = None) -> FitResult:
    """Fit on the device's raw outputs (N, C) and labels (N,) or soft targets (N, classes);
    returns the sealed set and the decision on every stage. Only the calibration data given
    here is used.

    With the model's feature vectors (N, F) and its last layer (`head`: a HeadSource, or
    the reason it cannot be re-fitted), a "head" stage re-fits that layer after the
    output-only stages and keeps it only if it beats them on the held-out split. With a
    float reference model's probabilities (N, classes) on the same inputs, the
    "quantization" stage comes first (fit.quantization_stage)."""
    options = options or FitOptions()
    core = core or Core(options.core_variant)
    raw = check_raw(raw_outputs, model)
    y = _check_labels(labels, raw.shape[0], model.n_classes)
    kind = options.output_kind or detect_output_kind(raw, model)
    names = options.stages or CLASSIFICATION_STAGES
    feats = None if features is None else check_features(features, raw.shape[0], model)
    if (feats is not None or head is not None) and "head" not in names:
        names = _with_head(names)
    ref = None
    if reference is not None:
        ref = target_matrix(reference, model.n_classes)
        if ref.shape[0] != raw.shape[0]:
            raise TinyfixError(f"{raw.shape[0]} raw outputs but the reference model's "
                               f"outputs are for {ref.shape[0]} inputs")
        if "quantization" not in names:
            names = ("quantization", *names)
    unknown = sorted(set(names) - set(ALL_CLASSIFICATION_STAGES))
    if unknown:
        raise TinyfixError(f"unknown classification stage(s) {', '.join(unknown)}; known: "
                           f"{', '.join(ALL_CLASSIFICATION_STAGES)}")
    identity = FloatParams.identity(model.n_classes, kind)
    base, clips = quantize(core, model, identity, options.device)
    if len(y) < 2:
        raise TinyfixError(f"too few calibration samples to fit anything: {len(y)}")
    fit_idx, held_idx = stratified_split(hard_labels(y), options.heldout_fraction,
                                         options.seed)
    if held_idx.size < MIN_HELDOUT:
        reason = f"too few samples for a held-out check: {held_idx.size} < {MIN_HELDOUT}"
        return FitResult("classification", core, model, base, identity,
                         [StageDecision(n, False, reason) for n in names], clips,
                         int(fit_idx.size), int(held_idx.size), baseline_kind=kind)
    f = _Fit(core, model, options, raw[fit_idx], raw[held_idx],
             scaling_inputs(raw[fit_idx], model, kind), y[fit_idx], y[held_idx],
             identity, base, {},
             None if feats is None else feats[fit_idx],
             None if feats is None else feats[held_idx],
             None if ref is None else ref[fit_idx],
             None if ref is None else ref[held_idx])
    f.scores = f.score(base)
    decisions = []
    compensated = None
    for name in names:
        if name == "quantization":
            decisions.append(quantization_stage(f, head))
            compensated = f.params if decisions[-1].kept else None
        elif name == "thresholds":
            decisions.append(_threshold_stage(f))
        elif name == "head":
            decisions.append(_head_stage(f, head))
        else:
            decisions.append(_scaling_stage(f, name))
    _, clips = quantize(core, model, f.state, options.device)
    return FitResult("classification", core, model, f.params, f.state, decisions, clips,
                     int(fit_idx.size), int(held_idx.size), baseline_kind=kind,
                     quantization_params=compensated)


def _with_head(names: tuple[str, ...]) -> tuple[str, ...]:
    """The head goes after the output-only stages, before the thresholds it changes."""
    if "thresholds" in names:
        at = names.index("thresholds")
        return (*names[:at], "head", *names[at:])
    return (*names, "head")
