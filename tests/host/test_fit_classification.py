# SPDX-License-Identifier: Apache-2.0
"""The classification fit recovers a known miscalibration and label shift, measured on
held-out data through the C core, and keeps a stage only when it helps."""

import numpy as np
import pytest
from fit_synthetic import (
    FIELD_PRIORS,
    LOGITS_MODEL,
    PROBS_MODEL,
    SHIFT,
    field_samples,
    int8_logits,
    int8_probs,
    logits_set,
)

from tinyfix.core import Corrector, ModelInfo
from tinyfix.errors import TinyfixError
from tinyfix.fit import FitOptions, fit_classification


@pytest.fixture(scope="module")
def calibration():
    return logits_set(400, seed=1)


@pytest.fixture(scope="module")
def evaluation():
    device, y, bayes = field_samples(3000, seed=2)
    return int8_logits(device), y, bayes


@pytest.fixture(scope="module")
def fitted(core, calibration):
    raw, y = calibration
    return fit_classification(raw, y, LOGITS_MODEL, core=core)


def test_fit_recovers_accuracy_and_calibration_on_new_data(fitted, evaluation):
    raw, y, bayes = evaluation
    ev = fitted.evaluate(raw, y)
    oracle = np.mean(bayes.argmax(axis=1) == y)
    assert ev.after["accuracy"] >= ev.before["accuracy"] + 0.10
    assert ev.after["accuracy"] >= oracle - 0.03
    assert ev.after["macro_f1"] >= ev.before["macro_f1"] + 0.08
    assert ev.before["ece"] > 0.15
    assert ev.after["ece"] < 0.04


def test_fit_finds_the_known_temperature_and_biases(fitted):
    fp = fitted.float_params
    assert fp.inv_temperature == pytest.approx(1 / 3, rel=0.15)
    ideal = -SHIFT / 3 + np.log(FIELD_PRIORS)
    assert np.corrcoef(fp.class_bias, ideal)[0, 1] > 0.95


def test_every_stage_is_reported_with_held_out_figures(fitted):
    names = [s.name for s in fitted.stages]
    assert names == ["temperature", "prior", "bias", "vector", "thresholds"]
    for stage in fitted.stages[:4]:
        assert "held-out" in stage.reason
        assert set(stage.before) >= {"nll", "accuracy", "ece"}
    kept = [s for s in fitted.stages if s.kept]
    assert kept and all(s.after["nll"] < s.before["nll"] for s in kept)
    assert fitted.stages[-1].reason.startswith("not tried")
    assert fitted.summary()["stages_kept"] == fitted.stages_kept


def test_evaluation_is_the_c_core_frame_by_frame(core, fitted, evaluation):
    raw, y, _ = evaluation
    ev = fitted.evaluate(raw[:50], y[:50])
    corr = Corrector(core, LOGITS_MODEL, fitted.params)
    for i in range(50):
        r = corr.process(raw[i])
        assert ev.predictions["pred"][i] == r.decision
        assert ev.predictions["confidence"][i] == r.top_prob / 32768


def test_params_are_sealed_and_accepted_by_the_core(fitted):
    assert fitted.params.validate(LOGITS_MODEL) == 0
    assert fitted.params.c.flags & 0x02


def test_probability_outputs_are_detected_and_fitted_in_the_log_domain(core, evaluation):
    device, y, _ = field_samples(400, seed=1)
    result = fit_classification(int8_probs(device), y, PROBS_MODEL, core=core)
    assert result.output_kind == "probs" and result.params.c.output_kind == 1
    ev_device, ev_y, _ = field_samples(3000, seed=2)
    ev = result.evaluate(int8_probs(ev_device), ev_y)
    assert ev.after["accuracy"] >= ev.before["accuracy"] + 0.06
    assert ev.after["ece"] < ev.before["ece"] - 0.15


