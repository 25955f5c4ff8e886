# SPDX-License-Identifier: Apache-2.0
"""Voting tuned for a false-accept target through the C core: far fewer false accepts on a
new stream, within what the device's vote ring holds."""

import numpy as np
import pytest
from fit_synthetic import STREAM_BACKGROUND, STREAM_MODEL, keyword_stream

from tinyfix.core import Corrector
from tinyfix.errors import TinyfixError
from tinyfix.fit import DeviceLimits, FitOptions, FloatParams, fit_streaming
from tinyfix.fit.voting import most_frames_in_window, usable_windows
from tinyfix.metrics import Events


@pytest.fixture(scope="module")
def fitted(core):
    raw, t, events = keyword_stream(300, seed=1)
    return fit_streaming(raw, t, events, STREAM_MODEL, STREAM_BACKGROUND,
                         FitOptions(target_fa_per_hour=20), core=core)


@pytest.fixture(scope="module")
def new_stream():
    return keyword_stream(600, seed=2)


def test_voting_cuts_false_accepts_at_a_small_cost_in_false_rejects(fitted, new_stream):
    raw, t, events = new_stream
    ev = fitted.evaluate(raw, t_ms=t, events=events)
    assert ev.before["false_accepts_per_hour"] > 1000  # spikes fool the raw top-1 detector
    assert ev.after["false_accepts_per_hour"] <= ev.before["false_accepts_per_hour"] / 20
    assert ev.after["false_accepts_per_hour"] <= 60
    assert ev.after["false_reject_rate"] <= ev.before["false_reject_rate"] + 0.12
    assert set(ev.predictions) == {"det_t_ms", "det_label"}


def test_vote_stage_is_kept_with_its_reason_and_settings(fitted):
    correction, stage = fitted.stages
    assert correction.name == "correction" and not correction.kept
    assert correction.reason == "skipped: the model's input window is not known (give it in ms)"
    assert stage.name == "vote" and stage.kept, stage.reason
    assert "cross-validated" in stage.reason and "window" in stage.reason
    assert stage.after["false_accepts_per_hour"] < stage.before["false_accepts_per_hour"]
    c = fitted.params.c
    assert c.flags & 0x08 and list(c.class_flags[0:4]) == [1, 0, 0, 0]


def test_window_fits_the_device_vote_ring(fitted):
    c = fitted.params.c
    assert (c.vote.window_ms // 50) + 1 <= DeviceLimits().max_vote_frames
    assert c.vote.min_count <= DeviceLimits().max_vote_frames


def test_only_windows_whose_frames_fit_the_ring_are_tried():
    t = np.array([0, 100, 200, 210, 220, 230, 240, 400, 500])  # a burst of close frames
    assert most_frames_in_window(t, 40) == 5
    assert most_frames_in_window(t, 0) == 1
    assert usable_windows(t, DeviceLimits(max_vote_frames=4)) == [39]
    assert usable_windows(t, DeviceLimits(max_vote_frames=9)) == [250, 500, 750, 1000, 1500,
                                                                   2000]


def test_detections_are_the_c_cores_vote_events(core, fitted, new_stream):
    raw, t, _ = new_stream
    raw, t = raw[:400], t[:400]
    times, labels = fitted.detections(raw, t)
    corr = Corrector(core, STREAM_MODEL, fitted.params)
    events = [(int(ts), r.vote_class) for ts, r in
              ((ts, corr.process(raw[i], int(ts))) for i, ts in enumerate(t)) if r.vote_event]
    assert events == list(zip(times.tolist(), labels.tolist(), strict=True))


def test_a_stream_with_too_few_events_keeps_no_voting(core):
    raw, t, events = keyword_stream(300, seed=1)
    few = Events(events.start_ms[:3], events.end_ms[:3], events.label[:3])
    result = fit_streaming(raw, t, few, STREAM_MODEL, STREAM_BACKGROUND, core=core)
    stage = result.stages[-1]
    assert not stage.kept and stage.reason == "too few events to tune voting: 3 < 8"
    assert not result.params.c.flags & 0x08


def test_bad_streams_are_refused(core):
    raw, t, events = keyword_stream(30, seed=1)
    with pytest.raises(TinyfixError, match="time order"):
        fit_streaming(raw, t[::-1], events, STREAM_MODEL, STREAM_BACKGROUND, core=core)
    with pytest.raises(TinyfixError, match="background classes"):
        fit_streaming(raw, t, events, STREAM_MODEL, (7,), core=core)
    with pytest.raises(TinyfixError, match="frames but t_ms"):
        fit_streaming(raw, t[:-1], events, STREAM_MODEL, STREAM_BACKGROUND, core=core)


def test_every_voting_setting_tried_is_kept_for_the_far_frr_curve(fitted):
    settings = [v for v, _ in fitted.vote_trials]
    assert len(settings) > 20 and fitted.float_params.vote in settings
    assert all(s.false_reject_rate >= 0 for _, s in fitted.vote_trials)


def test_epoch_timestamps_give_the_same_detections(fitted, new_stream):
    raw, t, _ = new_stream
    times, labels = fitted.detections(raw[:600], t[:600])
    epoch = 1_700_000_000_000
    later, later_labels = fitted.detections(raw[:600], t[:600] + epoch)
    assert np.array_equal(labels, later_labels) and np.array_equal(times + epoch, later)


def test_voting_is_tuned_on_top_of_stages_fitted_before(core):
    raw, t, events = keyword_stream(300, seed=1)
    start = FloatParams.identity(4).replace(inv_temperature=0.5,
                                            class_bias=np.array([0.5, 0.0, 0.0, 0.0]))
    result = fit_streaming(raw, t, events, STREAM_MODEL, STREAM_BACKGROUND,
                           FitOptions(target_fa_per_hour=20), core=core, start=start)
    c = result.params.c
    assert c.inv_temperature == 32768 and c.class_bias[0] == 32768
    assert c.flags & 0x08 and list(c.class_flags[0:4]) == [1, 0, 0, 0]
