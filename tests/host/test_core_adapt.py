# SPDX-License-Identifier: Apache-2.0
"""On-device adaptation: bounded SGD on the biases, undone by a reset."""

import numpy as np
import pytest
from test_core_correct import build

from tinyfix.core import Corrector, ModelInfo, q16
from tinyfix.errors import CoreError

MODEL = ModelInfo(model_crc=0xADA, n_classes=3, output_scale=0.05, output_zero_point=0)
ADAPT, SCALE = 0x40, 0x02


def test_labels_pull_a_shifted_class_back(core):
    # The sensor now makes class 2 look like class 0 by +1.5 on logit 0.
    p = build(core, MODEL, flags=SCALE | ADAPT, adapt__learning_rate=q16(0.1),
              adapt__clamp=q16(4.0))
    corr = Corrector(core, MODEL, p)
    rng = np.random.default_rng(0)
    shifted = np.array([1.5, 0, 1.0])
    frames = [np.round((rng.normal(0, 0.3, 3) + shifted) / 0.05) for _ in range(300)]
    before = sum(corr.process(f).top_class == 2 for f in frames[:100])
    for f in frames[100:200]:
        corr.process(f)
        corr.adapt(2)
    after = sum(corr.process(f).top_class == 2 for f in frames[200:])
    assert before < 20 and after > 90


def test_bias_change_stays_within_the_clamp_and_reset_restores(core):
    p = build(core, MODEL, flags=SCALE | ADAPT, adapt__learning_rate=q16(1.0),
              adapt__clamp=q16(0.5))
    corr = Corrector(core, MODEL, p)
    raw = np.array([40, 0, 0])
    first = corr.process(raw)
    for _ in range(50):
        corr.process(raw)
        corr.adapt(1)
    assert list(corr.ctx.bias_delta[0:3]) == [-q16(0.5), q16(0.5), -q16(0.5)]
    corr.core.lib.tinyfix_adapt_reset(corr.ctx)
    assert list(corr.process(raw).logit) == list(first.logit)


def test_adaptation_is_refused_when_its_stage_is_off(core):
    corr = Corrector(core, MODEL)
    corr.process(np.array([1, 2, 3]))
    with pytest.raises(CoreError) as exc:
        corr.adapt(0)
    assert exc.value.code == core.lib.TINYFIX_ERR_UNSUPPORTED
