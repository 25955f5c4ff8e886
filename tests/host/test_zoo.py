# SPDX-License-Identifier: Apache-2.0
"""The model zoo: every topology is a valid TFLM model with the shape it claims, built
deterministically, quantized as the converter does, whose int8 outputs reproduce its float
labels on lab data and lose some under field drift; the hybrid model is refused by TFLM.

Everything the zoo claims is read back from the flatbuffer or measured through
tflite-micro's own runtime, not taken from the zoo's Python objects.
"""

from __future__ import annotations

import functools
import zipfile
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tflite_micro.python.tflite_micro import runtime
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from tinyfix.datasets import load_classification
from tinyfix.zoo import TOPOLOGIES, ZooModel, build, reconstruction_error
from tinyfix.zoo.runner import TflmModel

RUNNABLE = [name for name in TOPOLOGIES if name != "hybrid"]
LAB_FLOOR = 0.85
FIELD_LOSS = 0.05  # field agreement must be at least this much below lab
N_SAMPLES = 120
OP_NAMES = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
TYPE_NAMES = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}


@functools.cache
def zoo(name: str) -> ZooModel:
    return build(name, seed=0)


@functools.cache
def agreement(name: str) -> tuple[float, float]:
    """(lab, field) share of the float labels the model under test reproduces in TFLM."""
    zm = zoo(name)
    runner = TflmModel(zm.tflite)
    rates = []
    for drift in ("lab", "field"):
        x, y = zm.dataset(N_SAMPLES, seed=7, drift=drift)
        rates.append(float(np.mean(zm.predict(runner.run(x), x) == y)))
    return rates[0], rates[1]


def read(data: bytes) -> Any:
    return fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))


def ops_of(model: Any) -> list[str]:
    return [OP_NAMES[model.operatorCodes[op.opcodeIndex].builtinCode]
            for op in model.subgraphs[0].operators]


def tensor_type(model: Any, index: int) -> str:
    return TYPE_NAMES[model.subgraphs[0].tensors[index].type]


def last_weighted(model: Any) -> tuple[Any, Any, Any]:
    """(op, weight tensor, bias tensor) of the last op that has weights."""
    sub = model.subgraphs[0]
    op = next(o for o in reversed(sub.operators) if len(o.inputs) == 3)
    return op, sub.tensors[op.inputs[1]], sub.tensors[op.inputs[2]]


@pytest.mark.parametrize("name", list(TOPOLOGIES))
def test_same_seed_gives_the_same_bytes(name: str) -> None:
    again = build(name, seed=0)
    assert again.tflite == zoo(name).tflite
    assert again.float_tflite == zoo(name).float_tflite


def test_another_seed_gives_another_model() -> None:
    assert build("fc_small", seed=1).tflite != zoo("fc_small").tflite
    x0, _ = zoo("fc_small").dataset(10, seed=1)
    x1, _ = zoo("fc_small").dataset(10, seed=2)
    assert not np.array_equal(x0, x1)


@pytest.mark.parametrize("name", ["ds_cnn", "float_io", "int16x8", "hybrid"])
def test_flatbuffer_is_laid_out_as_the_converter_does(name: str) -> None:
    data = zoo(name).tflite
    assert fb.Model.ModelBufferHasIdentifier(data, 0)
    model = read(data)
    assert model.version == 3
    assert model.buffers[0].data is None
    for code in model.operatorCodes:
        assert code.deprecatedBuiltinCode == min(code.builtinCode, 127)
    raw = fb.Model.GetRootAsModel(data, 0)
    base = np.frombuffer(data, np.uint8).ctypes.data
    for i in range(1, raw.BuffersLength()):
        payload = raw.Buffers(i).DataAsNumpy()
        assert (payload.ctypes.data - base) % 16 == 0, f"buffer {i} is not 16-byte aligned"


@pytest.mark.parametrize("name", RUNNABLE)
def test_int8_model_reproduces_the_float_labels_on_lab_data(name: str) -> None:
    lab, _ = agreement(name)
    assert lab >= LAB_FLOOR, f"{name}: {lab:.1%} of lab labels"


@pytest.mark.parametrize("name", RUNNABLE)
def test_field_drift_costs_the_int8_model_agreement(name: str) -> None:
    lab, field = agreement(name)
    assert field <= lab - FIELD_LOSS, f"{name}: lab {lab:.1%}, field {field:.1%}"
    assert field >= 0.4, f"{name}: field drift destroys the model ({field:.1%})"


