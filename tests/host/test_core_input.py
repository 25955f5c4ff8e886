# SPDX-License-Identifier: Apache-2.0
"""Input correction before Invoke(): quantization, offset/gain, missing samples, clipping."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from test_core_correct import build

from tinyfix.core import Corrector, ModelInfo, q16

ACCEL = ModelInfo(model_crc=0xACC, n_classes=6, n_channels=3, input_scale=0.0625,
                  input_zero_point=-4)
INPUT, SCALE = 0x20, 0x02
MISSING = -(2**31)


def round_half_away(v):
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


@given(st.lists(st.floats(min_value=-40, max_value=40, allow_nan=False), min_size=3,
                max_size=60).filter(lambda v: len(v) % 3 == 0))
def test_quantizes_round_half_away_and_saturates(core, values):
    x = np.array(values).reshape(-1, 3)
    xq = np.round(x * 65536).astype(np.int64)
    out = Corrector(core, ACCEL).input_correct(xq)
    expected = np.clip(round_half_away(xq / 65536 / 0.0625) + -4, -128, 127)
    # The reciprocal of the scale is a 31-bit fraction; ties may land one step off.
    assert np.max(np.abs(out - expected)) <= 1
    exact = np.abs((xq / 65536 / 0.0625) % 1 - 0.5) > 1e-3
    assert np.array_equal(out[exact], expected[exact])


def test_half_steps_round_away_from_zero_never_truncate(core):
    x = np.array([[0.03125, -0.03125, 0.09375]]) * 65536  # +-0.5 and 1.5 steps
    out = Corrector(core, ACCEL).input_correct(x.astype(np.int64))
    assert list(out[0]) == [1 - 4, -1 - 4, 2 - 4]


def test_offset_and_gain_undo_a_sensor_drift(core):
    rng = np.random.default_rng(0)
    truth = rng.normal(0, 2, (64, 3))
    offset, gain = np.array([0.5, -0.3, 0.2]), np.array([1.1, 0.95, 1.02])
    drifted = truth * gain + offset
    p = build(core, ACCEL, flags=SCALE | INPUT, n_channels=3,
              input__offset=[q16(v) for v in offset],
              input__gain=[q16(1 / g) for g in gain])
    fixed = Corrector(core, ACCEL, p).input_correct(np.round(drifted * 65536))
    clean = Corrector(core, ACCEL).input_correct(np.round(truth * 65536))
    assert np.max(np.abs(fixed.astype(int) - clean)) <= 1


def test_missing_samples_take_the_last_good_value_or_the_mean(core):
    samples = np.array([[1.0, 2.0, 3.0], [1.5, 2.5, 3.5]]) * 65536
    gap = np.array([[MISSING, MISSING, 4.0 * 65536]])
    for mode, expect in ((0, [1.5, 2.5]), (1, None)):
        p = build(core, ACCEL, flags=SCALE | INPUT, n_channels=3, input__fill_mode=mode,
                  input__stats_shift=1)
        corr = Corrector(core, ACCEL, p)
        corr.input_correct(samples.astype(np.int64))
        out = corr.input_correct(gap.astype(np.int64))
        if expect is None:  # running mean with rate 1/2: 1 then 1.25, 2 then 2.25
            expect = [1.25, 2.25]
        assert list(out[0, :2]) == [round(v / 0.0625) - 4 for v in expect]


def test_outliers_are_clipped_at_k_sigma(core):
    rng = np.random.default_rng(3)
    p = build(core, ACCEL, flags=SCALE | INPUT, n_channels=3, input__clip_k_q8=3 * 256,
              input__stats_shift=5)
    corr = Corrector(core, ACCEL, p)
    corr.input_correct(np.round(rng.normal(0, 0.5, (256, 3)) * 65536))
    spike = np.array([[6.0, 0.1, -6.0]]) * 65536
    out = corr.input_correct(spike.astype(np.int64))
    assert out[0, 0] < round(6.0 / 0.0625) - 4 - 40
    assert out[0, 2] > round(-6.0 / 0.0625) - 4 + 40
    assert abs(out[0, 1] - (round(0.1 / 0.0625) - 4)) <= 1
