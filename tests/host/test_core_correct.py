# SPDX-License-Identifier: Apache-2.0
"""Stages 1-3: scaling, softmax and thresholds, bit-exact to the golden model."""

import golden
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyfix.core import Corrector, ModelInfo, Params, q16

int8s = st.integers(min_value=-128, max_value=127)


def build(core, model, **fields):
    """A sealed set: identity, then the given fields (a__b sets field b of a). A set with
    features gets one head row per model output unless head_rows is given."""
    p = Params.identity(core, model)
    if fields.get("n_features"):
        fields = {"head_rows": model.head_rows, **fields}
    for name, value in fields.items():
        target = p.c
        *path, last = name.split("__")
        for part in path:
            target = getattr(target, part)
        if isinstance(value, list):
            arr = getattr(target, last)
            for i, v in enumerate(value):
                arr[i] = v
        else:
            setattr(target, last, value)
    return p.seal()


def golden_of(core, model, params, raw):
    info = core.model_info(model)
    return golden.correct_frame(golden.GoldenParams.from_c(params.c), list(raw),
                                info.output_quant.multiplier, info.output_quant.shift,
                                info.output_quant.zero_point)


@settings(max_examples=300)
@given(raw=st.lists(int8s, min_size=12, max_size=12),
       inv_t=st.integers(min_value=256, max_value=64 * 65536),
       scale=st.lists(st.integers(min_value=0, max_value=64 * 65536), min_size=12, max_size=12),
       bias=st.lists(st.integers(min_value=-1024 * 65536, max_value=1024 * 65536),
                     min_size=12, max_size=12),
       kind=st.sampled_from([0, 1]))
def test_correction_is_bit_exact_to_golden(core, model12, raw, inv_t, scale, bias, kind):
    p = build(core, model12, inv_temperature=inv_t, class_scale=scale, class_bias=bias,
              output_kind=kind)
    r = Corrector(core, model12, p).process(np.array(raw))
    logits, probs, top, decision = golden_of(core, model12, p, raw)
    assert list(r.logit) == logits
    assert list(r.prob) == probs
    assert (r.top_class, r.decision) == (top, decision)


@given(st.lists(int8s, min_size=12, max_size=12))
def test_identity_keeps_the_raw_argmax_and_a_true_softmax(core, model12, raw):
    r = Corrector(core, model12).process(np.array(raw))
    real = (np.array(raw) - model12.output_zero_point) * model12.output_scale
    assert r.top_class == int(np.argmax(real))
    expected = np.exp(real - real.max()) / np.exp(real - real.max()).sum()
    assert np.max(np.abs(r.prob / 32768 - expected)) < 2e-4
    assert abs(int(r.prob.sum()) - 32768) <= 12


@given(st.sampled_from([-128, 127]), st.integers(min_value=0, max_value=11),
       st.sampled_from([-1024, 1024]))
def test_extreme_outputs_and_parameters_saturate_without_wrapping(core, model12, edge, hot,
                                                                   bias):
    raw = np.full(12, -128 if edge == 127 else 127)
    raw[hot] = edge
    p = build(core, model12, inv_temperature=64 * 65536, class_scale=[64 * 65536] * 12,
              class_bias=[bias * 65536] * 12)
    r = Corrector(core, model12, p).process(raw)
    # Equal scales keep the raw order: a wrapped int32 would flip a sign and break it.
    order = np.argsort(raw, kind="stable")
    assert np.all(np.diff(r.logit[order]) >= 0)
    assert r.logit[int(np.argmax(raw))] == r.logit.max()
    assert abs(int(r.prob.sum()) - 32768) <= 12


@given(st.lists(int8s, min_size=12, max_size=12), st.integers(min_value=0, max_value=11),
       st.integers(min_value=1, max_value=60))
def test_raising_one_raw_output_never_lowers_its_probability(core, model12, raw, c, step):
    corr = Corrector(core, model12)
    low = corr.process(np.array(raw)).prob[c]
    raised = list(raw)
    raised[c] = min(127, raw[c] + step)
    assert corr.process(np.array(raised)).prob[c] >= low


def test_higher_temperature_lowers_top_confidence(core, model12):
    raw = np.array([40, -20, 5, 0, 0, 0, -5, 3, 2, 1, 0, 0])
    cool = Corrector(core, model12).process(raw)
    p = build(core, model12, inv_temperature=q16(0.5))
    warm = Corrector(core, model12, p).process(raw)
    assert warm.top_class == cool.top_class
    assert warm.top_prob < cool.top_prob


def test_bias_moves_the_decision(core, model12):
    raw = np.array([30, 28, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    bias = [0] * 12
    bias[1] = q16(1.0)
    p = build(core, model12, class_bias=bias)
    assert Corrector(core, model12).process(raw).top_class == 0
    assert Corrector(core, model12, p).process(raw).top_class == 1


def test_threshold_below_gives_no_decision(core, model12):
    raw = np.array([20, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    r0 = Corrector(core, model12).process(raw)
    thr = [0] * 12
    thr[r0.top_class] = r0.top_prob + 1
    p = build(core, model12, flags=0x02 | 0x04, class_threshold=thr)
    r = Corrector(core, model12, p).process(raw)
    assert r.decision == -1 and r.top_class == r0.top_class
    thr[r0.top_class] = r0.top_prob
    p = build(core, model12, flags=0x02 | 0x04, class_threshold=thr)
    assert Corrector(core, model12, p).process(raw).decision == r0.top_class


def test_probability_outputs_are_corrected_in_the_log_domain(core):
    # An int8 softmax output (scale 1/256, zero point -128), like micro_speech's.
    model = ModelInfo(model_crc=1, n_classes=4, output_scale=1 / 256, output_zero_point=-128)
    probs = np.array([0.6, 0.3, 0.1, 0.0])
    raw = np.clip(np.round(probs * 256) - 128, -128, 127).astype(np.int8)
    p = build(core, model, output_kind=1)
    r = Corrector(core, model, p).process(raw)
    # log() then softmax gives the probabilities back; the empty bin is floored, not -inf.
    assert np.allclose(r.prob[:3] / 32768, probs[:3], atol=0.01)
    assert 0 < r.prob[3] < 200


@given(st.lists(st.integers(min_value=-32768, max_value=32767), min_size=5, max_size=5))
def test_int16_outputs_match_golden(core, raw):
    model = ModelInfo(model_crc=2, n_classes=5, output_type="int16", output_scale=0.001,
                      output_zero_point=0)
    r = Corrector(core, model).process(np.array(raw))
    logits, probs, top, _ = golden_of(core, model, Params.identity(core, model), raw)
    assert list(r.logit) == logits and list(r.prob) == probs and r.top_class == top


def test_float32_outputs_are_accepted(core):
    model = ModelInfo(model_crc=3, n_classes=3, output_type="float32")
    r = Corrector(core, model).process(np.array([0.5, 2.0, -1.0], dtype=np.float32))
    assert list(r.logit) == [32768, 131072, -65536]
    assert r.top_class == 1


def test_int16_extremes_saturate_the_q16_logit(core):
    # (q - zp) spans 65535 steps of 0.99: beyond Q16.16's 32768, so the logit saturates.
    model = ModelInfo(model_crc=4, n_classes=2, output_type="int16", output_scale=0.99,
                      output_zero_point=-32768)
    r = Corrector(core, model).process(np.array([32767, -32768]))
    logits, _, top, _ = golden_of(core, model, Params.identity(core, model), [32767, -32768])
    assert list(r.logit) == logits == [2**31 - 1, 0]
    assert r.top_class == top == 0
