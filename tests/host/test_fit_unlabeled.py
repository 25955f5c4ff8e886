# SPDX-License-Identifier: Apache-2.0
"""Label-free adaptation: EM finds a known prior shift, input statistics find a known sensor
offset and gain, and on the demo's drifted device the input correction (found without one
field label) gains accuracy through the C core and TFLM."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import softmax

from tinyfix import cli
from tinyfix.capture import quantize_inputs
from tinyfix.core import Corrector, ModelInfo
from tinyfix.demo_data import gesture_data as gd
from tinyfix.errors import TinyfixError
from tinyfix.fit import FitOptions, FloatParams, quantize
from tinyfix.fit.em_prior import em_priors, prior_shift
from tinyfix.fit.input_stats import ChannelStats, ReferenceStats, match_inputs
from tinyfix.fit.unlabeled import LabReference, fit_unlabeled
from tinyfix.twin import ModelGraph, TflmRunner, default_model

MEANS = np.array([[0.0, 0.0], [2.5, 0.0], [0.0, 2.5]])


def _posteriors(n: int, priors: np.ndarray, seed: int) -> np.ndarray:
    """Exact posteriors under uniform source priors of x ~ N(MEANS[y], I)."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=priors)
    x = MEANS[y] + rng.normal(size=(n, 2))
    return softmax(x @ MEANS.T - 0.5 * np.sum(MEANS ** 2, axis=1), axis=1)


def test_em_recovers_a_known_prior_shift_from_calibrated_outputs():
    target = np.array([0.6, 0.3, 0.1])
    found = em_priors(_posteriors(6000, target, seed=1), np.full(3, 1 / 3))
    assert found.converged
    assert np.max(np.abs(found.priors - target)) < 0.03
    # The plain mean of the posteriors is biased toward the source mix; EM is not.
    naive = _posteriors(6000, target, seed=1).mean(axis=0)
    assert np.max(np.abs(naive - target)) > np.max(np.abs(found.priors - target))


def test_no_shift_is_found_where_there_is_none_and_the_bias_is_the_log_ratio():
    found = em_priors(_posteriors(6000, np.full(3, 1 / 3), seed=2), np.full(3, 1 / 3))
    assert np.max(np.abs(found.priors - 1 / 3)) < 0.03
    shift = prior_shift(np.array([0.5, 0.25, 0.25]), np.array([1.0, 1.0, 1.0]))
    assert shift == pytest.approx(np.log([0.5, 0.25, 0.25]) - np.mean(np.log([0.5, 0.25,
                                                                               0.25])))
    with pytest.raises(TinyfixError, match="posteriors"):
        em_priors(np.ones((4, 2)), np.full(3, 1 / 3))


