# SPDX-License-Identifier: Apache-2.0
"""Scoring: classification figures against hand-computed cases, and the issue-5 streaming
rules at their edges."""

import numpy as np
import pytest

from tinyfix import metrics
from tinyfix.errors import TinyfixError
from tinyfix.metrics import Events, score_detections, transition_detections


def test_accuracy_counts_no_decision_as_wrong():
    assert metrics.accuracy([0, 1, 2, 1], [0, 1, -1, 2]) == 0.5
    assert metrics.coverage([0, 1, -1, 2]) == 0.75
    assert metrics.decision_precision([0, 1, 2, 1], [0, 1, -1, 2]) == pytest.approx(2 / 3)


def test_macro_f1_matches_a_hand_computed_case():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, -1, 2]
    # class 0: tp 2, fp 0, fn 1 -> 4/5; class 1: tp 1, fp 1, fn 1 -> 2/4; class 2: 1.
    assert metrics.macro_f1(y_true, y_pred, 3) == pytest.approx((0.8 + 0.5 + 1.0) / 3)


def test_macro_f1_ignores_classes_absent_from_labels_and_predictions():
    assert metrics.macro_f1([0, 0, 1], [0, 0, 1], 5) == 1.0


def test_confusion_matrix_rows_are_truth_and_no_decision_has_its_own_column():
    cm = metrics.confusion_matrix([0, 0, 1, 1, 2], [0, 1, 1, -1, 2], 3, with_no_decision=True)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 1, 0, 1], [0, 0, 1, 0]]
    assert metrics.confusion_matrix([0, 1], [0, -1], 2).tolist() == [[1, 0], [0, 0]]


def test_ece_of_a_hand_computed_case():
    # Bins of width 1/15: 0.95 and 0.99 share the last bin (acc 1/2, conf 0.97); 0.5 and 0.55
    # fall in bin 7 and 8 ((7/15, 8/15] holds 0.5, (8/15, 9/15] holds 0.55).
    conf = [0.95, 0.99, 0.5, 0.55]
    right = [True, False, True, False]
    expected = (2 * abs(0.5 - 0.97) + abs(1.0 - 0.5) + abs(0.0 - 0.55)) / 4
    assert metrics.expected_calibration_error(conf, right) == pytest.approx(expected)


def test_reliability_bins_are_right_closed_with_zero_in_the_first():
    d = metrics.reliability_diagram([0.0, 1 / 15, 1.0], [True, True, False])
    assert d.edges.size == 16
    assert d.count[0] == 2 and d.count[14] == 1 and d.count.sum() == 3
    assert np.isnan(d.accuracy[5])


def test_perfect_calibration_has_zero_ece():
    conf = np.full(1000, 0.7)
    right = np.arange(1000) < 700
    assert metrics.expected_calibration_error(conf, right) == pytest.approx(0.0)


def test_confidence_out_of_range_is_refused():
    with pytest.raises(TinyfixError, match="confidence"):
        metrics.reliability_diagram([1.2], [True])


EVENTS = Events.of([1000, 5000], [1500, 5200], [1, 2])


def test_detection_exactly_at_end_plus_one_second_is_a_hit():
    s = score_detections([2500], [1], EVENTS, 3_600_000)
    assert (s.hits, s.false_accepts) == (1, 0)


def test_detection_one_ms_after_the_tolerance_is_a_false_accept():
    s = score_detections([2501], [1], EVENTS, 3_600_000)
    assert (s.hits, s.false_accepts) == (0, 1)


def test_detection_before_the_event_starts_is_a_false_accept():
    s = score_detections([999], [1], EVENTS, 3_600_000)
    assert (s.hits, s.false_accepts) == (0, 1)


def test_two_detections_of_one_event_are_one_hit_and_one_false_accept():
    s = score_detections([1200, 1400], [1, 1], EVENTS, 3_600_000)
    assert (s.hits, s.false_accepts, s.missed) == (1, 1, 1)
    assert s.false_reject_rate == 0.5
    assert s.false_accepts_per_hour == pytest.approx(1.0)


def test_wrong_class_inside_an_event_is_a_false_accept():
    s = score_detections([1200], [2], EVENTS, 3_600_000)
    assert (s.hits, s.false_accepts) == (0, 1)


def test_overlapping_events_of_one_class_are_hit_earliest_first():
    events = Events.of([0, 400], [1000, 1200], [1, 1])
    s = score_detections([500, 600], [1, 1], events, 60_000)
    assert (s.hits, s.false_accepts) == (2, 0)


def test_false_accepts_per_hour_use_the_stream_duration():
    s = score_detections([100, 200, 300], [3, 3, 3], EVENTS, 1_800_000)
    assert s.false_accepts_per_hour == pytest.approx(6.0)
    assert metrics.stream_duration_ms([1000, 1050, 1_801_000]) == 1_800_000


def test_before_detector_fires_when_top_class_becomes_non_background():
    top = [0, 0, 1, 1, 2, 0, 0, 2, 3, 3]
    t = np.arange(10) * 100
    times, labels = transition_detections(top, t, background=[0, 3])
    assert times.tolist() == [200, 400, 700]
    assert labels.tolist() == [1, 2, 2]


def test_before_detector_counts_a_first_frame_that_is_already_an_event():
    times, labels = transition_detections([2, 2, 0], [0, 50, 100], background=[0])
    assert (times.tolist(), labels.tolist()) == ([0], [2])


def test_alarm_runs_on_normal_frames_are_false_alarms_and_on_anomalies_detections():
    alarm = [0, 1, 1, 0, 0, 1, 0, 0, 1, 0]
    truth = [0, 0, 0, 0, 0, 1, 1, 0, 0, 0]
    t = np.arange(10) * 400_000  # 3.6e6 ms = one hour spans 9 gaps
    out = metrics.alarm_metrics(alarm, t, truth)
    assert out["false_alarms_per_hour"] == pytest.approx(2 / 1.0)
    assert out["detection_rate"] == 1.0


def test_events_that_end_before_they_start_are_refused():
    with pytest.raises(TinyfixError, match="ends before it starts"):
        Events.of([10], [5], [1])
