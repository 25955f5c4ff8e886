# SPDX-License-Identifier: Apache-2.0
"""Stage 4: voting reproduces RecognizeCommands, and majority voting behaves as stated."""

import golden
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_core_correct import build

from tinyfix.core import Corrector, ModelInfo
from tinyfix.errors import CoreError

KWS = ModelInfo(model_crc=0x5EEC4, n_classes=4, output_scale=1 / 256, output_zero_point=-128)
VOTE, SCALE = 0x08, 0x02


def rc_params(core, window_ms, threshold, suppression_ms, min_count):
    return build(core, KWS, flags=SCALE | VOTE, vote__mode=0, vote__source=1,
                 vote__threshold=threshold, vote__window_ms=window_ms,
                 vote__suppression_ms=suppression_ms, vote__min_count=min_count,
                 class_flags=[1, 0, 0, 0])


frames = st.lists(
    st.tuples(st.integers(min_value=0, max_value=120),
              st.lists(st.integers(min_value=-128, max_value=127), min_size=4, max_size=4)),
    min_size=1, max_size=80)


@settings(max_examples=200, deadline=None)
@given(frames, st.integers(min_value=0, max_value=1500), st.integers(min_value=0, max_value=255),
       st.integers(min_value=0, max_value=2000), st.integers(min_value=1, max_value=8))
def test_reproduces_recognize_commands_frame_by_frame(core, stream, window, threshold, supp,
                                                      min_count):
    corr = Corrector(core, KWS, rc_params(core, window, threshold, supp, min_count))
    rc = golden.RecognizeCommands(window, threshold, supp, min_count, max_results=64)
    now = 0
    for step, scores in stream:
        now += step
        r = corr.process(np.array(scores), now)
        label, score, is_new = rc.process(scores, now)
        assert (r.vote_class, r.vote_score, r.vote_new) == (label, score, is_new)
        assert r.vote_event == (is_new and label != 0)


def test_recognize_commands_defaults_detect_once_then_suppress(core):
    corr = Corrector(core, KWS, rc_params(core, 1000, 200, 1500, 3))
    yes = np.array([-128, 100, -128, -128])
    events = [corr.process(yes, t).vote_event for t in range(0, 3000, 100)]
    # First detection once the window holds 3 frames spanning >= 250 ms, then silence for
    # 1500 ms of suppression, then again.
    assert [t for t, e in zip(range(0, 3000, 100), events, strict=True) if e] == [300, 1900]


def test_time_going_backwards_is_refused_and_changes_nothing(core):
    corr = Corrector(core, KWS, rc_params(core, 1000, 200, 1500, 1))
    corr.process(np.array([-128, 100, -128, -128]), 500)
    with pytest.raises(CoreError) as exc:
        corr.process(np.array([-128, 100, -128, -128]), 499)
    assert exc.value.code == core.lib.TINYFIX_ERR_TIME
    twin = Corrector(core, KWS, rc_params(core, 1000, 200, 1500, 1))
    twin.process(np.array([-128, 100, -128, -128]), 500)
    yes = np.array([-128, 100, -128, -128])
    for t in (500, 800, 900):
        a, b = corr.process(yes, t), twin.process(yes, t)
        assert (a.vote_class, a.vote_score, a.vote_new) == (b.vote_class, b.vote_score, b.vote_new)


@given(st.lists(st.lists(st.integers(min_value=-128, max_value=127), min_size=4, max_size=4),
                min_size=1, max_size=30))
def test_majority_over_one_frame_is_the_frame_top(core, stream):
    p = build(core, KWS, flags=SCALE | VOTE, vote__mode=1, vote__source=1, vote__threshold=0,
              vote__window_ms=0, vote__min_count=1, vote__suppression_ms=0)
    corr = Corrector(core, KWS, p)
    for t, scores in enumerate(stream):
        r = corr.process(np.array(scores), t * 100)
        hi = max(scores)
        assert r.vote_class == scores.index(hi)
        assert r.vote_score == 255


def test_majority_needs_more_than_half_the_window(core):
    p = build(core, KWS, flags=SCALE | VOTE, vote__mode=1, vote__source=1, vote__threshold=128,
              vote__window_ms=400, vote__min_count=5, vote__suppression_ms=0,
              class_flags=[1, 0, 0, 0])
    corr = Corrector(core, KWS, p)
    a = np.array([-128, 100, -128, -128])
    b = np.array([-128, -128, 100, -128])
    seq = [a, b, a, b, a, a, b]
    got = [corr.process(x, i * 100) for i, x in enumerate(seq)]
    # Window of 5 frames: at t=400 a has 3/5 (score 153 > 128) -> detection of class 1.
    assert got[4].vote_class == 1 and got[4].vote_event
    assert not any(g.vote_event for g in got[:4])


def test_corrected_source_votes_on_calibrated_probabilities(core):
    # Raw scores favour class 2, the bias favours class 1: voting follows the correction.
    bias = [0, 3 * 65536, 0, 0]
    p = build(core, KWS, flags=SCALE | VOTE, class_bias=bias, output_kind=1,
              vote__source=0, vote__threshold=100, vote__window_ms=300, vote__min_count=2,
              class_flags=[1, 0, 0, 0])
    corr = Corrector(core, KWS, p)
    raw = np.array([-128, 20, 40, -128])
    got = [corr.process(raw, t) for t in (0, 100, 200)]
    assert got[-1].vote_class == 1
