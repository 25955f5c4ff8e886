# SPDX-License-Identifier: Apache-2.0
"""The head and scale stages for the model shapes beyond one output per class: a residual
head on a subset of the features, and binary models (one output: a logit or a sigmoid
probability, two classes), against the golden model."""

from __future__ import annotations

import math

import golden
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_core_correct import build

from tinyfix.core import Corrector, ModelInfo

HEAD, SCALE = 0x01, 0x02
int8s = st.integers(-128, 127)


def dequant_q16(core, model: ModelInfo, q: int) -> int:
    info = core.model_info(model).output_quant
    return golden.mul_q31(q - model.output_zero_point, info.multiplier, info.shift + 16)


@settings(max_examples=120, deadline=None)
@given(st.data(), st.integers(2, 12), st.integers(1, 300))
def test_a_residual_head_adds_its_columns_to_the_models_own_logits(core, data, n_classes,
                                                                    n_features):
    columns = sorted(data.draw(st.sets(st.integers(0, n_features - 1), min_size=1,
                                       max_size=min(n_features, 40))))
    k = len(columns)
    feature_zp = data.draw(int8s)
    model = ModelInfo(model_crc=0x5E5, n_classes=n_classes, output_scale=0.125,
                      output_zero_point=data.draw(int8s), n_features=n_features,
                      feature_zero_point=feature_zp)
    w = data.draw(st.lists(st.integers(-127, 127), min_size=n_classes * k,
                           max_size=n_classes * k))
    bias = data.draw(st.lists(st.integers(-(2**16), 2**16), min_size=n_classes,
                              max_size=n_classes))
    mults = data.draw(st.lists(st.integers(2**30, 2**31 - 1), min_size=n_classes,
                               max_size=n_classes))
    shifts = data.draw(st.lists(st.integers(-12, 6), min_size=n_classes, max_size=n_classes))
    bitmap = [0] * ((n_features + 7) // 8)
    for f in columns:
        bitmap[f // 8] |= 1 << (f % 8)
    p = build(core, model, flags=HEAD | SCALE, n_features=n_features, head_columns=k,
              head__columns=bitmap, head__weights=w, head__bias=bias,
              head__multiplier=mults, head__shift=shifts)
    assert p.validate(model) == 0
    raw = data.draw(st.lists(int8s, min_size=n_classes, max_size=n_classes))
    feats = data.draw(st.lists(int8s, min_size=n_features, max_size=n_features))
    got = Corrector(core, model, p).process(np.array(raw), features=np.array(feats)).logit
    expected = []
    for r in range(n_classes):
        acc = bias[r] + sum(w[r * k + j] * (feats[f] - feature_zp)
                            for j, f in enumerate(columns))
        base = dequant_q16(core, model, raw[r]) + golden.mul_q31(acc, mults[r], shifts[r])
        expected.append(golden.sat32(base))
    assert list(got) == expected


def test_a_residual_bitmap_must_name_exactly_its_columns(core):
    model = ModelInfo(model_crc=1, n_classes=2, output_scale=0.1, n_features=12)
    ok = build(core, model, flags=HEAD | SCALE, n_features=12, head_columns=2,
               head__columns=[0b11, 0], head__multiplier=[2**30] * 2)
    assert ok.validate(model) == 0
    wrong_count = build(core, model, flags=HEAD | SCALE, n_features=12, head_columns=3,
                        head__columns=[0b11, 0], head__multiplier=[2**30] * 2)
    past_the_end = build(core, model, flags=HEAD | SCALE, n_features=12, head_columns=2,
                         head__columns=[0b1, 0b10000], head__multiplier=[2**30] * 2)
    range_err = core.lib.TINYFIX_ERR_RANGE
    assert wrong_count.validate(model) == range_err == past_the_end.validate(model)


@given(int8s, int8s)
def test_a_binary_logit_is_class_ones_logit_against_zero(core, raw, zp):
    model = ModelInfo(model_crc=0xB1, n_classes=2, kind="binary", n_outputs=1,
                      output_scale=0.0625, output_zero_point=zp)
    r = Corrector(core, model).process(np.array([raw]))
    z = dequant_q16(core, model, raw)
    assert list(r.logit) == [0, z]
    p1 = 1 / (1 + math.exp(-z / 65536))
    assert abs(r.prob[1] / 32768 - p1) < 2e-3 and abs(sum(r.prob) - 32768) <= 2
    assert r.top_class == (1 if z > 0 else 0)


def test_a_sigmoid_output_keeps_its_probability(core):
    model = ModelInfo(model_crc=0xB2, n_classes=2, kind="binary", n_outputs=1,
                      output_scale=1 / 256, output_zero_point=-128)
    p = build(core, model, output_kind=1)  # probabilities: corrected in the log domain
    corrector = Corrector(core, model, p)
    for q in (-120, -60, 0, 64, 120):
        prob = (q + 128) / 256
        r = corrector.process(np.array([q]))
        assert abs(r.prob[1] / 32768 - prob) < 3e-3, q


def test_a_binary_whole_layer_head_has_one_row(core):
    model = ModelInfo(model_crc=0xB3, n_classes=2, kind="binary", n_outputs=1,
                      output_scale=0.1, output_zero_point=0, n_features=3,
                      feature_zero_point=0)
    p = build(core, model, flags=HEAD | SCALE, n_features=3, head__weights=[10, 0, 0],
              head__multiplier=[2**30], head__shift=[0])
    assert p.c.head_rows == 1 and p.validate(model) == 0
    # acc = 10 * 4 = 40, requantized by 0.5: 20 output steps of 0.1 = class 1's logit 2.0.
    r = Corrector(core, model, p).process(np.array([0]), features=np.array([4, 0, 0]))
    assert list(r.logit) == [0, round(2.0 * 65536)]
    raw_vote = build(core, model, flags=SCALE | 0x08, vote__source=1)
    assert raw_vote.validate(model) == core.lib.TINYFIX_ERR_UNSUPPORTED
