# SPDX-License-Identifier: Apache-2.0
"""Fit a streaming correction: voting tuned for a false-accept target on the earlier part
of the calibration stream, kept only if it helps on the later part (through the C core).
With the model's feature vectors, a re-fitted last layer is tried too (fit.streaming_head).

Background classes are marked in the parameters (never events; no suppression after them).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tinyfix import metrics
from tinyfix.core import Core, ModelInfo
from tinyfix.datasets import StreamingData, split_stream
from tinyfix.errors import TinyfixError
from tinyfix.fit.domain import check_raw, detect_output_kind
from tinyfix.fit.float_params import FloatParams, VoteSettings
from tinyfix.fit.head_source import HeadSource
from tinyfix.fit.options import ALL_STREAMING_STAGES, STREAMING_STAGES, FitOptions
from tinyfix.fit.quantize import quantize
from tinyfix.fit.result import FitResult, StageDecision
from tinyfix.fit.streaming_head import head_then_vote
from tinyfix.fit.through_core import check_features
from tinyfix.fit.voting import Stream, objective, score_state, search_vote

MIN_FIT_EVENTS = 5
MIN_HELDOUT_EVENTS = 3


def _scores(s: metrics.StreamScore) -> dict[str, float]:
    return {**s.as_dict(), "events": float(s.events), "false_accepts": float(s.false_accepts)}


def _describe(s: metrics.StreamScore) -> str:
    return (f"{s.false_accepts_per_hour:.1f} FA/h ({s.false_accepts} in "
            f"{s.duration_ms / 60000:.1f} min), false rejects "
            f"{100 * s.false_reject_rate:.1f}% of {s.events}")


def _vote_stage(core: Core, model: ModelInfo, state: FloatParams, fit: Stream, held: Stream,
                options: FitOptions, trials: list[tuple[VoteSettings, metrics.StreamScore]]
                ) -> tuple[StageDecision, FloatParams]:
    if len(fit.events) < MIN_FIT_EVENTS:
        return StageDecision("vote", False, f"too few events to tune voting: "
                             f"{len(fit.events)} < {MIN_FIT_EVENTS}"), state
    if len(held.events) < MIN_HELDOUT_EVENTS:
        return StageDecision("vote", False, f"too few held-out events to check voting: "
                             f"{len(held.events)} < {MIN_HELDOUT_EVENTS}"), state
    target = options.target_fa_per_hour
    vote, tried = search_vote(core, model, state, fit, target, options.device)
    trials.extend(tried.items())
    candidate = state.replace(vote=vote)
    before = score_state(core, model, state, held, options.device)
    after = score_state(core, model, candidate, held, options.device)
    text = (f"held-out {_describe(before)} -> {_describe(after)}; window {vote.window_ms} ms, "
            f"min count {vote.min_count}, threshold {vote.threshold}/256, suppression "
            f"{vote.suppression_ms} ms, {vote.mode}")
    if objective(after, target) < objective(before, target):
        return StageDecision("vote", True, text, _scores(before), _scores(after)), candidate
    return (StageDecision("vote", False, f"no gain at {target:g} FA/h: {text}",
                          _scores(before), _scores(after)), state)


def fit_streaming(raw_scores: NDArray, t_ms: NDArray, events: metrics.Events,
                  model: ModelInfo, background: tuple[int, ...] | list[int],
                  options: FitOptions | None = None, core: Core | None = None,
                  start: FloatParams | None = None, *, features: NDArray | None = None,
                  head: HeadSource | str | None = None) -> FitResult:
    """Fit on a recorded calibration stream: raw outputs (T, C) at times t_ms (T,), ground
    truth events, and the background class indices. `start` carries stages fitted before
    (e.g. a classification fit's float_params on labelled windows): voting is then tuned
    on its corrected probabilities, and judged against it.

    With the model's feature vectors (T, F) and its last layer (`head`, or the reason it
    cannot be re-fitted) a "head" stage is tried before voting; frame labels for it come
    from the events, over the model's input window (FitOptions.frame_window_ms)."""
    options = options or FitOptions()
    core = core or Core(options.core_variant)
    raw = check_raw(raw_scores, model)
    t = np.asarray(t_ms, dtype=np.int64)
    if t.shape != (raw.shape[0],):
        raise TinyfixError(f"{raw.shape[0]} frames but t_ms has shape {t.shape}")
    if np.any(np.diff(t) < 0):
        raise TinyfixError("t_ms must be in time order")
    bg = tuple(sorted({int(b) for b in background}))
    if any(not 0 <= b < model.n_classes for b in bg):
        raise TinyfixError(f"background classes must be in [0, {model.n_classes - 1}]")
    names = options.stages or STREAMING_STAGES
    feats = None if features is None else check_features(features, raw.shape[0], model)
    if (feats is not None or head is not None) and "head" not in names:
        names = ("head", *names)
    unknown = sorted(set(names) - set(ALL_STREAMING_STAGES))
    if unknown:
        raise TinyfixError(f"unknown streaming stage(s) {', '.join(unknown)}; known: "
                           f"{', '.join(ALL_STREAMING_STAGES)}")
    if "head" in names and "vote" not in names:
        raise TinyfixError("a streaming head is judged with voting tuned after it: keep the "
                           "vote stage")
    if start is not None:
        if start.n_classes != model.n_classes:
            raise TinyfixError(f"starting parameters have {start.n_classes} classes, the "
                               f"model {model.n_classes}")
        if start.head is not None and feats is None:
            raise TinyfixError("the starting parameters re-fit the model's last layer: the "
                               "stream needs its feature vectors")
        state = start.replace(background=bg, vote=None)
    else:
        kind = options.output_kind or detect_output_kind(raw, model)
        state = FloatParams.identity(model.n_classes, kind, bg)
    baseline_kind = options.output_kind or detect_output_kind(raw, model)
    data = StreamingData(t, events, tuple(map(str, range(model.n_classes))), bg, scores=raw)
    early, late = split_stream(data, options.heldout_fraction)
    assert early.scores is not None and late.scores is not None
    cut = int(late.t_ms[0]) if len(late) else int(t[-1]) + 1
    fit = Stream(early.scores, early.t_ms, early.events,
                 None if feats is None else feats[t < cut])
    held = Stream(late.scores, late.t_ms, late.events,
                  None if feats is None else feats[t >= cut])
    decisions: list[StageDecision] = []
    trials: list[tuple[VoteSettings, metrics.StreamScore]] = []
    if "head" in names:
        outcome = head_then_vote(core, model, state, fit, held, options, head, _vote_stage,
                                 options.frame_window_ms)
        decisions, state, trials = outcome.decisions, outcome.state, outcome.trials
    elif "vote" in names:
        decision, state = _vote_stage(core, model, state, fit, held, options, trials)
        decisions.append(decision)
    params, clips = quantize(core, model, state, options.device)
    return FitResult("streaming", core, model, params, state, decisions, clips,
                     len(fit.t_ms), len(held.t_ms), trials, baseline_kind=baseline_kind)