def test_thresholds_reach_the_target_precision_on_new_data(core, calibration, evaluation):
    raw, y = calibration
    result = fit_classification(raw, y, LOGITS_MODEL, FitOptions(target_precision=0.92),
                                core=core)
    stage = result.stages[-1]
    assert stage.name == "thresholds" and stage.kept, stage.reason
    ev_raw, ev_y, _ = evaluation
    pred = result.evaluate(ev_raw, ev_y).predictions["pred"]
    decided = pred >= 0
    assert np.mean(pred[decided] == ev_y[decided]) >= 0.89
    assert 0.4 < decided.mean() < 1.0


def test_small_sets_say_which_stages_have_too_few_samples(core):
    raw, y = logits_set(100, seed=3)
    result = fit_classification(raw, y, LOGITS_MODEL, core=core)
    vector = next(s for s in result.stages if s.name == "vector")
    assert not vector.kept and vector.reason == "too few samples: 70 < 100"
    tiny_raw, tiny_y = logits_set(40, seed=3)
    tiny = fit_classification(tiny_raw, tiny_y, LOGITS_MODEL, core=core)
    assert not tiny.stages_kept
    assert all("too few samples for a held-out check: 12 < 20" in s.reason
               for s in tiny.stages)
    assert tiny.params.validate(LOGITS_MODEL) == 0


def test_a_well_calibrated_model_is_left_nearly_alone(core):
    rng = np.random.default_rng(5)
    y = rng.integers(0, 5, 600)
    x = 2.0 * np.eye(5)[y] + rng.normal(size=(600, 5))
    raw = int8_logits(2.0 * x)  # the Bayes posterior for uniform priors: nothing to fix
    result = fit_classification(raw[:400], y[:400], LOGITS_MODEL, core=core)
    ev = result.evaluate(raw[400:], y[400:])
    assert ev.after["accuracy"] >= ev.before["accuracy"] - 0.02
    assert ev.after["ece"] <= ev.before["ece"] + 0.03
    assert result.float_params.inv_temperature == pytest.approx(1.0, abs=0.25)


def test_bad_inputs_are_refused_clearly(core):
    raw, y = logits_set(50, seed=1)
    with pytest.raises(TinyfixError, match="labels have shape"):
        fit_classification(raw, y[:10], LOGITS_MODEL, core=core)
    with pytest.raises(TinyfixError, match="class indices"):
        fit_classification(raw, y + 5, LOGITS_MODEL, core=core)
    with pytest.raises(TinyfixError, match=r"must be \(samples, 5\)"):
        fit_classification(raw[:, :3], y, LOGITS_MODEL, core=core)
    with pytest.raises(TinyfixError, match="unknown classification stage"):
        fit_classification(raw, y, LOGITS_MODEL, FitOptions(stages=("magic",)), core=core)


def test_bias_only_on_request_moves_only_the_offsets(core, calibration, evaluation):
    raw, y = calibration
    result = fit_classification(raw, y, LOGITS_MODEL, FitOptions(stages=("bias_only",)),
                                core=core)
    assert result.stages_kept == ["bias_only"]
    fp = result.float_params
    assert fp.inv_temperature == 1.0 and np.all(fp.class_scale == 1.0)
    ev_raw, ev_y, _ = evaluation
    ev = result.evaluate(ev_raw, ev_y)
    assert ev.after["accuracy"] >= ev.before["accuracy"] + 0.10


def test_float_outputs_on_the_fpu_variant_of_the_core(core_float):
    model = ModelInfo(model_crc=0xF1, n_classes=5, output_type="float32")
    device, y, _ = field_samples(400, seed=1)
    result = fit_classification(device.astype(np.float32), y, model, core=core_float)
    assert result.output_kind == "logits" and result.core.variant == "float"
    ev_device, ev_y, _ = field_samples(3000, seed=2)
    ev = result.evaluate(ev_device.astype(np.float32), ev_y)
    assert ev.after["accuracy"] >= ev.before["accuracy"] + 0.10
    assert ev.after["ece"] < 0.04
