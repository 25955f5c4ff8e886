# SPDX-License-Identifier: Apache-2.0
"""Last-layer re-fit (head stage): fitted on the demo model's own TFLM features, scored
through the C core, bit-exact with the model's layer at infinite regularisation, skipped
with a reason for a model it cannot replace, and frame labels of a stream."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.special import softmax
from tflite_edit import per_tensor_last_layer, replace_op

from tinyfix import cli
from tinyfix.capture import quantize_inputs
from tinyfix.core import ModelInfo
from tinyfix.demo_data import gesture_data as gd
from tinyfix.errors import TinyfixError
from tinyfix.fit import (
    DeviceLimits,
    FitOptions,
    FloatParams,
    fit_classification,
    fit_streaming,
    quantize,
)
from tinyfix.fit.frame_labels import LEFT_OUT, frame_labels, model_window_ms
from tinyfix.fit.head import fit_head, layer_state, output_step
from tinyfix.fit.head_lr import fit_layer
from tinyfix.fit.head_source import HeadSource, head_source
from tinyfix.fit.through_core import Q15, run_frames
from tinyfix.metrics import Events
from tinyfix.twin import ModelGraph, TflmRunner, default_model

N_CAL, N_TEST = 600, 1800


@pytest.fixture(scope="module")
def graph() -> ModelGraph:
    return ModelGraph.load(default_model())


@pytest.fixture(scope="module")
def field(core, graph):
    """Calibration and test windows of the drifted field device, through TFLM."""
    model = graph.model_info(core)
    runner = TflmRunner(graph)
    out = {}
    for name, n, seed in (("cal", N_CAL, gd.SEEDS["field_calib"]),
                          ("test", N_TEST, gd.SEEDS["field_test"])):
        d = gd.generate_classification("field", n, seed)
        raw, feats = runner.run(quantize_inputs(core, model, d["x"]))
        out[name] = (raw, feats, d["y"], d["x"])
    return model, out


@pytest.fixture(scope="module")
def fits(core, graph, field):
    model, data = field
    raw, feats, y, _ = data["cal"]
    source = head_source(graph, model, 4096)
    assert isinstance(source, HeadSource)
    output_only = fit_classification(raw, y, model, core=core)
    with_head = fit_classification(raw, y, model, core=core, features=feats, head=source)
    return output_only, with_head


def test_head_refit_beats_output_only_stages_on_new_field_data(field, fits):
    _, data = field
    raw, feats, y, _ = data["test"]
    output_only, with_head = fits
    head = next(s for s in with_head.stages if s.name == "head")
    assert head.kept, head.reason
    assert head.after["nll"] < head.before["nll"]
    assert "against the output-only stages" in head.reason and "flash" in head.reason
    assert "RAM" in head.reason and "the model's own last layer 168 B" in head.reason
    assert with_head.params.c.flags & 0x01 and with_head.uses_features
    before = output_only.evaluate(raw, y).after
    after = with_head.evaluate(raw, y, features=feats).after
    assert after["accuracy"] > before["accuracy"] + 0.01
    assert after["macro_f1"] > before["macro_f1"]
    assert after["ece"] < 0.05


def test_an_evaluation_of_a_head_without_features_is_refused(field, fits):
    _, data = field
    raw, _, y, _ = data["test"]
    with pytest.raises(TinyfixError, match="feature vectors"):
        fits[1].evaluate(raw, y)


def test_without_features_there_is_no_head_stage(fits):
    assert "head" not in [s.name for s in fits[0].stages]


def _own_layer_is_bit_exact(core, graph: ModelGraph, x: np.ndarray) -> None:
    model = graph.model_info(core)
    raw, feats = TflmRunner(graph).run(quantize_inputs(core, model, x))
    source = head_source(graph, model, 4096)
    assert isinstance(source, HeadSource)
    real = source.real_features(feats)
    w, b = fit_layer(real, np.zeros(len(real), dtype=np.int64), source.weights, source.bias,
                     math.inf)
    fp = layer_state(model, source, w, b, *output_step(source, model, real))
    assert np.array_equal(fp.head.weights, graph.final.weights)
    assert np.array_equal(fp.head.bias, graph.final.bias)
    params, _ = quantize(core, model, fp)
    identity, _ = quantize(core, model, FloatParams.identity(model.n_classes))
    through_head = run_frames(core, model, params, np.zeros_like(raw), features=feats)
    as_tflm = run_frames(core, model, identity, raw)
    assert np.array_equal(through_head.logit, as_tflm.logit)


def test_the_head_at_infinite_lambda_is_the_models_own_layer_bit_for_bit(core, graph, field):
    _, data = field
    _own_layer_is_bit_exact(core, graph, data["test"][3][:300])  # per-channel, as bundled


def test_a_per_tensor_last_layer_also_comes_back_bit_for_bit(core, graph, field):
    _, data = field
    variant = ModelGraph.from_bytes(per_tensor_last_layer(graph.data), "per-tensor")
    assert not head_source(variant, variant.model_info(core), 4096).per_channel
    _own_layer_is_bit_exact(core, variant, data["test"][3][:300])


def test_a_model_without_a_final_fully_connected_is_skipped_with_the_reason(core, graph,
                                                                            field):
    model, data = field
    raw, feats, y, _ = data["cal"]
    other = ModelGraph.from_bytes(replace_op(graph.data, "FULLY_CONNECTED", "BATCH_MATMUL"),
                                  "no-fc")
    reason = head_source(other, model, 4096)
    assert isinstance(reason, str) and "does not end with FULLY_CONNECTED" in reason
    result = fit_classification(raw[:200], y[:200], model, core=core, features=feats[:200],
                                head=reason)
    head = next(s for s in result.stages if s.name == "head")
    assert not head.kept and head.reason == f"skipped: {reason}"
    assert not result.params.c.flags & 0x01
    assert "give --model" in head_source(None, model, 4096)
    assert "CONFIG_TINYFIX_MAX_FEATURES" in head_source(graph, model, 16)
    small = FitOptions(device=DeviceLimits(max_features=16))
    result = fit_classification(raw[:200], y[:200], model, small, core, features=feats[:200],
                                head=head_source(graph, model, 4096))
    head = next(s for s in result.stages if s.name == "head")
    assert not head.kept and "at most 16 (CONFIG_TINYFIX_MAX_FEATURES)" in head.reason


def test_a_size_budget_makes_a_residual_on_the_most_useful_features(core, graph, field):
    model, data = field
    raw, feats, y, _ = data["cal"]
    source = head_source(graph, model, 4096)
    budget = model.n_classes * (12 + 6) + 3  # six columns beside the per-row integers
    fitted = fit_head(core, model, source, feats, y, FitOptions(head_budget_bytes=budget),
                      raw)
    head = fitted.head
    assert head.is_residual and head.n_columns <= 6
    assert all(t.variant.bytes(model.n_classes) <= budget for t in fitted.trials)
    assert head.flash_bytes <= budget < source.own_bytes
    assert f"a residual on {head.n_columns} of the 24 features" in fitted.describe()
    with pytest.raises(TinyfixError, match="holds no head of this layer"):
        fit_head(core, model, source, feats, y, FitOptions(head_budget_bytes=3), raw)


def test_a_softmax_models_head_writes_logits_the_scale_stage_restores(core):
    """A model ending in SOFTMAX: the head outputs logits at a coarser step than the
    probability output scale, shifted into the int8 range; probabilities come out right
    to the resolution of int8 logits (as the model's own int8 FULLY_CONNECTED output)."""
    rng = np.random.default_rng(4)
    n_classes, n_features = 4, 8
    model = ModelInfo(model_crc=0x50F7, n_classes=n_classes, output_scale=1 / 256,
                      output_zero_point=-128, n_features=n_features, feature_zero_point=-128)
    w_q = rng.integers(-127, 128, (n_classes, n_features))
    source = HeadSource.of_layer(w_q, rng.integers(-20000, 20000, n_classes), (0.003,) * 4,
                                 0.05, -128, ends_in_softmax=True)
    feats = rng.integers(-128, 128, (500, n_features)).astype(np.int8)
    real = source.real_features(feats)
    fp = layer_state(model, source, source.weights, source.bias,
                     *output_step(source, model, real))
    params, clips = quantize(core, model, fp)
    assert not clips and params.c.output_kind == 0
    run = run_frames(core, model, params, np.zeros((500, n_classes)), features=feats)
    expected = softmax(real @ source.weights.T + source.bias, axis=1)
    error = np.abs(run.prob / Q15 - expected)
    assert error.mean() < 0.005 and error.max() < 0.06
    assert np.mean(run.top_class == expected.argmax(axis=1)) > 0.97


def test_calibrate_captures_features_and_the_device_runs_the_head_as_the_host(tmp_path):
    paths = []
    for name, n, seed in (("cal", 360, gd.SEEDS["field_calib"]),
                          ("eval", 120, gd.SEEDS["field_test"])):
        np.savez(tmp_path / f"{name}.npz", **gd.generate_classification("field", n, seed))
        paths.append(tmp_path / f"{name}.npz")
    out = tmp_path / "out"
    # --push checks every evaluation decision of the device against the host's.
    assert cli.main(["calibrate", "--port", "sim", "--data", str(paths[0]), "--eval",
                     str(paths[1]), "--out", str(out), "--push"]) == 0
    report = json.loads((out / "report.json").read_text())
    head = next(s for s in report["stages"] if s["stage"] == "head")
    assert "held-out" in head["reason"], head["reason"]
    if head["kept"]:
        assert "CONFIG_TINYFIX_MAX_FEATURES=24" in (out / "tinyfix.conf").read_text()


# ---- Frame labels of a stream ------------------------------------------------------------

BG = (0, 3)


def _labels(t: list[int], window: int = 1000, guard: int = 200) -> list[int]:
    events = Events.of([2000, 5000, 5600], [2600, 5400, 6000], [1, 2, 1])
    raw = np.zeros((len(t), 4), dtype=np.int8)
    raw[:, 3] = 5  # the model prefers background class 3 to class 0
    return frame_labels(np.array(t), events, window, raw, BG, guard).tolist()


def test_a_frame_holding_a_whole_event_takes_its_class():
    assert _labels([2600, 2900, 3000]) == [1, 1, 1]


def test_a_frame_far_from_every_event_is_the_models_own_background_class():
    assert _labels([500, 4000]) == [3, 3]


def test_frames_cutting_an_event_or_near_one_are_left_out():
    # 2300 cuts event 1; 3700 starts 100 ms after it ends (inside the 200 ms guard); 1700
    # ends 300 ms before it starts (quiet); 6200 holds event 3 whole but cuts event 2.
    assert _labels([2300, 3700, 1700, 6200]) == [LEFT_OUT, LEFT_OUT, 3, LEFT_OUT]
    assert _labels([1900], guard=200) == [LEFT_OUT]


def test_two_whole_events_of_different_classes_are_left_out_and_the_window_defaults():
    assert _labels([6000], window=1200) == [LEFT_OUT]  # events 2 and 3 both whole
    assert model_window_ms((1, 64, 3), 50.0) == 1280
    with pytest.raises(TinyfixError, match="input window"):
        model_window_ms((1, 10), 50.0)


def test_a_stream_fits_the_head_on_frame_labels_and_tunes_voting_after_it(core, graph):
    model = graph.model_info(core)
    d = gd.generate_stream("field", 900.0, seed=3003)
    raw, feats = TflmRunner(graph).run(quantize_inputs(core, model, d["x"]))
    t = d["t_ms"].astype(np.int64)
    events = Events.of(d["event_start_ms"].astype(np.int64), d["event_end_ms"].astype(np.int64),
                       d["event_label"])
    window = model_window_ms(graph.input.shape, 50.0)
    result = fit_streaming(raw, t, events, model, (0, 5), FitOptions(frame_window_ms=window),
                           core, features=feats, head=head_source(graph, model, 4096))
    head, correction, vote = result.stages
    assert (head.name, correction.name, vote.name) == ("head", "correction", "vote")
    assert "labelled from" in head.reason and "1280 ms window" in head.reason, head.reason
    assert "(starting set" in head.reason and "cross-validated" in head.reason
    assert sum(s.kept for s in (head, correction)) <= 1  # one chain runs before voting
    assert result.uses_features == head.kept
    assert result.params.validate(model) == 0
    ev = result.evaluate(raw, t_ms=t, events=events, features=feats)
    assert set(ev.after) == {"false_accepts_per_hour", "false_reject_rate"}
    without = fit_streaming(raw, t, events, model, (0, 5), core=core, features=feats)
    assert without.stages[0].reason == "skipped: the model's last layer was not given"
