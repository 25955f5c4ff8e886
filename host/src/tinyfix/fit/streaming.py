# SPDX-License-Identifier: Apache-2.0
"""Fit a streaming correction, chosen by cross-validation over the whole calibration stream.

The stream is cut into contiguous time blocks (fit.stream_blocks). Each candidate chain of
stages before voting (fit.stream_chains: the starting set, output-only stages on frame
labels, a re-fitted last layer) is fitted once per block without that block; voting is
searched on the pooled score of every block held out in turn (fit.stream_select), for the
false-accept target at its confidence bound (fit.fa_rate). The winner is then fitted on the
whole stream; its cross-validated figures, with the selection re-run without each block,
are the prediction for new data (fit.stream_select.OperatingPoint). DET curves
of raw top-1, RecognizeCommands' defaults and the fitted chain come with it (fit.det_curve).

Background classes are marked in the parameters (never events; no suppression after them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tinyfix import metrics
from tinyfix.core import Core, ModelInfo
from tinyfix.errors import TinyfixError
from tinyfix.fit.det_curve import DetCurve, detector_curve, standard_curves
from tinyfix.fit.domain import check_raw, detect_output_kind
from tinyfix.fit.float_params import FloatParams
from tinyfix.fit.head_source import HeadSource
from tinyfix.fit.options import ALL_STREAMING_STAGES, STREAMING_STAGES, DeviceLimits, FitOptions
from tinyfix.fit.quantize import quantize
from tinyfix.fit.result import FitResult, StageDecision
from tinyfix.fit.stream_blocks import block_edges, blocks
from tinyfix.fit.stream_chains import (
    Chain,
    as_given,
    correction_chain,
    head_available,
    head_chain,
    labels_of,
)
from tinyfix.fit.stream_select import Candidate, CrossValidated, OperatingPoint, select
from tinyfix.fit.through_core import check_features
from tinyfix.fit.voting import Stream

MIN_FIT_EVENTS = 8
DEFAULT_LIMITS = DeviceLimits()  # replaying a sealed set: its sizes are already checked
MIN_BLOCK_EVENTS = 1


@dataclass(frozen=True)
class StreamReport:
    """What a streaming fit predicts, and the curves it picked from."""

    point: OperatingPoint
    curves: list[DetCurve]  # on the calibration stream (the fitted one out-of-fold)


def _scores(s: metrics.StreamScore) -> dict[str, float]:
    return {**s.as_dict(), "events": float(s.events), "false_accepts": float(s.false_accepts)}


def _describe(s: metrics.StreamScore) -> str:
    return (f"{s.false_accepts_per_hour:.1f} FA/h ({s.false_accepts} in "
            f"{s.duration_ms / 60000:.1f} min), false rejects "
            f"{100 * s.false_reject_rate:.1f}% of {s.events}")


def _vote_text(c: Candidate) -> str:
    v = c.vote
    if v is None:
        return "top-1 transitions"
    return (f"window {v.window_ms} ms, min count {v.min_count}, threshold {v.threshold}/256, "
            f"suppression {v.suppression_ms} ms, {v.mode}")


def _check(raw_scores: NDArray, t_ms: NDArray, model: ModelInfo,
           background: tuple[int, ...] | list[int]) -> tuple[NDArray, NDArray, tuple[int, ...]]:
    raw = check_raw(raw_scores, model)
    t = np.asarray(t_ms, dtype=np.int64)
    if t.shape != (raw.shape[0],):
        raise TinyfixError(f"{raw.shape[0]} frames but t_ms has shape {t.shape}")
    if np.any(np.diff(t) < 0):
        raise TinyfixError("t_ms must be in time order")
    bg = tuple(sorted({int(b) for b in background}))
    if any(not 0 <= b < model.n_classes for b in bg):
        raise TinyfixError(f"background classes must be in [0, {model.n_classes - 1}]")
    return raw, t, bg


def _stage_names(options: FitOptions, with_head: bool) -> tuple[str, ...]:
    names = options.stages or STREAMING_STAGES
    if with_head and "head" not in names:
        names = ("head", *names)
    unknown = sorted(set(names) - set(ALL_STREAMING_STAGES))
    if unknown:
        raise TinyfixError(f"unknown streaming stage(s) {', '.join(unknown)}; known: "
                           f"{', '.join(ALL_STREAMING_STAGES)}")
    if "head" in names and "vote" not in names:
        raise TinyfixError("a streaming head is judged with voting tuned after it: keep the "
                           "vote stage")
    return names


def _start_state(start: FloatParams | None, model: ModelInfo, kind: str,
                 bg: tuple[int, ...], feats: NDArray | None) -> FloatParams:
    if start is None:
        return FloatParams.identity(model.n_classes, kind, bg)
    if start.n_classes != model.n_classes:
        raise TinyfixError(f"starting parameters have {start.n_classes} classes, the model "
                           f"{model.n_classes}")
    if start.head is not None and feats is None:
        raise TinyfixError("the starting parameters re-fit the model's last layer: the "
                           "stream needs its feature vectors")
    return start.replace(background=bg, vote=None)


def _chain_decision(name: str, tried: Chain | str, best: Candidate, base: Candidate,
                    ours: Candidate | None, target: float) -> StageDecision:
    """A chain's stage is kept when its best candidate wins the cross-validation."""
    if isinstance(tried, str) or ours is None:
        return StageDecision(name, False, str(tried))
    text = (f"{tried.description}; cross-validated {_describe(base.score)} (starting set, "
            f"{_vote_text(base)}) -> {_describe(ours.score)} ({_vote_text(ours)})")
    if best.chain.name == name:
        return StageDecision(name, True, text, _scores(base.score), _scores(ours.score))
    return StageDecision(name, False, f"no gain at {target:g} FA/h: {text}",
                         _scores(base.score), _scores(ours.score))


