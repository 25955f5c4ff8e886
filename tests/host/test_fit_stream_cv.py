# SPDX-License-Identifier: Apache-2.0
"""Streams chosen honestly: Poisson bounds on the false-accept rate, contiguous time blocks
held out in turn, stages before voting fitted without the block they are scored on, a
prediction that holds on a new stream, and DET curves through the C core."""

import math
from itertools import pairwise

import numpy as np
import pytest
from fit_synthetic import STREAM_BACKGROUND, STREAM_MODEL, keyword_stream
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyfix import metrics
from tinyfix.datasets import HIT_TOLERANCE_MS
from tinyfix.errors import TinyfixError
from tinyfix.fit import FitOptions, FloatParams, VoteSettings, fit_streaming, quantize
from tinyfix.fit.detections import detections_of
from tinyfix.fit.fa_rate import fa_rate, hours_needed
from tinyfix.fit.stream_blocks import block_edges, blocks, training_mask
from tinyfix.fit.voting import Stream

DRIFTED = {"noise": 1.5, "drift": (0.0, 1.0, 0.0, 0.0)}


# ---- The false-accept rate as a Poisson count ------------------------------------------


def test_no_false_accept_in_an_hour_bounds_the_rate_at_three_per_hour():
    r = fa_rate(0, 1.0, 0.9)
    assert r.low == 0.0 and r.high == pytest.approx(-math.log(0.05))
    assert hours_needed(2.0, 0.9) == pytest.approx(-math.log(0.05) / 2.0)
    assert fa_rate(6, 1 / 3, 0.9).high == pytest.approx(3 * 11.842, abs=0.01)  # tables


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 500), st.floats(0.01, 100.0), st.floats(0.5, 0.99))
def test_the_interval_holds_the_estimate_and_widens_with_confidence(count, hours, conf):
    r = fa_rate(count, hours, conf)
    assert r.low <= r.per_hour <= r.high
    wider = fa_rate(count, hours, min(0.999, conf + 0.005))
    assert wider.low <= r.low + 1e-9 and wider.high >= r.high - 1e-9
    assert fa_rate(count + 1, hours, conf).high > r.high


def test_the_interval_covers_the_true_rate_at_least_as_often_as_it_claims():
    rng = np.random.default_rng(0)
    for rate, hours in ((2.0, 0.5), (36.0, 0.25), (10.0, 3.0)):
        counts = rng.poisson(rate * hours, 4000)
        covered = [fa_rate(int(c), hours, 0.9).low <= rate <= fa_rate(int(c), hours, 0.9).high
                   for c in counts]
        assert np.mean(covered) >= 0.89, (rate, hours)


def test_bad_rates_are_refused():
    with pytest.raises(TinyfixError, match="confidence"):
        fa_rate(1, 1.0, 1.0)
    with pytest.raises(TinyfixError, match="> 0 per hour"):
        hours_needed(0.0)


# ---- Time blocks -------------------------------------------------------------------------


def test_blocks_cover_the_stream_and_never_cut_an_event():
    raw, t, events = keyword_stream(600, seed=4)
    stream = Stream(raw, t, events)
    edges = block_edges(stream, 4, STREAM_BACKGROUND, 5)
    parts = blocks(stream, edges)
    assert len(parts) == 5
    assert sum(p.t_ms.size for p in parts) == t.size
    assert sum(len(p.events) for p in parts) == len(events)
    for cut in edges[1:-1]:
        inside = (events.start_ms <= cut) & (cut <= events.end_ms + HIT_TOLERANCE_MS)
        assert not inside.any(), cut
    spans = np.diff(edges)
    assert spans.max() < 1.3 * spans.min()


def test_a_stage_for_a_block_never_sees_it_nor_the_frames_whose_window_reaches_into_it():
    t = np.arange(0, 10_000, 100)
    mask = training_mask(t, 3000, 6000, 1000)
    assert not mask[(t >= 3000) & (t < 7000)].any()
    assert mask[(t < 3000) | (t >= 7000)].all()


# ---- The fit -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def drifted_fit(core):
    raw, t, events = keyword_stream(1200, seed=1, hop_ms=100, **DRIFTED)
    return fit_streaming(raw, t, events, STREAM_MODEL, STREAM_BACKGROUND,
                         FitOptions(target_fa_per_hour=36, frame_window_ms=500), core=core)


def test_the_prediction_holds_on_a_new_stream(drifted_fit):
    point = drifted_fit.stream_report.point
    assert point.meets_target and point.own.high <= 36
    assert point.events > 300 and point.blocks == 5
    raw, t, events = keyword_stream(3600, seed=2, hop_ms=100, **DRIFTED)
    ev = drifted_fit.evaluate(raw, t_ms=t, events=events)
    assert point.low <= ev.after["false_accepts_per_hour"] <= point.high
    assert abs(ev.after["false_reject_rate"] - point.false_reject_rate) < 0.05
    assert ev.before["false_accepts_per_hour"] > 1000


def test_every_stage_says_what_the_cross_validation_found(drifted_fit):
    names = [s.name for s in drifted_fit.stages]
    assert names == ["correction", "vote"]
    correction, vote = drifted_fit.stages
    assert "frames labelled from the event times" in correction.reason
    assert "cross-validated" in correction.reason
    assert vote.kept and "predicted" in vote.reason and "interval" in vote.reason


