# SPDX-License-Identifier: Apache-2.0
"""Float parameters to the core's Q-formats: any finite value lands in range (clipped and
reported), NaN and infinity are refused by name, in-range values round-trip."""

import math

import numpy as np
import pytest
from fit_synthetic import LOGITS_MODEL, PROBS_MODEL
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyfix.errors import TinyfixError
from tinyfix.fit import AnomalySettings, DeviceLimits, FloatParams, VoteSettings, quantize
from tinyfix.fit.domain import detect_output_kind
from tinyfix.fit.quantize import dequantized

N = LOGITS_MODEL.n_classes
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
per_class = st.lists(finite, min_size=N, max_size=N)


@settings(max_examples=150, deadline=None)
@given(inv_t=finite, scale=per_class, bias=per_class, threshold=per_class, alpha=finite)
def test_any_finite_parameters_land_in_range_and_the_core_accepts_them(
        core, inv_t, scale, bias, threshold, alpha):
    fp = FloatParams(N, "logits", inv_t, np.array(scale), np.array(bias), np.array(threshold),
                     anomaly=AnomalySettings(1, alpha))
    params, clips = quantize(core, LOGITS_MODEL, fp)
    assert params.validate(LOGITS_MODEL) == 0
    back = dequantized(params)
    assert 1 / 256 <= back["inv_temperature"] <= 64
    assert np.all((back["class_bias"] >= -1024) & (back["class_bias"] <= 1024))
    clipped_fields = {c.field for c in clips}
    if not 1 / 256 <= inv_t <= 64:
        assert "inv_temperature" in clipped_fields
    for k, b in enumerate(bias):
        if abs(b) > 1024.0001:
            assert f"class_bias[{k}]" in clipped_fields


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=-1000, max_value=1000), min_size=N, max_size=N),
       st.floats(min_value=0.01, max_value=60))
def test_in_range_values_come_back_within_half_a_step(core, bias, inv_t):
    fp = FloatParams(N, "logits", inv_t, np.ones(N), np.array(bias))
    params, clips = quantize(core, LOGITS_MODEL, fp)
    assert not clips
    back = dequantized(params)
    assert np.all(np.abs(back["class_bias"] - bias) <= 0.5 / 65536 + 1e-12)
    assert abs(back["inv_temperature"] - inv_t) <= 0.5 / 65536 + 1e-12


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("where", ["inv_temperature", "class_bias", "class_threshold",
                                   "alpha"])
def test_nan_and_infinity_are_refused_with_the_field_named(core, bad, where):
    bias, threshold = np.zeros(N), np.zeros(N)
    inv_t, alpha = 1.0, 3.0
    if where == "class_bias":
        bias[2] = bad
    elif where == "class_threshold":
        threshold[4] = bad
    elif where == "alpha":
        alpha = bad
    else:
        inv_t = bad
    fp = FloatParams(N, "logits", inv_t, np.ones(N), bias, threshold,
                     anomaly=AnomalySettings(0, alpha))
    with pytest.raises(TinyfixError, match=f"{where}.*not a finite number"):
        quantize(core, LOGITS_MODEL, fp)


def test_the_set_fits_the_device_sizes_not_the_hosts(core):
    limits = DeviceLimits(max_vote_frames=8, max_anomaly_window=32)
    fp = FloatParams.identity(N).replace(vote=VoteSettings(min_count=12),
                                         anomaly=AnomalySettings(0, window=100, warmup=50))
    params, clips = quantize(core, LOGITS_MODEL, fp, limits)
    assert params.c.vote.min_count == 8 and params.c.anomaly.window == 32
    assert params.c.anomaly.warmup == 32
    assert {c.field for c in clips} == {"vote.min_count", "anomaly.window", "anomaly.warmup"}
    # Even with the stage off the window must fit the device: the device range-checks it.
    idle, _ = quantize(core, LOGITS_MODEL, FloatParams.identity(N), limits)
    assert 2 <= idle.c.anomaly.window <= limits.max_anomaly_window


def test_stage_flags_follow_what_was_fitted(core):
    fp = FloatParams.identity(N, background=(0,))
    assert quantize(core, LOGITS_MODEL, fp)[0].c.flags == 0x02
    fp = fp.replace(class_threshold=np.full(N, 0.5), vote=VoteSettings())
    p, _ = quantize(core, LOGITS_MODEL, fp)
    assert p.c.flags == 0x02 | 0x04 | 0x08
    assert list(p.c.class_flags[0:N]) == [1, 0, 0, 0, 0]
    assert list(p.c.class_threshold[0:N]) == [16384] * N


def test_output_kind_detection():
    rng = np.random.default_rng(0)
    logits = rng.integers(-128, 128, (50, N)).astype(np.int8)
    assert detect_output_kind(logits, LOGITS_MODEL) == "logits"
    p = rng.dirichlet(np.ones(N), 50)
    probs = np.clip(np.round(p * 256) - 128, -128, 127).astype(np.int8)
    assert detect_output_kind(probs, PROBS_MODEL) == "probs"
    one_hot = np.full((3, N), -128, np.int8)
    one_hot[:, 1] = 127  # saturated softmax: 255/256
    assert detect_output_kind(one_hot, PROBS_MODEL) == "probs"