def fit_streaming(raw_scores: NDArray, t_ms: NDArray, events: metrics.Events,
                  model: ModelInfo, background: tuple[int, ...] | list[int],
                  options: FitOptions | None = None, core: Core | None = None,
                  start: FloatParams | None = None, *, features: NDArray | None = None,
                  head: HeadSource | str | None = None) -> FitResult:
    """Fit on a recorded calibration stream: raw outputs (T, C) at times t_ms (T,), ground
    truth events, and the background class indices. `start` carries stages fitted before
    (e.g. a classification fit on labelled windows): it competes as the "as given" chain.

    Frame labels from the event times over the model's input window
    (FitOptions.frame_window_ms) let output-only stages ("correction") and, with the
    model's feature vectors (T, F) and its last layer (`head`), a re-fitted head be fitted
    before voting. result.stream_report holds the prediction and the DET curves."""
    options = options or FitOptions()
    core = core or Core(options.core_variant)
    raw, t, bg = _check(raw_scores, t_ms, model, background)
    feats = None if features is None else check_features(features, raw.shape[0], model)
    names = _stage_names(options, feats is not None or head is not None)
    kind = options.output_kind or detect_output_kind(raw, model)
    state = _start_state(start, model, kind, bg, feats)
    stream = Stream(raw, t, events, feats)
    edges = block_edges(stream, model.n_classes, bg, options.stream_blocks)
    parts = blocks(stream, edges)
    n_blocks = len(parts)
    base = as_given(state, n_blocks)
    too_few = None
    if len(events) < MIN_FIT_EVENTS:
        too_few = f"too few events to tune voting: {len(events)} < {MIN_FIT_EVENTS}"
    elif n_blocks < 2 or min(len(p.events) for p in parts) < MIN_BLOCK_EVENTS:
        too_few = (f"too few events for cross-validation: the stream splits into "
                   f"{n_blocks} blocks, each needs at least {MIN_BLOCK_EVENTS} event")
    chains: list[Chain] = [base]
    tried: dict[str, Chain | str] = {}
    window = options.frame_window_ms
    for name in ("correction", "head"):
        if name not in names:
            continue
        source = head_available(stream, head, options) if name == "head" else None
        if isinstance(source, str):
            tried[name] = source
        elif too_few:
            tried[name] = too_few
        elif window is None:
            tried[name] = "skipped: the model's input window is not known (give it in ms)"
        else:
            labels = labels_of(stream, bg, window)
            chain = (correction_chain(core, model, stream, labels, bg, options, edges, window)
                     if name == "correction" else
                     head_chain(core, model, stream, labels, bg, options, edges, window, head,
                                state.output_kind))
            tried[name] = chain
            if isinstance(chain, Chain):
                chains.append(chain)
    if too_few and "vote" in names:
        tried["vote"] = too_few
    cv = CrossValidated(core, model, parts, options.device)
    vote_on = "vote" in names and "vote" not in tried
    chosen = select(cv, chains, stream, options.target_fa_per_hour,
                    options.fa_confidence, vote_on)
    best = chosen.best
    decisions = [_chain_decision(n, tried[n], best, chosen.per_chain["as given"],
                                 chosen.per_chain.get(n), options.target_fa_per_hour)
                 for n in ("head", "correction") if n in names]
    if "vote" in names:
        decisions.append(_vote_decision(tried.get("vote"), cv, best, chosen.point))
    final = best.chain.final.replace(vote=best.vote)
    params, clips = quantize(core, model, final, options.device)
    curves = [*standard_curves(core, model, FloatParams.identity(model.n_classes, kind, bg),
                               parts, options.device),
              detector_curve(core, model, "TinyFix (fitted, cross-validated)",
                             list(zip(best.chain.folds, parts, strict=True)), best.vote,
                             options.device)]
    result = FitResult("streaming", core, model, params, final, decisions, clips,
                       int(t.size), int(t.size), chosen.trials, baseline_kind=kind)
    result.stream_report = StreamReport(chosen.point, curves)
    return result


