# SPDX-License-Identifier: Apache-2.0
"""Autoencoders in the C core: the reconstruction error against the golden model, and the
adaptive threshold's seeded baseline, guard band and frozen (fixed) form."""

from __future__ import annotations

import golden
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyfix.core import Corrector, ModelInfo, Params
from tinyfix.errors import CoreError

ANOMALY = 0x10
int8s = st.integers(-128, 127)


def ae_model(n: int, in_scale: float, out_scale: float, zx: int, zy: int) -> ModelInfo:
    return ModelInfo(model_crc=0xAE, n_classes=2, kind="autoencoder", n_outputs=n,
                     output_scale=out_scale, output_zero_point=zy, input_scale=in_scale,
                     input_zero_point=zx)


def anomaly_set(core, model: ModelInfo, **fields) -> Params:
    p = Params.identity(core, model)
    p.c.flags |= ANOMALY
    for name, value in fields.items():
        setattr(p.c.anomaly, name, value)
    return p.seal()


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 700), st.data(), st.sampled_from([0.01, 0.02, 0.0314, 0.5]),
       st.sampled_from([1.0, 0.5, 2.0, 1.37]), st.integers(0, 12))
def test_the_reconstruction_error_is_bit_exact_to_the_golden_model(core, n, data, in_scale,
                                                                    ratio, shift):
    zx, zy = data.draw(int8s), data.draw(int8s)
    model = ae_model(n, in_scale, in_scale * ratio, zx, zy)
    x = data.draw(st.lists(int8s, min_size=n, max_size=n))
    y = data.draw(st.lists(int8s, min_size=n, max_size=n))
    info = core.model_info(model)
    in_q = (info.input_quant.multiplier, info.input_quant.shift, zx)
    out_q = (info.output_quant.multiplier, info.output_quant.shift, zy)
    corrector = Corrector(core, model, anomaly_set(core, model, score_shift=shift))
    got = corrector.process_recon(np.array(x), np.array(y)).anomaly_score
    assert got == golden.recon_score(x, y, in_q, out_q, shift)


def test_equal_scales_give_the_mean_squared_step_difference(core):
    model = ae_model(4, 0.05, 0.05, 0, 0)
    corrector = Corrector(core, model, anomaly_set(core, model))
    r = corrector.process_recon(np.array([0, 0, 0, 0]), np.array([1, -1, 2, 0]))
    assert r.anomaly_score == round(65536 * (1 + 1 + 4) / 4)  # 1.5 squared steps


def test_an_autoencoder_refuses_the_classifier_path_and_needs_matching_counts(core):
    model = ae_model(16, 0.1, 0.1, 0, 0)
    corrector = Corrector(core, model)
    with pytest.raises(CoreError):
        corrector.process(np.zeros(16))
    with pytest.raises(CoreError):
        Corrector(core, ModelInfo(model_crc=1, n_classes=3, kind="autoencoder", n_outputs=16,
                                  input_scale=0.1))


def _run(corrector: Corrector, scores: list[float]) -> list[bool]:
    return [corrector.anomaly_update(round(s * 65536)).anomaly for s in scores]


def test_a_seeded_window_decides_from_the_first_frame_at_the_seed(core):
    model = ae_model(8, 0.1, 0.1, 0, 0)
    p = anomaly_set(core, model, window=16, warmup=8, alpha_q8=3 * 256,
                    seed_mean=10 * 65536, seed_sigma=65536)
    corrector = Corrector(core, model, p)
    first = corrector.anomaly_update(20 * 65536)
    assert first.anomaly  # no warm-up: 20 > 10 + 3 * 1
    assert first.anomaly_mean == 10 * 65536 and first.anomaly_sigma == 65536


def test_a_frozen_threshold_never_moves_and_a_guard_keeps_near_misses_out(core):
    model = ae_model(8, 0.1, 0.1, 0, 0)
    seed = {"window": 32, "warmup": 8, "alpha_q8": 3 * 256, "seed_mean": 10 * 65536,
            "seed_sigma": 65536}
    drifting = [10 + 0.05 * i for i in range(300)]  # the baseline creeps up 15 units
    frozen = Corrector(core, model, anomaly_set(core, model, options=0x02, **seed))
    adaptive = Corrector(core, model, anomaly_set(core, model, **seed))
    fixed_alarms, adaptive_alarms = sum(_run(frozen, drifting)), sum(_run(adaptive, drifting))
    assert fixed_alarms > 200 and adaptive_alarms == 0  # a fixed threshold floods
    # Near-threshold anomalies (2.5 sigma, under alpha 3) raise the baseline without a
    # guard; with a 2-sigma guard they stay out of it.
    near = [10.0, 12.5] * 100
    loose = Corrector(core, model, anomaly_set(core, model, **seed))
    guarded = Corrector(core, model, anomaly_set(core, model, guard_q8=2 * 256, **seed))
    _run(loose, near)
    _run(guarded, near)
    loose_mean = loose.anomaly_update(10 * 65536).anomaly_mean / 65536
    guarded_mean = guarded.anomaly_update(10 * 65536).anomaly_mean / 65536
    assert loose_mean > 11.0 and guarded_mean < 10.5


def test_the_floor_keeps_a_quiet_baseline_from_flagging_wobbles(core):
    model = ae_model(8, 0.1, 0.1, 0, 0)
    wobble = [10.005 if i % 16 == 15 else 10.0 for i in range(160)]
    plain = Corrector(core, model, anomaly_set(core, model, window=16, warmup=8))
    floored = Corrector(core, model, anomaly_set(core, model, window=16, warmup=8,
                                                 min_dev=65536 // 2))
    assert sum(_run(plain, wobble)) > 0 and sum(_run(floored, wobble)) == 0
