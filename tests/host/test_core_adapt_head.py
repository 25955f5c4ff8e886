# SPDX-License-Identifier: Apache-2.0
"""On-device adaptation of the re-fitted last layer: on a drifted stream run by the real TFLM
kernels, labelled frames move the head's weights (bounded) and later frames gain; a reset
returns to the flashed layer bit for bit."""

import numpy as np
import pytest

from tinyfix.core import Core, Corrector, q16
from tinyfix.demo_data import gesture_data as gd
from tinyfix.twin import ModelGraph, TflmRunner, default_model

ADAPT = 0x40


@pytest.fixture(scope="module")
def field_stream():
    graph = ModelGraph.load(default_model())
    core = Core()
    model = graph.model_info(core)
    d = gd.generate_classification("field", n=900, seed=gd.SEEDS["field_test"])
    x = Corrector(core, model).input_correct(
        np.round(d["x"].reshape(-1, 3) * 65536).astype(np.int64)).reshape(d["x"].shape)
    raw, feats = TflmRunner(graph).run(x)
    return core, graph, model, raw, feats, d["y"]


def head_corrector(core, graph, model, lr: float, clamp: int = 32) -> Corrector:
    params = graph.final.head_params(core, model)
    params.c.flags |= ADAPT
    params.c.adapt.learning_rate = 0  # only the head's weights move in this test
    params.c.adapt.head_learning_rate = q16(lr)
    params.c.adapt.head_clamp = clamp
    return Corrector(core, model, params.seal())


def test_labelled_frames_improve_later_frames_within_the_clamp(field_stream):
    core, graph, model, raw, feats, y = field_stream
    fixed = head_corrector(core, graph, model, lr=0.0)
    learner = head_corrector(core, graph, model, lr=0.05, clamp=32)
    for i in range(600):  # the device gets a label for each of its first 600 frames
        learner.process(raw[i], features=feats[i])
        learner.adapt(int(y[i]))
    later = range(600, len(y))
    before = np.mean([fixed.process(raw[i], features=feats[i]).top_class == y[i] for i in later])
    after = np.mean([learner.process(raw[i], features=feats[i]).top_class == y[i] for i in later])
    assert after > before + 0.03, (before, after)
    delta = np.array(list(learner.ctx.head_delta[0:model.n_classes * model.n_features]))
    assert np.abs(delta).max() <= 32 * 256 and np.abs(delta).max() > 0


def test_reset_returns_to_the_flashed_layer_exactly(field_stream):
    core, graph, model, raw, feats, y = field_stream
    learner = head_corrector(core, graph, model, lr=0.2)
    first = learner.process(raw[0], features=feats[0]).logit
    for i in range(50):
        learner.process(raw[i], features=feats[i])
        learner.adapt(int(y[i]))
    assert list(learner.process(raw[0], features=feats[0]).logit) != list(first)
    core.lib.tinyfix_adapt_reset(learner.ctx)
    assert list(learner.process(raw[0], features=feats[0]).logit) == list(first)
    # And the flashed layer is the model's own: the same logits as its raw output.
    assert list(first) == list(Corrector(core, model).process(raw[0]).logit)


def test_a_label_without_features_moves_no_weight(field_stream):
    core, graph, model, raw, feats, y = field_stream
    learner = head_corrector(core, graph, model, lr=0.2)
    learner.process(raw[0], features=feats[0])
    learner.process(raw[1])  # a frame without features: the label refers to it
    learner.adapt(int(y[1]))
    assert not any(learner.ctx.head_delta[0:model.n_classes * model.n_features])