def test_a_target_the_stream_is_too_short_for_says_how_long_it_must_be(core):
    raw, t, events = keyword_stream(300, seed=1)
    result = fit_streaming(raw, t, events, STREAM_MODEL, STREAM_BACKGROUND,
                           FitOptions(target_fa_per_hour=2), core=core)
    point = result.stream_report.point
    assert not point.meets_target
    assert "too short to hold 2 FA/h" in point.describe()
    assert f"at least {60 * hours_needed(2.0):.0f} min" in point.describe()


def test_a_miscalibrated_model_gets_its_scores_corrected_before_voting(core):
    """A device whose keyword 1 logit drifted up by 3: voting alone must set its threshold
    so high that it misses most keywords; frame labels from the events let the bias stage
    pull class 1 back, and voting after it misses far fewer at the target."""
    bent = {"noise": 1.0, "drift": (0.0, 3.0, 0.0, 0.0), "window_ms": 1200}
    raw, t, events = keyword_stream(900, seed=5, hop_ms=100, **bent)
    result = fit_streaming(raw, t, events, STREAM_MODEL, STREAM_BACKGROUND,
                           FitOptions(target_fa_per_hour=36, frame_window_ms=1200), core=core)
    correction = result.stages[0]
    assert correction.kept, correction.reason
    assert "bias" in correction.reason
    assert correction.after["false_reject_rate"] < correction.before["false_reject_rate"] / 4
    new_raw, new_t, new_events = keyword_stream(1800, seed=6, hop_ms=100, **bent)
    ev = result.evaluate(new_raw, t_ms=new_t, events=new_events)
    point = result.stream_report.point
    assert point.low <= ev.after["false_accepts_per_hour"] <= point.high


def _pooled_by_hand(core, fp, raw, t, events, edges):
    hits = fas = n = dur = 0
    for a, b in pairwise(edges):
        keep = (t >= a) & (t < b)
        params, _ = quantize(core, STREAM_MODEL, fp)
        dt, dl = detections_of(core, STREAM_MODEL, params, raw[keep], t[keep],
                               STREAM_BACKGROUND)
        s = metrics.score_detections(dt, dl, events.within(a, b),
                                     metrics.stream_duration_ms(t[keep]))
        hits, fas, n, dur = hits + s.hits, fas + s.false_accepts, n + s.events, \
            dur + s.duration_ms
    return metrics.StreamScore(hits, fas, n, dur)


def test_det_curves_of_raw_top1_recognize_commands_and_the_fit(core, drifted_fit):
    raw, t, events = keyword_stream(1200, seed=1, hop_ms=100, **DRIFTED)
    edges = block_edges(Stream(raw, t, events), 4, STREAM_BACKGROUND, 5)
    raw_top1, rc, fitted = drifted_fit.stream_report.curves
    assert (raw_top1.name, rc.name) == ("raw top-1", "RecognizeCommands defaults")
    identity = FloatParams.identity(4, "logits", STREAM_BACKGROUND)
    top1 = _pooled_by_hand(core, identity, raw, t, events, edges)
    assert raw_top1.threshold[raw_top1.marked] == 0
    assert raw_top1.fa_per_hour[raw_top1.marked] == top1.false_accepts_per_hour
    defaults = _pooled_by_hand(core, identity.replace(vote=VoteSettings()), raw, t, events,
                               edges)
    assert rc.threshold[rc.marked] == 200
    assert rc.fa_per_hour[rc.marked] == defaults.false_accepts_per_hour
    assert rc.false_reject_rate[rc.marked] == defaults.false_reject_rate
    point = drifted_fit.stream_report.point
    assert fitted.fa_per_hour[fitted.marked] == pytest.approx(point.own.per_hour)
    for curve in (raw_top1, rc, fitted):
        assert len(curve.threshold) == len(curve.fa_per_hour) == len(curve.false_reject_rate)
        assert np.all(np.diff(curve.fa_per_hour) <= 1e-9)  # a higher threshold: fewer FAs


def test_a_det_front_keeps_only_points_nothing_beats_on_both_axes():
    from tinyfix.fit.det_curve import DetCurve

    curve = DetCurve("x", (0, 1, 2, 3, 4), (50.0, 0.0, 10.0, 10.0, 3.0),
                     (0.1, 0.9, 0.2, 0.5, 0.4))
    assert curve.front() == ([0.0, 3.0, 10.0, 50.0], [0.9, 0.4, 0.2, 0.1])
    assert curve.frr_at(5.0) == 0.4 and curve.frr_at(-1.0) == 1.0
    assert curve.fa_at(0.2) == 10.0 and curve.fa_at(0.05) == math.inf


def test_the_prediction_pays_for_picking_the_best_of_many_candidates(core):
    """Nested: each block is scored with the candidate the other blocks pick. With every
    candidate equally good, the winner's own score is the luckiest of them; the nested
    estimate is not (it is never better than the best, nor worse than the worst)."""
    from tinyfix.fit.stream_select import CrossValidated, nested_estimate

    cv = CrossValidated(core, STREAM_MODEL, [None] * 4, None)  # scores filled in by hand
    rng = np.random.default_rng(3)
    hour = metrics.MS_PER_HOUR // 4
    for i in range(30):  # thirty candidates with the same true rate: 8 FA/h, 10 % misses
        cv.per_block[("as given", VoteSettings(threshold=i))] = [
            metrics.StreamScore(45, int(rng.poisson(2)), 50, hour) for _ in range(4)]
    pooled_fa = [sum(s.false_accepts for s in v) for v in cv.per_block.values()]
    nested = nested_estimate(cv, 10.0, 0.9)
    assert min(pooled_fa) < nested.false_accepts <= max(pooled_fa)
    assert nested.events == 200 and nested.duration_ms == 4 * hour
