# SPDX-License-Identifier: Apache-2.0
"""Drift monitor: running statistics against the figures stored with the parameters."""

import numpy as np
import pytest
from test_core_correct import build

from tinyfix.core import Corrector, ModelInfo, q16

MODEL = ModelInfo(model_crc=0xD21F, n_classes=3, output_scale=0.1, output_zero_point=0,
                  n_channels=2, input_scale=0.05, input_zero_point=0)
MONITOR, SCALE = 0x80, 0x02


def monitor(core, **fields):
    base = {"flags": SCALE | MONITOR, "monitor__rate_shift": 4, "monitor__min_frames": 32,
            "monitor__ref_conf": 26000, "monitor__conf_drop": 6000,
            "monitor__prior_tv": 8000, "monitor__ref_prior": [10923, 10923, 10922],
            "monitor__input_z_q8": 3 * 256, "monitor__ref_in_mean": [0, q16(1.0)],
            "monitor__ref_in_std": [q16(0.5), q16(0.5)]}
    return Corrector(core, MODEL, build(core, MODEL, **{**base, **fields}))


def status(core, corr):
    out = core.ffi.new("struct tinyfix_drift *")
    assert core.lib.tinyfix_drift_status(corr.ctx, out) == 0
    return out


def confident(rng, n, classes=(0, 1, 2)):
    for _ in range(n):
        raw = np.full(3, -20)
        raw[rng.choice(classes)] = 40
        yield raw


def test_a_matching_stream_raises_no_flag(core):
    rng = np.random.default_rng(0)
    corr = monitor(core)
    for raw in confident(rng, 300):
        corr.process(raw)
    s = status(core, corr)
    assert s.frames == 300 and s.flags == 0 and not s.newly_advised
    assert abs(s.mean_conf - 32768 * 0.997) < 200


def test_a_shifted_class_mix_is_flagged_once(core):
    rng = np.random.default_rng(1)
    corr = monitor(core)
    for raw in confident(rng, 300, classes=(0, 0, 0, 1)):
        corr.process(raw)
    first, again = status(core, corr), status(core, corr)
    assert first.flags == core.lib.TINYFIX_DRIFT_ADVISED | core.lib.TINYFIX_DRIFT_PRIOR
    assert first.prior_tv > 8000
    assert first.newly_advised and not again.newly_advised and again.flags == first.flags


def test_falling_confidence_is_flagged(core):
    corr = monitor(core)
    for i in range(200):
        raw = np.array([5, 4, 3])
        raw[i % 3] += 2
        corr.process(raw)
    s = status(core, corr)
    assert s.flags & core.lib.TINYFIX_DRIFT_CONF
    assert s.mean_conf < 26000 - 6000


def test_a_moved_input_channel_is_flagged(core):
    corr = monitor(core)
    rng = np.random.default_rng(2)
    window = np.stack([rng.normal(0, 0.5, 64), rng.normal(3.0, 0.5, 64)], axis=1)
    corr.input_correct(np.round(window * 65536).astype(np.int64))
    corr.process(np.array([40, -20, -20]))
    s = status(core, corr)
    assert s.input_z_q8 > 3 * 256  # channel 1 sits 4 sigma above its reference
    assert s.flags & core.lib.TINYFIX_DRIFT_INPUT == 0  # too few frames to judge yet
    for raw in confident(rng, 40):
        corr.process(raw)
    assert status(core, corr).flags & core.lib.TINYFIX_DRIFT_INPUT


def test_monitor_alone_leaves_the_inputs_unchanged(core):
    window = np.round(np.array([[0.3, 1.2], [-0.7, 0.9]]) * 65536).astype(np.int64)
    plain = Corrector(core, MODEL).input_correct(window)
    assert np.array_equal(monitor(core).input_correct(window), plain)


def test_status_is_refused_without_the_stage(core):
    out = core.ffi.new("struct tinyfix_drift *")
    assert (core.lib.tinyfix_drift_status(Corrector(core, MODEL).ctx, out)
            == core.lib.TINYFIX_ERR_UNSUPPORTED)


@pytest.mark.parametrize("field", ["monitor__rate_shift", "monitor__ref_conf"])
def test_out_of_range_monitor_fields_are_refused(core, field):
    bad = build(core, MODEL, **{field: 40000 if field.endswith("conf") else 0})
    assert Corrector(core, MODEL).try_set_params(bad) == core.lib.TINYFIX_ERR_RANGE