def _vote_decision(too_few: str | None, cv: CrossValidated, best: Candidate,
                   point: OperatingPoint) -> StageDecision:
    if too_few is not None:
        return StageDecision("vote", False, too_few)
    without = cv.score(best.chain, None)
    if best.vote is None:
        return StageDecision("vote", False, f"no gain: cross-validated {_describe(without)} "
                             f"without voting; {point.describe()}", _scores(without),
                             _scores(without))
    return StageDecision("vote", True, f"{_vote_text(best)}; cross-validated "
                         f"{_describe(without)} -> {_describe(best.score)}; "
                         f"{point.describe()}", _scores(without), _scores(best.score))


def evaluation_curves(result: FitResult, raw: NDArray, t_ms: NDArray,
                      events: metrics.Events, features: NDArray | None = None
                      ) -> list[DetCurve]:
    """The three DET curves on an evaluation stream: the fitted curve sweeps the final
    set's voting threshold (nothing is fitted here)."""
    model, core = result.model, result.core
    fp = result.float_params
    raw_checked, t, bg = _check(raw, t_ms, model, fp.background)
    feats = None
    if result.uses_features:
        if features is None:
            raise TinyfixError("this parameter set re-fits the model's last layer: its DET "
                               "curve needs the feature vectors")
        feats = check_features(features, raw_checked.shape[0], model)
    stream = Stream(raw_checked, t, events, feats)
    identity = FloatParams.identity(model.n_classes, result.baseline_kind or fp.output_kind,
                                    bg)
    return [*standard_curves(core, model, identity, [Stream(raw_checked, t, events)],
                             DEFAULT_LIMITS),
            detector_curve(core, model, "TinyFix (fitted)", [(fp.replace(vote=None), stream)],
                           fp.vote, DEFAULT_LIMITS)]
