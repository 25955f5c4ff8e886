# SPDX-License-Identifier: Apache-2.0
"""Stage 5: adaptive thresholds over a sliding window."""

import golden
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_core_correct import build

from tinyfix.core import Corrector, ModelInfo

MODEL = ModelInfo(model_crc=0xA11, n_classes=2, output_scale=0.05, output_zero_point=0)
ANOMALY, SCALE = 0x10, 0x02


def corrector(core, window=32, warmup=8, alpha=3 * 256, mode=0, options=0):
    p = build(core, MODEL, flags=SCALE | ANOMALY, anomaly__window=window,
              anomaly__warmup=warmup, anomaly__alpha_q8=alpha, anomaly__mode=mode,
              anomaly__options=options, anomaly__class_index=1)
    return Corrector(core, MODEL, p)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=-(2**24), max_value=2**24), min_size=1, max_size=200),
       st.integers(min_value=2, max_value=64), st.integers(min_value=1, max_value=2000),
       st.sampled_from([0, 1, 2]), st.booleans())
def test_matches_golden_exact_window_statistics(core, scores, window, alpha, mode, learn):
    warmup = min(window, 4)
    corr = corrector(core, window, warmup, alpha, mode, int(learn))
    ref = golden.AdaptiveThreshold(window, warmup, alpha, mode, learn)
    for s in scores:
        r = corr.anomaly_update(s)
        assert (r.anomaly, r.anomaly_mean, r.anomaly_sigma) == ref.step(s)


def test_flags_a_spike_after_warmup_and_follows_a_slow_drift(core):
    rng = np.random.default_rng(1)
    corr = corrector(core, window=64, warmup=16, alpha=4 * 256)
    t = np.arange(2000)
    baseline = 2.0 + t * 0.002  # drifts by 4.0 over the run: a fixed threshold would fire
    scores = baseline + rng.normal(0, 0.1, t.size)
    spikes = {500, 1200, 1800}
    for i in spikes:
        scores[i] += 2.0
    flagged = {i for i, s in enumerate(scores) if corr.anomaly_update(int(s * 65536)).anomaly}
    assert spikes <= flagged
    assert len(flagged - spikes) <= 2


def test_low_mode_ignores_high_values(core):
    corr = corrector(core, window=16, warmup=8, alpha=2 * 256, mode=1)
    for i in range(16):
        corr.anomaly_update(65536 + (i % 3) * 1000)
    assert not corr.anomaly_update(10 * 65536).anomaly
    assert corr.anomaly_update(-10 * 65536).anomaly


def test_process_uses_the_configured_logit(core):
    corr = corrector(core, window=16, warmup=4, alpha=3 * 256)
    for i in range(8):
        assert not corr.process(np.array([0, 10 + (i % 2)])).anomaly
    assert corr.process(np.array([0, 100])).anomaly