def _windows(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    """Two-channel windows whose spread depends on the class (rest vs motion)."""
    spread = np.where(y == 0, 0.2, 2.0)[:, None, None]
    return np.array([1.0, -3.0]) + spread * rng.normal(size=(y.size, 32, 2))


def test_matching_input_statistics_recovers_a_known_offset_and_gain():
    rng = np.random.default_rng(3)
    y_lab = rng.integers(0, 2, 4000)
    lab = _windows(rng, y_lab)
    y_field = rng.choice(2, size=4000, p=[0.8, 0.2])  # mostly at rest in the field
    offset, gain = np.array([0.7, -0.4]), np.array([0.8, 1.25])
    field = _windows(rng, y_field) / gain + offset  # the sensor: x_field = x / gain + offset
    ref = ReferenceStats.of(lab, y_lab, 2, 2)
    fitted = match_inputs(ChannelStats.of(field, 2), ref.at(np.array([0.8, 0.2])))
    assert fitted.offset == pytest.approx(offset, abs=0.05)
    assert fitted.gain == pytest.approx(gain, rel=0.03)
    # At the lab's own class mix the spread of a resting field looks like a gain change.
    pooled = match_inputs(ChannelStats.of(field, 2), ref.at(None))
    assert np.max(np.abs(pooled.gain - gain)) > 0.3


def test_the_fitted_correction_runs_in_the_c_input_stage(core):
    model = ModelInfo(model_crc=7, n_classes=2, n_channels=2, input_scale=0.05)
    settings = match_inputs(ChannelStats(np.array([0.7, -0.4]), np.array([0.5, 2.0])),
                            ChannelStats(np.array([0.0, 0.0]), np.array([1.0, 1.0])))
    params, clips = quantize(core, model, FloatParams.identity(2).replace(input=settings))
    assert not clips and params.c.flags & 0x20
    x = np.array([[0.7, -0.4], [1.2, 1.6]])
    q = Corrector(core, model, params).input_correct(np.round(x * 65536).astype(np.int32))
    assert q.tolist() == [[0, 0], [20, 20]]  # (x - mean) / sd, in steps of 0.05


@pytest.fixture(scope="module")
def demo(core):
    graph = ModelGraph.load(default_model())
    model = graph.model_info(core)
    runner = TflmRunner(graph)

    def run(x, params):
        return runner.run(quantize_inputs(core, model, x, params))[0]

    lab = gd.generate_classification("lab", 360, gd.SEEDS["lab_val"])
    field = gd.generate_classification("field", 360, gd.SEEDS["field_calib"])
    test = gd.generate_classification("field", 900, gd.SEEDS["field_test"])
    fit = fit_unlabeled(model, run(field["x"], None), field_x=field["x"],
                        lab=LabReference(y=lab["y"], x=lab["x"]), run_model=run, core=core)
    rows = fit.evaluate(run(test["x"], None), test["y"], test["x"], run)
    return fit, rows


def test_each_label_free_set_is_reported_on_its_own(demo):
    fit, rows = demo
    assert set(fit.sets) == {"prior", "inputs", "both"}
    assert set(rows) == {"raw", "prior", "inputs", "both"}
    prior = fit.sets["prior"]
    assert [s.name for s in prior.stages] == ["calibration", "prior"]
    assert "bias-corrected temperature scaling on 360 labelled lab samples" in \
        prior.stages[0].reason
    assert "EM on 360 unlabeled outputs" in prior.stages[1].reason
    assert not prior.corrects_inputs and fit.sets["inputs"].corrects_inputs
    assert fit.sets["both"].params.c.flags & 0x20
    for adapted in fit.sets.values():
        assert adapted.params.validate(fit.model) == 0


def test_the_input_correction_found_without_field_labels_gains_accuracy(demo):
    _, rows = demo
    assert rows["inputs"]["accuracy"] > rows["raw"]["accuracy"] + 0.04
    assert rows["inputs"]["macro_f1"] > rows["raw"]["macro_f1"]


def test_without_lab_labels_the_outputs_are_assumed_calibrated(core):
    model = ModelInfo(model_crc=9, n_classes=3, output_scale=0.1)
    raw = np.clip(np.round(np.log(_posteriors(3000, np.array([0.6, 0.3, 0.1]), 4)) / 0.1),
                  -128, 127).astype(np.int8)
    fit = fit_unlabeled(model, raw, core=core, options=FitOptions(output_kind="logits"))
    assert set(fit.sets) == {"prior"}
    calibration, prior = fit.sets["prior"].stages
    assert not calibration.kept and "uniform training mix" in calibration.reason
    assert prior.kept and "converged" in prior.reason
    bias = fit.sets["prior"].float_params.class_bias
    assert bias == pytest.approx(np.log([0.6, 0.3, 0.1]) - np.mean(np.log([0.6, 0.3, 0.1])),
                                 abs=0.15)


def test_the_command_writes_the_chosen_set_and_a_report(tmp_path):
    lab = gd.generate_classification("lab", 120, gd.SEEDS["lab_val"])
    field = gd.generate_classification("field", 120, gd.SEEDS["field_calib"])
    np.savez(tmp_path / "lab.npz", **lab)
    np.savez(tmp_path / "field.npz", x=field["x"])
    np.savez(tmp_path / "test.npz", **field)
    out = tmp_path / "out"
    assert cli.main(["fit", "--unlabeled", str(tmp_path / "field.npz"), "--reference-data",
                     str(tmp_path / "lab.npz"), "--eval", str(tmp_path / "test.npz"),
                     "--out", str(out)]) == 0
    report = json.loads((out / "unlabeled.json").read_text())
    assert report["written"] == "inputs" and set(report["evaluation"]) == {
        "raw", "prior", "inputs", "both"}
    assert "input-offset" in (out / "tinyfix.overlay").read_text()
    assert "## Evaluation" in (out / "unlabeled.md").read_text()
    assert cli.main(["fit", "--unlabeled", str(tmp_path / "field.npz"), "--data",
                     str(tmp_path / "test.npz"), "--out", str(out)]) == 1
