# SPDX-License-Identifier: Apache-2.0
"""The float model as a reference (issue 16): soft targets in every fitter, the LiteRT
runner on float models of every zoo shape, the quantization error measure, the
"quantization" stage, teacher labels for unlabeled field data, and the commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fit_synthetic import LOGITS_MODEL, N_CLASSES, field_samples, int8_logits
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import softmax

from tinyfix import cli
from tinyfix.errors import TinyfixError
from tinyfix.fit import FitOptions, FloatParams, fit_classification
from tinyfix.fit.domain import scaling_inputs
from tinyfix.fit.head_lr import fit_layer
from tinyfix.fit.nll import fit_affine
from tinyfix.fit.quant_error import measure
from tinyfix.fit.targets import kl_divergence, target_matrix
from tinyfix.reference import ReferenceModel, ReferenceRun
from tinyfix.twin import ModelGraph
from tinyfix.zoo import build

MODELS = Path(__file__).resolve().parents[2] / "models" / "gesture"
FLOAT, INT8 = MODELS / "gesture_float.tflite", MODELS / "gesture_int8.tflite"
CLASSIFIERS = ("fc_small", "fc_softmax", "ds_cnn", "person_detect", "classes_64",
               "binary_logit", "binary_sigmoid", "float_io", "int16x8", "stateful")


# ---- Soft targets ----------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_one_hot_soft_targets_fit_exactly_as_labels(seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(60, 4)) * 2
    y = rng.integers(0, 4, 60)
    kw = {"scale": "per_class", "bias": True, "l2": 1.0,
          "factor_bounds": [(0.0, 64.0)] * 4, "offset_bounds": [(-50.0, 50.0)] * 4}
    hard = fit_affine(z, y, np.ones(4), np.zeros(4), **kw)
    soft = fit_affine(z, target_matrix(y, 4), np.ones(4), np.zeros(4), **kw)
    np.testing.assert_allclose(soft.factor, hard.factor, atol=1e-6)
    np.testing.assert_allclose(soft.offset, hard.offset, atol=1e-6)


def test_soft_targets_recover_the_teachers_own_scale_and_offsets():
    """A student whose logits are the teacher's, distorted by a per-class scale and offset,
    gets exactly that distortion undone by vector scaling fitted to the teacher's
    probabilities: no labels are needed, only the teacher."""
    rng = np.random.default_rng(3)
    teacher = rng.normal(size=(4000, 4)) * 2.5
    scale, offset = np.array([0.5, 1.3, 0.8, 1.0]), np.array([1.0, -0.5, 0.25, 0.0])
    student = (teacher - offset) / scale
    fit = fit_affine(student, softmax(teacher, axis=1), np.ones(4), np.zeros(4),
                     scale="per_class", bias=True, l2=0.0, factor_bounds=[(0.0, 64.0)] * 4,
                     offset_bounds=[(-50.0, 50.0)] * 4)
    np.testing.assert_allclose(fit.factor, scale, rtol=0.02)
    offsets = fit.offset - fit.offset.mean()
    np.testing.assert_allclose(offsets, offset - offset.mean(), atol=0.03)


def test_a_layer_fitted_to_soft_targets_reproduces_the_teachers_layer():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3000, 6))
    w_true, b_true = rng.normal(size=(3, 6)), rng.normal(size=3)
    probs = softmax(x @ w_true.T + b_true, axis=1)
    w, b = fit_layer(x, probs, np.zeros((3, 6)), np.zeros(3), lam=1e-6)
    got = softmax(x @ w.T + b, axis=1)
    assert kl_divergence(probs, np.log(got)) < 1e-3


def test_soft_targets_that_are_not_probabilities_are_refused():
    with pytest.raises(TinyfixError, match="sum to 1"):
        target_matrix(np.full((3, 2), 0.7), 2)
    with pytest.raises(TinyfixError, match="classes"):
        target_matrix(np.full((3, 3), 1 / 3), 2)


# ---- The reference model runner --------------------------------------------------------

@pytest.mark.parametrize("name", CLASSIFIERS)
def test_the_float_twin_of_every_zoo_shape_runs_and_matches_the_int8_model(name):
    zm = build(name, seed=0)
    ref = ReferenceModel.from_bytes(zm.float_tflite, f"{name}_float.tflite")
    ref.check_graph(ModelGraph.from_bytes(zm.tflite, f"{name}_int8.tflite"))
    x, _ = zm.dataset(n=12, seed=1, drift="lab")
    run = ref.run(x)
    np.testing.assert_allclose(run.outputs, zm.forward_float(x).reshape(run.outputs.shape),
                               atol=1e-4)
    assert run.probs.shape == (12, zm.n_classes)
    np.testing.assert_allclose(run.probs.sum(axis=1), 1.0, atol=1e-6)
    assert run.features is not None and run.features.shape[1] == ref.n_features


def test_a_float_model_of_another_network_is_refused_with_what_differs():
    other = ReferenceModel.from_bytes(build("ds_cnn", seed=0).float_tflite, "ds_cnn_float")
    with pytest.raises(TinyfixError, match=r"inputs of shape .* not the same network"):
        other.check_graph(ModelGraph.load(INT8))
    fewer = ReferenceModel.from_bytes(build("fc_small", seed=0, n_classes=3).float_tflite,
                                      "fc3")
    small = ModelGraph.from_bytes(build("fc_small", seed=0).tflite, "fc_small")
    with pytest.raises(TinyfixError, match=r"output.*not the same classes"):
        fewer.check_graph(small)


def test_an_int8_model_given_as_the_reference_is_refused():
    with pytest.raises(TinyfixError, match="not a float model"):
        ReferenceModel.load(INT8)


def test_an_autoencoder_has_no_reference_stage():
    zm = build("autoencoder", seed=0)
    ref = ReferenceModel.from_bytes(zm.float_tflite, "ae_float")
    with pytest.raises(TinyfixError, match="for classifiers"):
        ref.check_graph(ModelGraph.from_bytes(zm.tflite, "ae"))


# ---- Measure and compensate ------------------------------------------------------------

def _distorted(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, ReferenceRun]:
    """A float model's logits and an int8 model that adds a per-class offset and a per-class
    gain error to them before rounding (as a quantized layer's bias and scale rounding do),
    plus the labels."""
    float_logits, y, _ = field_samples(n, seed)
    float_logits = float_logits / 3.0
    gain = np.array([1.0, 0.7, 1.2, 0.9, 1.1])
    offset = np.array([0.0, 0.8, -0.6, 0.3, -0.4])
    raw = int8_logits(float_logits * gain + offset)
    run = ReferenceRun(float_logits, softmax(float_logits, axis=1), None, "")
    return raw, y, run


def test_the_measure_finds_a_known_per_class_offset(core):
    """int8 = round(float + offset): the measured error is -offset per class, its spread
    the rounding's (a quarter step, LSB / sqrt(12))."""
    float_logits, y, _ = field_samples(3000, 1)
    float_logits = float_logits / 3.0
    offset = np.array([0.0, 0.8, -0.6, 0.3, -0.4])
    raw = int8_logits(float_logits + offset)
    run = ReferenceRun(float_logits, softmax(float_logits, axis=1), None, "")
    q = measure(core, LOGITS_MODEL, "logits", raw, run, tuple("abcde"), y)
    np.testing.assert_allclose([c.mean for c in q.classes], -offset, atol=0.01)
    assert all(c.sd < 0.25 / np.sqrt(12) + 0.01 for c in q.classes)
    assert 0.5 < q.agreement < 1.0
    assert q.float_accuracy is not None and q.int8_accuracy is not None
    assert q.features is None and "not captured" in q.feature_note


def test_the_quantization_stage_brings_the_int8_model_back_to_the_float_one(core):
    raw, y, run = _distorted(1500, 2)
    raw_ev, _, run_ev = _distorted(1500, 3)
    options = FitOptions(stages=("temperature",))
    result = fit_classification(raw, y, LOGITS_MODEL, options, core, reference=run.probs)
    stage = result.stages[0]
    assert stage.name == "quantization" and stage.kept, stage.reason
    assert stage.after["kl"] < 0.5 * stage.before["kl"]
    assert result.quantization_params is not None
    from tinyfix.fit.quant_error import agreement

    base = result.baseline_params()
    before = agreement(core, LOGITS_MODEL, base, raw_ev, run_ev)
    after = agreement(core, LOGITS_MODEL, result.quantization_params, raw_ev, run_ev)
    assert after["agreement"] > before["agreement"] + 0.03
    assert after["kl"] < 0.5 * before["kl"]


def test_a_teacher_that_agrees_already_keeps_nothing(core):
    float_logits, y, _ = field_samples(800, 4)
    raw = int8_logits(float_logits)
    teacher = softmax(scaling_inputs(raw, LOGITS_MODEL, "logits"), axis=1)
    result = fit_classification(raw, y, LOGITS_MODEL, FitOptions(stages=("temperature",)),
                                core, reference=teacher)
    assert not result.stages[0].kept
    assert result.quantization_params is None


def test_teacher_probabilities_take_the_place_of_labels(core):
    """Soft targets alone (no labels): the chain is fitted to the teacher, scored against
    it, and its decisions come closer to the teacher's on new data."""
    raw, _, run = _distorted(1500, 5)
    raw_ev, _, run_ev = _distorted(1500, 6)
    result = fit_classification(raw, run.probs, LOGITS_MODEL, FitOptions(), core)
    assert any(s.kept for s in result.stages)
    identity = FloatParams.identity(N_CLASSES, "logits")
    from tinyfix.fit.quant_error import agreement
    from tinyfix.fit.quantize import quantize

    base = agreement(core, LOGITS_MODEL, quantize(core, LOGITS_MODEL, identity)[0], raw_ev,
                     run_ev)
    after = agreement(core, LOGITS_MODEL, result.params, raw_ev, run_ev)
    assert after["agreement"] > base["agreement"] + 0.03


# ---- The commands ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_files(tmp_path_factory) -> Path:
    from tinyfix.demo_data import gesture_data as gd

    folder = tmp_path_factory.mktemp("demo")
    gd.main(["--out", str(folder), "--only", "lab_val", "field_calib", "field_test",
             "stream_field", "--scale", "0.5"])
    return folder


def test_fit_with_the_reference_model_reports_where_quantization_costs(demo_files,
                                                                      tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["fit", "--model", str(INT8), "--reference-model", str(FLOAT),
                     "--data", str(demo_files / "field_calib.npz"),
                     "--eval", str(demo_files / "field_test.npz"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "where quantization costs you" in text
    report = json.loads((out / "report.json").read_text())
    q = report["quantization"]
    assert report["stages"][0]["stage"] == "quantization"
    assert 0.5 < q["agreement"] < 1.0
    assert q["features"]["relative_error"] > 0 and len(q["features"]["rms"]) == 24
    rows = q["evaluation"]
    assert "the int8 model as it is" in rows and "the fitted set" in rows
    if report["stages"][0]["kept"]:
        kept = rows["after the quantization stage"]
        assert kept["kl"] < rows["the int8 model as it is"]["kl"]
    assert (out / "quantization.png").stat().st_size > 0
    assert "## Where quantization costs you" in (out / "report.md").read_text()


def test_calibrate_pushes_a_reference_fitted_set_the_device_runs_bit_exactly(tmp_path):
    """The stage is sealed through the C core like every other: after --push the simulated
    device decides every evaluation sample as the host predicted (else the command fails)."""
    zm = build("fc_softmax", seed=0)
    zm.save(tmp_path)
    zm.save_dataset(tmp_path / "cal.npz", n=240, seed=1, drift="field")
    zm.save_dataset(tmp_path / "ev.npz", n=100, seed=2, drift="field")
    out = tmp_path / "out"
    assert cli.main(["calibrate", "--port", "sim", "--push",
                     "--model", str(tmp_path / "fc_softmax_int8.tflite"),
                     "--reference-model", str(tmp_path / "fc_softmax_float.tflite"),
                     "--data", str(tmp_path / "cal.npz"), "--eval", str(tmp_path / "ev.npz"),
                     "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["quantization"]["reference_model"] == "fc_softmax_float.tflite"


def test_teacher_labels_beat_the_raw_model_on_unlabeled_field_data(demo_files, tmp_path):
    out = tmp_path / "out"
    assert cli.main(["fit", "--model", str(INT8), "--reference-model", str(FLOAT),
                     "--unlabeled", str(demo_files / "field_calib.npz"),
                     "--reference-data", str(demo_files / "lab_val.npz"),
                     "--eval", str(demo_files / "field_test.npz"), "--out", str(out)]) == 0
    summary = json.loads((out / "unlabeled.json").read_text())
    rows = summary["evaluation"]
    assert summary["written"] == "teacher+inputs"
    assert {"teacher", "teacher+inputs", "inputs", "prior"} <= set(rows)
    assert rows["teacher+inputs"]["accuracy"] > rows["raw"]["accuracy"] + 0.05
    assert rows["teacher"]["accuracy"] > rows["raw"]["accuracy"]
    assert "quantization" in summary and (out / "quantization.png").exists()


def test_the_reference_model_on_a_stream_is_refused_in_one_line(demo_files, tmp_path,
                                                                capsys):
    code = cli.main(["fit", "--model", str(INT8), "--reference-model", str(FLOAT),
                     "--data", str(demo_files / "stream_field.npz"),
                     "--out", str(tmp_path / "o")])
    assert code != 0
    assert "--reference-model works on classification data" in capsys.readouterr().err


def test_recorded_scores_cannot_be_compared_with_the_float_model(tmp_path, capsys):
    rng = np.random.default_rng(7)
    np.savez(tmp_path / "scores.npz", scores=rng.integers(-128, 128, (100, 6)).astype(np.int8),
             y=rng.integers(0, 6, 100))
    code = cli.main(["fit", "--model", str(INT8), "--reference-model", str(FLOAT),
                     "--data", str(tmp_path / "scores.npz"), "--out", str(tmp_path / "o")])
    assert code != 0
    assert "runs the float model on the inputs" in capsys.readouterr().err
