# SPDX-License-Identifier: Apache-2.0
"""Stage 0: the re-fitted last layer is TFLM's per-channel int8 FULLY_CONNECTED, bit for bit."""

import golden
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_core_correct import build

from tinyfix.core import Corrector, ModelInfo

HEAD, SCALE = 0x01, 0x02


@settings(max_examples=150, deadline=None)
@given(st.data(), st.integers(min_value=2, max_value=12), st.integers(min_value=1, max_value=48))
def test_head_matches_tflm_fully_connected(core, data, n_classes, n_features):
    feature_zp = data.draw(st.integers(min_value=-128, max_value=127))
    out_zp = data.draw(st.integers(min_value=-128, max_value=127))
    model = ModelInfo(model_crc=0x4EAD, n_classes=n_classes, output_scale=0.1,
                      output_zero_point=out_zp, n_features=n_features,
                      feature_zero_point=feature_zp)
    w = data.draw(st.lists(st.integers(min_value=-127, max_value=127),
                           min_size=n_classes * n_features, max_size=n_classes * n_features))
    bias = data.draw(st.lists(st.integers(min_value=-(2**20), max_value=2**20),
                              min_size=n_classes, max_size=n_classes))
    mults = data.draw(st.lists(st.integers(min_value=2**30, max_value=2**31 - 1),
                               min_size=n_classes, max_size=n_classes))
    shifts = data.draw(st.lists(st.integers(min_value=-20, max_value=4), min_size=n_classes,
                                max_size=n_classes))
    feats = data.draw(st.lists(st.integers(min_value=-128, max_value=127), min_size=n_features,
                               max_size=n_features))
    p = build(core, model, flags=HEAD | SCALE, n_features=n_features, head__multiplier=mults,
              head__shift=shifts, head__bias=bias, head__weights=w)
    r = Corrector(core, model, p).process(np.zeros(n_classes), features=np.array(feats))
    rows = [w[c * n_features:(c + 1) * n_features] for c in range(n_classes)]
    expected = golden.tflm_fully_connected(feats, rows, bias, feature_zp, mults, shifts, out_zp)
    info = core.model_info(model).output_quant
    logits = [golden.mul_q31(q - out_zp, info.multiplier, info.shift + 16) for q in expected]
    assert list(r.logit) == logits


def test_without_features_the_raw_output_is_used(core):
    model = ModelInfo(model_crc=1, n_classes=3, output_scale=0.1, n_features=4)
    p = build(core, model, flags=HEAD | SCALE, n_features=4, head__multiplier=[2**30] * 3,
              head__shift=[0] * 3, head__weights=[0] * 12)
    r = Corrector(core, model, p).process(np.array([5, 9, 1]))
    assert r.top_class == 1
