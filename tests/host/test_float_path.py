# SPDX-License-Identifier: Apache-2.0
"""The float path (TINYFIX_USE_FLOAT, for cores with an FPU) agrees with the integer path.

Stated tolerance: probabilities within 4/32768 (1.2e-4); logits within (2 + 2 s) / 65536
plus 1e-5 relative, where s = 1/T x class scale is the factor the logit is multiplied by
(the integer dequantization and log are good to about 2^-16 each, and scaling multiplies
that error); the same top class unless the top two logits are within 2^-14.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_core_correct import build

from tinyfix.core import Corrector


@settings(max_examples=300, deadline=None)
@given(raw=st.lists(st.integers(min_value=-128, max_value=127), min_size=12, max_size=12),
       inv_t=st.integers(min_value=256, max_value=8 * 65536),
       bias=st.lists(st.integers(min_value=-8 * 65536, max_value=8 * 65536), min_size=12,
                     max_size=12),
       kind=st.sampled_from([0, 1]))
def test_float_and_fixed_agree_within_tolerance(core, core_float, model12, raw, inv_t, bias,
                                                kind):
    fields = {"inv_temperature": inv_t, "class_bias": bias, "output_kind": kind}
    fixed = Corrector(core, model12, build(core, model12, **fields)).process(np.array(raw))
    flt = Corrector(core_float, model12, build(core_float, model12, **fields)).process(
        np.array(raw))
    assert np.max(np.abs(fixed.prob - flt.prob)) <= 4
    scale = inv_t / 65536  # class scales are 1 here
    assert np.all(np.abs(fixed.logit - flt.logit) <= 2 + 2 * scale + np.abs(fixed.logit) * 1e-5)
    top2 = np.sort(fixed.logit)[-2:]
    if top2[1] - top2[0] > 4:
        assert fixed.top_class == flt.top_class
