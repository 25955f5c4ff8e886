# SPDX-License-Identifier: Apache-2.0
"""A re-fitted last layer on a stream, with voting tuned after it on later data.

The earlier part of the calibration stream is cut in two: the head is fitted on frames of
the first half, labelled from the event times (fit.frame_labels), and voting is tuned on
its outputs over the second half, so the false-accept target is met on frames the head
never saw. Both are judged on the held-out later part of the stream, against voting alone
tuned on the whole earlier part (what the output-only fit ships); the head is kept only if
it does better there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tinyfix import metrics
from tinyfix.core import Core, ModelInfo
from tinyfix.datasets import StreamingData, stream_cut_ms
from tinyfix.errors import TinyfixError
from tinyfix.fit.float_params import FloatParams, VoteSettings
from tinyfix.fit.frame_labels import LEFT_OUT, frame_labels
from tinyfix.fit.head import fit_head, time_folds
from tinyfix.fit.head import min_samples as head_min_samples
from tinyfix.fit.head_source import HeadSource, within_limits
from tinyfix.fit.options import FitOptions
from tinyfix.fit.result import StageDecision
from tinyfix.fit.voting import Stream, objective, score_state

HEAD_SHARE = 0.5  # of the earlier part: the head fits on this first share, voting on the rest
MIN_HEAD_EVENTS = 5

Trials = list[tuple[VoteSettings, metrics.StreamScore]]
VoteStage = Callable[[Core, ModelInfo, FloatParams, Stream, Stream, FitOptions, Trials],
                     tuple[StageDecision, FloatParams]]


@dataclass(frozen=True)
class StreamHeadOutcome:
    decisions: list[StageDecision]
    state: FloatParams
    trials: Trials


def _part(stream: Stream, t0: int, t1: int) -> Stream:
    keep = (stream.t_ms >= t0) & (stream.t_ms < t1)
    feats = None if stream.features is None else stream.features[keep]
    return Stream(stream.raw[keep], stream.t_ms[keep], stream.events.within(t0, t1), feats)


def split_for_head(fit: Stream, n_classes: int, background: tuple[int, ...]
                   ) -> tuple[Stream, Stream]:
    """(head part, vote part) of the earlier stream, cut where no event is."""
    data = StreamingData(fit.t_ms, fit.events, tuple(map(str, range(n_classes))),
                         background, scores=fit.raw)
    cut = stream_cut_ms(data, HEAD_SHARE)
    return (_part(fit, int(fit.t_ms[0]), cut), _part(fit, cut, int(fit.t_ms[-1]) + 1))


def _describe(s: metrics.StreamScore) -> str:
    return (f"{s.false_accepts_per_hour:.1f} FA/h, false rejects "
            f"{100 * s.false_reject_rate:.1f}% of {s.events}")


def _scores(s: metrics.StreamScore) -> dict[str, float]:
    return {**s.as_dict(), "events": float(s.events), "false_accepts": float(s.false_accepts)}


def head_then_vote(core: Core, model: ModelInfo, state: FloatParams, fit: Stream,
                   held: Stream, options: FitOptions, head: HeadSource | str | None,
                   vote_stage: VoteStage, window_ms: int | None) -> StreamHeadOutcome:
    """Decisions on "head" and "vote" (the streaming fit's voting stage)."""
    bg = state.background
    trials_out: Trials = []
    vote_out, state_out = vote_stage(core, model, state, fit, held, options, trials_out)

    def skipped(reason: str) -> StreamHeadOutcome:
        return StreamHeadOutcome([StageDecision("head", False, reason), vote_out], state_out,
                                 trials_out)

    if fit.features is None:
        return skipped("skipped: the stream has no feature vectors")
    head = within_limits(head, options.device.max_features)
    if head is None:
        head = "the model's last layer was not given"
    if isinstance(head, str):
        return skipped(f"skipped: {head}")
    if window_ms is None:
        return skipped("skipped: the model's input window is not known (give it in ms)")
    try:
        head_part, vote_part = split_for_head(fit, model.n_classes, bg)
    except TinyfixError as exc:
        return skipped(f"skipped: {exc}")
    if len(head_part.events) < MIN_HEAD_EVENTS:
        return skipped(f"too few events to fit a head: {len(head_part.events)} < "
                       f"{MIN_HEAD_EVENTS}")
    assert head_part.features is not None
    labels = frame_labels(head_part.t_ms, head_part.events, window_ms, head_part.raw, bg)
    use = labels != LEFT_OUT
    need = head_min_samples(model.n_classes)
    if use.sum() < need:
        return skipped(f"too few labelled frames: {int(use.sum())} < {need}")
    feats: NDArray[np.int8] = np.asarray(head_part.features)[use]
    try:
        fitted = fit_head(core, model, head, feats, labels[use], options,
                          np.asarray(head_part.raw)[use], state.output_kind,
                          fold=time_folds(int(use.sum())))
    except TinyfixError as exc:  # e.g. a size budget too small for one feature column
        return skipped(f"skipped: {exc}")
    trials_head: Trials = []
    state_h = fitted.state.replace(background=bg)
    vote_h, state_hv = vote_stage(core, model, state_h, vote_part, held, options, trials_head)
    before = score_state(core, model, state_out, held, options.device)
    after = score_state(core, model, state_hv, held, options.device)
    target = options.target_fa_per_hour
    counts = np.bincount(labels[use], minlength=model.n_classes)
    text = (f"held-out {_describe(before)} (voting alone) -> {_describe(after)} (head, "
            f"voting tuned after it on later data); fitted on {int(use.sum())} of "
            f"{labels.size} frames labelled from {len(head_part.events)} events with a "
            f"{window_ms} ms window (per class {counts.tolist()}, {int((~use).sum())} left "
            f"out); {fitted.describe()}; the model's own last layer {head.own_bytes} B")
    if objective(after, target) < objective(before, target):
        return StreamHeadOutcome(
            [StageDecision("head", True, text, _scores(before), _scores(after)), vote_h],
            state_hv, trials_head)
    decision = StageDecision("head", False, f"no gain at {target:g} FA/h: {text}",
                             _scores(before), _scores(after))
    return StreamHeadOutcome([decision, vote_out], state_out, trials_out)