@pytest.mark.parametrize("name", list(TOPOLOGIES))
def test_float_twin_in_tflm_matches_the_numpy_reference(name: str) -> None:
    zm = zoo(name)
    x, _ = zm.dataset(8, seed=3)
    got = TflmModel(zm.float_tflite).run(x)
    want = zm.forward_float(x)
    assert np.allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("name", RUNNABLE)
def test_int8_outputs_track_the_float_twin(name: str) -> None:
    zm = zoo(name)
    x, _ = zm.dataset(40, seed=4)
    quantized = TflmModel(zm.tflite).run(x)
    reference = TflmModel(zm.float_tflite).run(x)
    span = np.ptp(reference)
    error = np.abs(quantized - reference)
    assert error.mean() <= 0.05 * span
    assert error.max() <= 0.3 * span


@pytest.mark.parametrize("name", [n for n in RUNNABLE if n != "float_io"])
def test_raw_outputs_use_the_integer_range_without_saturating(name: str) -> None:
    zm = zoo(name)
    runner = TflmModel(zm.tflite)
    x, _ = zm.dataset(40, seed=5)
    raw = runner.run_raw(runner.quantize_input(x))
    info = np.iinfo(raw.dtype)
    assert np.mean(raw == info.max) < 0.1
    assert np.mean(raw.max(axis=1) == info.max) < 0.25
    if zm.graph.ops[-1].kind not in ("SOFTMAX", "LOGISTIC"):
        assert np.mean(raw == info.min) < 0.1  # a probability of ~0 sits there by design
    assert np.unique(raw).size >= min(32, raw.size // 2)


@pytest.mark.parametrize("name", [n for n in TOPOLOGIES if n != "autoencoder"])
def test_classes_come_out_roughly_balanced(name: str) -> None:
    zm = zoo(name)
    _, y = zm.dataset(max(400, 40 * zm.n_classes), seed=6)
    share = np.bincount(y, minlength=zm.n_classes) / y.size
    assert share.min() > 0.2 / zm.n_classes
    assert share.max() < 3.0 / zm.n_classes


EXPECTED = {
    # name: (input shape, input type, output elements, output type, last layer (in, out))
    "fc_small": ((1, 32), "INT8", 4, "INT8", (24, 4)),
    "fc_softmax": ((1, 48), "INT8", 6, "INT8", (16, 6)),
    "ds_cnn": ((1, 49, 10, 1), "INT8", 12, "INT8", (64, 12)),
    "kws_wide": ((1, 49, 40, 1), "INT8", 4, "INT8", (4000, 4)),
    "resnet8": ((1, 32, 32, 3), "INT8", 10, "INT8", (32, 10)),
    "person_detect": ((1, 96, 96, 3), "INT8", 2, "INT8", (64, 2)),
    "wakeword_stream": ((1, 30, 40, 1), "INT8", 3, "INT8", (32, 3)),
    "cnn_256": ((1, 32, 32, 1), "INT8", 10, "INT8", (256, 10)),
    "classes_64": ((1, 96), "INT8", 64, "INT8", (64, 64)),
    "binary_logit": ((1, 40), "INT8", 1, "INT8", (16, 1)),
    "binary_sigmoid": ((1, 16, 16, 1), "INT8", 1, "INT8", (128, 1)),
    "float_io": ((1, 24), "FLOAT32", 5, "FLOAT32", (16, 5)),
    "int16x8": ((1, 20, 10, 1), "INT16", 6, "INT16", (24, 6)),
    "autoencoder": ((1, 640), "INT8", 640, "INT8", (128, 640)),
    "hybrid": ((1, 32), "FLOAT32", 4, "FLOAT32", (64, 4)),
    "stateful": ((1, 32), "INT8", 5, "INT8", (24, 5)),
}


@pytest.mark.parametrize("name", list(TOPOLOGIES))
def test_tensors_have_the_specified_shapes_and_types(name: str) -> None:
    in_shape, in_type, n_out, out_type, (n_features, n_units) = EXPECTED[name]
    model = read(zoo(name).tflite)
    sub = model.subgraphs[0]
    inp, out = sub.tensors[sub.inputs[0]], sub.tensors[sub.outputs[0]]
    assert tuple(inp.shape) == in_shape and TYPE_NAMES[inp.type] == in_type
    assert int(np.prod(out.shape)) == n_out and TYPE_NAMES[out.type] == out_type
    _, weights, _ = last_weighted(model)
    assert (int(np.prod(weights.shape[1:])), int(weights.shape[0])) == (n_features, n_units)
    assert zoo(name).input_shape == in_shape


def test_person_detect_ends_as_tflm_example_does() -> None:
    model = read(zoo("person_detect").tflite)
    assert ops_of(model)[-4:] == ["AVERAGE_POOL_2D", "CONV_2D", "RESHAPE", "SOFTMAX"]
    inp = model.subgraphs[0].tensors[model.subgraphs[0].inputs[0]]
    assert int(np.prod(inp.shape)) == 27_648


def test_kws_wide_input_is_1960_bytes_and_its_head_reads_4000_features() -> None:
    zm = zoo("kws_wide")
    assert int(np.prod(zm.input_shape)) == 1960
    assert zm.last_layer() == ("FULLY_CONNECTED", 4000, 4)


def test_ops_cover_what_user_models_contain() -> None:
    seen = {op for name in TOPOLOGIES for op in ops_of(read(zoo(name).tflite))}
    assert seen >= {"FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D",
                    "MAX_POOL_2D", "RESHAPE", "SOFTMAX", "LOGISTIC", "ADD", "MEAN",
                    "QUANTIZE", "DEQUANTIZE"}
    assert ops_of(read(zoo("binary_logit").tflite))[-1] == "FULLY_CONNECTED"
    assert ops_of(read(zoo("binary_sigmoid").tflite))[-1] == "LOGISTIC"
    float_io_ops = ops_of(read(zoo("float_io").tflite))
    assert float_io_ops[0] == "QUANTIZE" and float_io_ops[-1] == "DEQUANTIZE"
    assert any(o.depth_multiplier > 1 for o in zoo("wakeword_stream").graph.ops)


def test_weights_and_biases_are_quantized_as_the_converter_does() -> None:
    model = read(zoo("ds_cnn").tflite)
    sub = model.subgraphs[0]
    for op, kind in zip(sub.operators, ops_of(model), strict=True):
        q_in = sub.tensors[op.inputs[0]].quantization
        q_out = sub.tensors[op.outputs[0]].quantization
        assert -128 <= q_out.zeroPoint[0] <= 127
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            w, b = sub.tensors[op.inputs[1]], sub.tensors[op.inputs[2]]
            channels = w.shape[3 if kind == "DEPTHWISE_CONV_2D" else 0]
            assert w.quantization.quantizedDimension == (3 if kind == "DEPTHWISE_CONV_2D" else 0)
            assert len(w.quantization.scale) == channels
            assert not np.any(w.quantization.zeroPoint)
            values = np.frombuffer(bytes(model.buffers[w.buffer].data), np.int8)
            assert values.min() >= -127
            assert TYPE_NAMES[b.type] == "INT32" and not np.any(b.quantization.zeroPoint)
            np.testing.assert_allclose(b.quantization.scale,
                                       q_in.scale[0] * w.quantization.scale, rtol=1e-6)
        elif kind in ("AVERAGE_POOL_2D", "RESHAPE"):
            assert q_out.scale[0] == q_in.scale[0]
            assert q_out.zeroPoint[0] == q_in.zeroPoint[0]
        elif kind == "SOFTMAX":
            assert q_out.scale[0] == np.float32(1 / 256) and q_out.zeroPoint[0] == -128


def test_input_scale_covers_the_calibration_range() -> None:
    zm = zoo("person_detect")
    p = zm.quantized.params[zm.graph.input]
    low, high = float(zm.design.calibration.min()), float(zm.design.calibration.max())
    scale, zero_point = p.scale[0], p.zero_point[0]
    assert scale == pytest.approx((high - min(low, 0.0)) / 255, rel=1e-5)
    assert (-128 - zero_point) * scale == pytest.approx(min(low, 0.0), abs=scale)


@pytest.mark.parametrize(("name", "per_channel"), [("fc_small", False), ("fc_softmax", True)])
def test_last_fully_connected_is_per_tensor_or_per_channel(name: str,
                                                            per_channel: bool) -> None:
    _, weights, bias = last_weighted(read(zoo(name).tflite))
    n_scales = len(weights.quantization.scale)
    assert n_scales == (weights.shape[0] if per_channel else 1)
    assert len(bias.quantization.scale) == n_scales


def test_16x8_model_has_int16_activations_and_int64_biases() -> None:
    model = read(zoo("int16x8").tflite)
    sub = model.subgraphs[0]
    for op, kind in zip(sub.operators, ops_of(model), strict=True):
        assert tensor_type(model, op.outputs[0]) == "INT16"
        assert sub.tensors[op.outputs[0]].quantization.zeroPoint[0] == 0
        if kind in ("CONV_2D", "FULLY_CONNECTED"):
            assert tensor_type(model, op.inputs[1]) == "INT8"
            assert tensor_type(model, op.inputs[2]) == "INT64"


def test_hybrid_model_is_refused_by_tflm() -> None:
    model = read(zoo("hybrid").tflite)
    fc = model.subgraphs[0].operators[0]
    assert tensor_type(model, fc.inputs[0]) == "FLOAT32"
    assert tensor_type(model, fc.inputs[1]) == "INT8"
    with pytest.raises(RuntimeError):
        runtime.Interpreter.from_bytes(zoo("hybrid").tflite, arena_size=256 * 1024)
    assert zoo("hybrid").kind == "hybrid"


def test_autoencoder_separates_anomalies_by_reconstruction_error() -> None:
    zm = zoo("autoencoder")
    x, y = zm.dataset(N_SAMPLES, seed=8)
    error = reconstruction_error(x, TflmModel(zm.tflite).run(x))
    assert set(np.unique(y)) == {0, 1}
    assert np.median(error[y == 1]) > 2 * np.median(error[y == 0])
    assert zm.anomaly_threshold is not None
    assert np.mean(error[y == 0] < zm.anomaly_threshold) > 0.9


def test_dataset_is_deterministic_and_field_keeps_one_device() -> None:
    zm = zoo("fc_small")
    x_a, y_a = zm.dataset(50, seed=1, drift="field")
    x_b, y_b = zm.dataset(50, seed=1, drift="field")
    assert np.array_equal(x_a, x_b) and np.array_equal(y_a, y_b)
    clean, y_clean = zm.dataset(50, seed=1)
    assert np.array_equal(y_clean, y_a)
    assert x_a.dtype == np.float32 and x_a.shape == (50, *zm.input_shape[1:])
    # The device's offset shows as the same mean shift in two independent data sets.
    other, _ = zm.dataset(400, seed=2, drift="field")
    other_clean, _ = zm.dataset(400, seed=2)
    shift_a = (x_a - clean).mean(axis=0)
    shift_b = (other - other_clean).mean(axis=0)
    assert np.corrcoef(shift_a, shift_b)[0, 1] > 0.8
    another_device, _ = zm.dataset(50, seed=1, drift="field", drift_seed=1)
    assert not np.allclose(another_device, x_a)


def test_saved_files_load_in_tflm_and_the_product_reader(tmp_path: Any) -> None:
    zm = zoo("ds_cnn")
    paths = zm.save(tmp_path)
    assert paths["int8"].name == "ds_cnn_int8.tflite" and paths["float"].exists()
    runtime.Interpreter.from_file(str(paths["int8"]), arena_size=256 * 1024)
    npz = zm.save_dataset(tmp_path / "field.npz", n=20, drift="field")
    with zipfile.ZipFile(npz) as archive:
        assert sorted(archive.namelist()) == ["class_names.npy", "x.npy", "y.npy"]
    data = load_classification(npz)
    assert data.x is not None and data.x.shape == (20, 49, 10, 1)
    assert data.class_names == zm.class_names


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_classes=st.integers(1, 64), seed=st.integers(0, 1000))
def test_fc_classifier_builds_and_runs_for_any_class_count(n_classes: int, seed: int) -> None:
    zm = build("fc_small", seed=seed, n_classes=n_classes)
    x, y = zm.dataset(60, seed=seed)
    out = TflmModel(zm.tflite).run(x)
    assert out.shape == (60, n_classes)
    assert np.mean(zm.predict(out) == y) >= 0.8
    assert zm.kind == ("binary" if n_classes == 1 else "classifier")


def test_wide_heads_and_big_inputs_can_be_made() -> None:
    wide = build("kws_wide", filters=12)
    assert wide.last_layer() == ("FULLY_CONNECTED", 6000, 4)
    x, _ = wide.dataset(3)
    assert TflmModel(wide.tflite).run(x).shape == (3, 4)
    big = build("person_detect", size=112)
    assert int(np.prod(big.input_shape)) == 112 * 112 * 3 > 27_648
    x, _ = big.dataset(2)
    assert TflmModel(big.tflite).run(x).shape == (2, 2)
