# SPDX-License-Identifier: Apache-2.0
"""alpha of the adaptive threshold for a false-alarm target, through the C core."""

import numpy as np
import pytest

from tinyfix.core import ModelInfo
from tinyfix.fit import FitOptions, fit_anomaly

MODEL = ModelInfo(model_crc=0xA0A1, n_classes=2, output_scale=0.05, output_zero_point=0)


def drifting_scores(frames: int, seed: int):
    """Class-1 logit: a slowly drifting baseline with heavy-tailed noise and rare bumps."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames, dtype=np.int64) * 1000
    score = 1.0 + np.linspace(0, 2.5, frames) + rng.standard_t(4, frames) * 0.12
    anomalous = np.zeros(frames, dtype=bool)
    for start in rng.choice(frames - 5, frames // 150, replace=False):
        anomalous[start:start + 3] = True
    score[anomalous] += 1.6
    raw = np.zeros((frames, 2), dtype=np.int8)
    raw[:, 1] = np.clip(np.round(score / MODEL.output_scale), -128, 127)
    return raw, t, anomalous


def test_alpha_meets_the_false_alarm_target_on_new_data_and_still_detects(core):
    raw, t, truth = drifting_scores(3000, seed=1)
    options = FitOptions(target_false_alarms_per_hour=3.0)
    result = fit_anomaly(raw, t, MODEL, class_index=1, anomalous=truth, options=options,
                         core=core)
    (stage,) = result.stages
    new_raw, new_t, new_truth = drifting_scores(3000, seed=2)
    ev = result.evaluate_anomaly(new_raw, new_t, new_truth)
    assert stage.kept, stage.reason
    assert ev.before["false_alarms_per_hour"] > 10  # alpha 3 fires on the heavy tails
    assert ev.after["false_alarms_per_hour"] <= 6
    assert ev.after["detection_rate"] >= 0.8
    assert result.params.c.flags & 0x10 and result.params.c.anomaly.class_index == 1
    assert result.params.c.anomaly.alpha_q8 % 64 == 0  # a grid value, exact in Q8.8


def test_too_short_a_stream_keeps_the_default_alpha(core):
    raw, t, truth = drifting_scores(300, seed=1)
    result = fit_anomaly(raw, t, MODEL, class_index=1, anomalous=truth, core=core)
    (stage,) = result.stages
    assert not stage.kept and stage.reason.startswith("too few samples: 90 < 200")
    assert result.params.c.anomaly.alpha_q8 == 768


def test_anomaly_class_out_of_range_is_refused(core):
    raw, t, _ = drifting_scores(300, seed=1)
    with pytest.raises(Exception, match="anomaly class index"):
        fit_anomaly(raw, t, MODEL, class_index=2, core=core)
