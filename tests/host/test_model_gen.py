# SPDX-License-Identifier: Apache-2.0
"""scripts/gen_model_sources.py: the build-time generator of the firmware's model sources.

Its flatbuffer reader is checked field by field against tflite-micro's own schema parser,
its C output against gcc, its head rule and refusals against the host twin's, and its arena
estimate against what tflite-micro's runtime really needs (the smallest arena that
AllocateTensors() accepts, found by bisection with every probe in a forked child, since
some of TFLM's failure paths crash instead of failing) and against what the firmware
reported using.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import random
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gen_model_sources.py"
GESTURE = REPO / "models" / "gesture" / "gesture_int8.tflite"
GESTURE_FLOAT = REPO / "models" / "gesture" / "gesture_float.tflite"

fb = pytest.importorskip("tflite_micro.tensorflow.lite.micro.python.schema_py_generated")
flatbuffers = pytest.importorskip("flatbuffers")


def _script_module(name: str) -> ModuleType:
    if str(SCRIPT.parent) not in sys.path:
        sys.path.insert(0, str(SCRIPT.parent))
    return importlib.import_module(name)


gen = _script_module("gen_model_sources")
tfl = _script_module("tflite_reader")


# --- Test models ------------------------------------------------------------------------------


class TinyGraph:
    """A one-subgraph model written with the schema's object API, for shapes the zoo lacks."""

    def __init__(self) -> None:
        self.model = fb.ModelT()
        self.model.version = 3
        self.model.buffers = [fb.BufferT()]
        self.model.operatorCodes = []
        self.sub = fb.SubGraphT()
        self.sub.tensors, self.sub.operators = [], []

    def tensor(self, shape: tuple[int, ...], dtype: str = "INT8", data: bytes | None = None,
               scale: tuple[float, ...] | None = (0.05,), zero_point: int = 0) -> int:
        t = fb.TensorT()
        t.name = f"t{len(self.sub.tensors)}".encode()
        t.shape, t.type, t.buffer = list(shape), getattr(fb.TensorType, dtype), 0
        if data is not None:
            buf = fb.BufferT()
            buf.data = list(data)
            self.model.buffers.append(buf)
            t.buffer = len(self.model.buffers) - 1
        if scale is not None:
            q = fb.QuantizationParametersT()
            q.scale, q.zeroPoint = list(scale), [zero_point] * len(scale)
            t.quantization = q
        self.sub.tensors.append(t)
        return len(self.sub.tensors) - 1

    def op(self, name: str, inputs: list[int], outputs: list[int],
           options: tuple[str, Any] | None = None, custom: str | None = None) -> None:
        code = getattr(fb.BuiltinOperator, name)
        known = [(c.builtinCode, c.customCode) for c in self.model.operatorCodes]
        key = (code, custom.encode() if custom else None)
        if key not in known:
            c = fb.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), 1
            c.customCode = key[1]
            self.model.operatorCodes.append(c)
            known.append(key)
        index = known.index(key)
        op = fb.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = index, inputs, outputs
        if options is not None:
            op.builtinOptionsType = getattr(fb.BuiltinOptions, options[0])
            op.builtinOptions = options[1]
        self.sub.operators.append(op)

    def finish(self, inputs: list[int], outputs: list[int]) -> bytes:
        self.sub.inputs, self.sub.outputs = inputs, outputs
        self.model.subgraphs = [self.sub]
        builder = flatbuffers.Builder(0)
        builder.Finish(self.model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def _int8(n: int, value: int = 3) -> bytes:
    return bytes([value & 0xFF]) * n


def _int32(values: list[int]) -> bytes:
    return struct.pack(f"<{len(values)}i", *values)


def person_detect_ending(features: int = 8, classes: int = 3) -> bytes:
    """A person-detection-style end: a 4x4 map pooled to 1x1, a 1x1 CONV_2D, RESHAPE,
    SOFTMAX (as TFLM's person_detect model ends)."""
    g = TinyGraph()
    x = g.tensor((1, 4, 4, features), scale=(0.02,), zero_point=-128)
    pooled = g.tensor((1, 1, 1, features), scale=(0.02,), zero_point=-128)
    pool = fb.Pool2DOptionsT()
    pool.padding, pool.strideW, pool.strideH, pool.filterWidth, pool.filterHeight = \
        fb.Padding.VALID, 4, 4, 4, 4
    g.op("AVERAGE_POOL_2D", [x], [pooled], ("Pool2DOptions", pool))
    weights = g.tensor((classes, 1, 1, features), data=_int8(classes * features),
                       scale=(0.01,) * classes)
    bias = g.tensor((classes,), "INT32", data=_int32([5] * classes),
                    scale=(0.0002,) * classes)
    logits4 = g.tensor((1, 1, 1, classes), scale=(0.1,), zero_point=3)
    conv = fb.Conv2DOptionsT()
    conv.padding, conv.strideW, conv.strideH = fb.Padding.SAME, 1, 1
    g.op("CONV_2D", [pooled, weights, bias], [logits4], ("Conv2DOptions", conv))
    shape = g.tensor((2,), "INT32", data=_int32([1, classes]), scale=None)
    logits = g.tensor((1, classes), scale=(0.1,), zero_point=3)
    reshape = fb.ReshapeOptionsT()
    reshape.newShape = [1, classes]
    g.op("RESHAPE", [logits4, shape], [logits], ("ReshapeOptions", reshape))
    probs = g.tensor((1, classes), scale=(1 / 256,), zero_point=-128)
    softmax = fb.SoftmaxOptionsT()
    softmax.beta = 1.0
    g.op("SOFTMAX", [logits], [probs], ("SoftmaxOptions", softmax))
    return g.finish([x], [probs])


def fully_connected_model(n_in: int = 8, n_out: int = 4, float_input: bool = False) -> bytes:
    """FULLY_CONNECTED n_in -> n_out; with float_input, a dynamic-range ("hybrid") model."""
    g = TinyGraph()
    act = "FLOAT32" if float_input else "INT8"
    x = g.tensor((1, n_in), act, scale=None if float_input else (0.05,))
    weights = g.tensor((n_out, n_in), data=_int8(n_out * n_in), scale=(0.01,))
    bias = g.tensor((n_out,), "FLOAT32" if float_input else "INT32",
                    data=_int32([0] * n_out), scale=None if float_input else (0.0005,))
    y = g.tensor((1, n_out), act, scale=None if float_input else (0.1,))
    fc = fb.FullyConnectedOptionsT()
    g.op("FULLY_CONNECTED", [x, weights, bias], [y], ("FullyConnectedOptions", fc))
    return g.finish([x], [y])


def two_input_model() -> bytes:
    g = TinyGraph()
    a, b, y = g.tensor((1, 4)), g.tensor((1, 4)), g.tensor((1, 4))
    g.op("ADD", [a, b], [y], ("AddOptions", fb.AddOptionsT()))
    return g.finish([a, b], [y])


def _edit_opcode(data: bytes, old: str, new: str, custom: str | None = None) -> bytes:
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    for code in model.operatorCodes:
        if max(code.builtinCode, code.deprecatedBuiltinCode) == getattr(fb.BuiltinOperator, old):
            code.builtinCode = getattr(fb.BuiltinOperator, new)
            code.deprecatedBuiltinCode = min(code.builtinCode, 127)
            code.customCode = custom.encode() if custom else None
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


ZOO_NAMES = ("fc_small", "fc_softmax", "ds_cnn", "kws_wide", "resnet8", "person_detect",
             "wakeword_stream", "cnn_256", "classes_64", "binary_logit", "binary_sigmoid",
             "float_io", "int16x8", "autoencoder", "stateful")


@pytest.fixture(scope="module")
def models() -> dict[str, bytes]:
    """Every model the generator must describe: the bundled ones, the host zoo's (when the
    zoo is there), and the tiny person-detection-style ending."""
    found = {"gesture": GESTURE.read_bytes(), "gesture_float": GESTURE_FLOAT.read_bytes(),
             "person_ending": person_detect_ending(), "fc_tiny": fully_connected_model()}
    try:
        from tinyfix.zoo import build
    except ImportError:
        return found
    for name in ZOO_NAMES:
        found[name] = build(name, seed=0).tflite
    return found


@pytest.fixture(scope="module")
def hybrid_model() -> bytes:
    try:
        from tinyfix.zoo import build
    except ImportError:
        return fully_connected_model(float_input=True)
    return build("hybrid", seed=0).tflite


# --- The reader against tflite-micro's schema parser ------------------------------------------


def _schema_options(op: Any) -> dict[str, Any] | None:
    o = op.builtinOptions
    if o is None:
        return None
    if isinstance(o, fb.Conv2DOptionsT):
        return {"padding": o.padding, "stride_w": o.strideW, "stride_h": o.strideH,
                "activation": o.fusedActivationFunction, "dilation_w": o.dilationWFactor,
                "dilation_h": o.dilationHFactor}
    if isinstance(o, fb.DepthwiseConv2DOptionsT):
        return {"padding": o.padding, "stride_w": o.strideW, "stride_h": o.strideH,
                "depth_multiplier": o.depthMultiplier, "activation": o.fusedActivationFunction,
                "dilation_w": o.dilationWFactor, "dilation_h": o.dilationHFactor}
    if isinstance(o, fb.Pool2DOptionsT):
        return {"padding": o.padding, "stride_w": o.strideW, "stride_h": o.strideH,
                "filter_w": o.filterWidth, "filter_h": o.filterHeight,
                "activation": o.fusedActivationFunction}
    if isinstance(o, fb.FullyConnectedOptionsT):
        return {"activation": o.fusedActivationFunction, "weights_format": o.weightsFormat,
                "keep_num_dims": o.keepNumDims}
    return None


def _seq(values: Any) -> tuple:
    return () if values is None else tuple(values.tolist() if hasattr(values, "tolist")
                                           else values)


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="replace")


def test_reader_agrees_with_the_tflite_micro_schema_parser_on_every_field(models):
    for name, data in models.items():
        ours = tfl.read_model(data)
        theirs = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
        assert ours.version == theirs.version, name
        assert ours.description == (_text(theirs.description) or ""), name
        assert [(c.builtin_code, c.deprecated_builtin_code, c.custom_code, c.version)
                for c in ours.operator_codes] == [
            (c.builtinCode, c.deprecatedBuiltinCode, _text(c.customCode), c.version)
            for c in theirs.operatorCodes], name
        assert ours.buffer_sizes == tuple(0 if b.data is None else len(b.data)
                                          for b in theirs.buffers), name
        assert len(ours.subgraphs) == len(theirs.subgraphs), name
        for sub, ref in zip(ours.subgraphs, theirs.subgraphs, strict=True):
            _assert_subgraph_matches(name, sub, ref)


def _assert_subgraph_matches(name: str, sub: Any, ref: Any) -> None:
    assert sub.name == (_text(ref.name) or ""), name
    assert sub.inputs == _seq(ref.inputs) and sub.outputs == _seq(ref.outputs), name
    assert len(sub.tensors) == len(ref.tensors), name
    for t, r in zip(sub.tensors, ref.tensors, strict=True):
        where = f"{name} tensor {t.index}"
        assert (t.name, t.shape, t.dtype, t.buffer, t.is_variable) == (
            _text(r.name) or "", _seq(r.shape), r.type, r.buffer, r.isVariable), where
        q, rq = t.quantization, r.quantization
        assert (q is None) == (rq is None), where
        if q is not None:
            assert q.scale == tuple(float(s) for s in _seq(rq.scale)), where
            assert q.zero_point == tuple(int(z) for z in _seq(rq.zeroPoint)), where
            assert q.dimension == rq.quantizedDimension, where
    assert len(sub.operators) == len(ref.operators), name
    for k, (op, r) in enumerate(zip(sub.operators, ref.operators, strict=True)):
        where = f"{name} operator {k}"
        assert (op.opcode_index, op.inputs, op.outputs, op.intermediates, op.options_type) == (
            r.opcodeIndex, _seq(r.inputs), _seq(r.outputs), _seq(r.intermediates),
            r.builtinOptionsType), where
        expected = _schema_options(r)
        got = None if op.options is None else {
            key: getattr(op.options, key) for key in (expected or {})}
        assert got == expected, where


def test_reader_takes_the_op_code_from_the_int8_field_of_old_files():
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(GESTURE.read_bytes(), 0))
    for code in model.operatorCodes:
        code.builtinCode = 0  # as files written before the int32 field existed
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    facts = gen.analyse(bytes(builder.Output()))
    assert facts.methods == ("Reshape", "Conv2D", "MaxPool2D", "FullyConnected")


# --- Generated files --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gesture_out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gesture")
    assert gen.main([str(GESTURE), str(out), "--no-summary"]) == 0
    return out


def _macros(header: Path) -> dict[str, str]:
    found = {}
    for line in header.read_text().splitlines():
        if line.startswith("#define ") and "(" not in line.split()[1]:
            parts = line.split(maxsplit=2)
            found[parts[1]] = parts[2].split(" /*")[0] if len(parts) > 2 else ""
    return found


def test_writes_every_file_with_an_spdx_line(gesture_out):
    names = sorted(p.name for p in gesture_out.iterdir())
    assert names == ["model.conf", "model_data.c", "model_data.h", "model_info.h",
                     "model_ops.h"]
    for path in gesture_out.iterdir():
        assert "SPDX-License-Identifier: Apache-2.0" in path.read_text().splitlines()[0]


def test_gesture_ops_are_its_four_kinds_in_first_use_order(gesture_out):
    text = (gesture_out / "model_ops.h").read_text()
    assert "#define MODEL_OPS(X) X(Reshape) X(Conv2D) X(MaxPool2D) X(FullyConnected)" in text
    assert "#define MODEL_OP_COUNT 4" in text
    assert "#define MODEL_HAS_OP_FULLY_CONNECTED 1" in text


def test_gesture_info_describes_its_tensors_and_head(gesture_out):
    m = _macros(gesture_out / "model_info.h")
    assert m["MODEL_INFO_CRC32"] == f"0x{zlib.crc32(GESTURE.read_bytes()):08X}u"
    assert (m["MODEL_INPUT_DTYPE"], m["MODEL_INPUT_DIMS"], m["MODEL_INPUT_BYTES"]) == (
        "9", "{1, 64, 3}", "192")
    assert (m["MODEL_OUTPUT_DIMS"], m["MODEL_NUM_CLASSES"], m["MODEL_IS_BINARY"]) == (
        "{1, 6}", "6", "0")
    assert m["MODEL_OUTPUT_DEQUANTIZED"] == "0" and m["MODEL_IS_AUTOENCODER"] == "0"
    assert (m["MODEL_FEATURE_TENSOR"], m["MODEL_FEATURE_ELEMENTS"], m["MODEL_FEATURE_DTYPE"]) \
        == ("16", "24", "9")
    assert m["MODEL_FEATURE_ZERO_POINT"] == "-128" and m["MODEL_FEATURE_USABLE"] == "1"
    assert (m["MODEL_HEAD_OP_FULLY_CONNECTED"], m["MODEL_HEAD_OP_INDEX"]) == ("1", "6")


def test_gesture_kconfig_fragment_sizes_the_firmware(gesture_out):
    lines = (gesture_out / "model.conf").read_text().splitlines()
    values = dict(line.split("=") for line in lines if line.startswith("CONFIG_"))
    assert values["CONFIG_TINYFIX_MAX_CLASSES"] == "6"
    assert values["CONFIG_TINYFIX_MAX_FEATURES"] == "24"
    assert values["CONFIG_TINYFIX_MAX_CHANNELS"] == "3"
    assert int(values["CONFIG_APP_TENSOR_ARENA_SIZE"]) % 1024 == 0
    for i, line in enumerate(lines):  # every value has its reason on the line above
        if line.startswith("CONFIG_"):
            assert lines[i - 1].startswith("# ")


def test_model_data_is_the_flatbuffer_with_its_crc(gesture_out):
    header = (gesture_out / "model_data.h").read_text()
    data = GESTURE.read_bytes()
    assert f"#define MODEL_DATA_LEN {len(data)}u" in header
    assert f"#define MODEL_DATA_CRC32 0x{zlib.crc32(data):08X}u" in header
    assert "aligned(16)" in (gesture_out / "model_data.c").read_text()


STUB = r"""
#include "model_data.h"
#include "model_info.h"
#include "model_ops.h"

#define COUNT_OP(name) +1
#define NAME_OP(name) #name,
enum { OPS_LISTED = 0 MODEL_OPS(COUNT_OP) };
typedef char op_count_matches[(OPS_LISTED == MODEL_OP_COUNT) ? 1 : -1];
typedef char crc_matches[(MODEL_INFO_CRC32 == MODEL_DATA_CRC32) ? 1 : -1];
typedef char len_matches[(MODEL_INFO_LEN == MODEL_DATA_LEN) ? 1 : -1];
static const char *const op_names[] = {MODEL_OPS(NAME_OP)};
static const int input_dims[] = MODEL_INPUT_DIMS;
static const int output_dims[] = MODEL_LOGICAL_OUTPUT_DIMS;
typedef char ndims_match[(sizeof input_dims / sizeof input_dims[0] == MODEL_INPUT_NDIMS ||
                          MODEL_INPUT_NDIMS == 0) ? 1 : -1];
typedef char arena_fits[(MODEL_ARENA_SIZE >= MODEL_ARENA_ESTIMATE) ? 1 : -1];

int model_stub(void);
int model_stub(void)
{
	float scale = MODEL_INPUT_SCALE + MODEL_OUTPUT_SCALE + MODEL_FEATURE_SCALE;
	const char *head = MODEL_HEAD_OP_NAME;

	return (int)(scale > 0.0f) + op_names[0][0] + input_dims[0] + output_dims[0] + head[0] +
		MODEL_FEATURE_TENSOR + MODEL_FEATURE_ELEMENTS + MODEL_HEAD_OP_INDEX +
		MODEL_NUM_CLASSES + MODEL_KIND + MODEL_ARENA_SIZE + model_data[0];
}
"""


def _compile(directory: Path, source: str) -> None:
    cmd = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-c",
           "-I", str(directory), source, "-o", str(directory / (Path(source).stem + ".o"))]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=directory, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", ["gesture", "person_ending", "ds_cnn", "float_io",
                                  "int16x8", "binary_logit"])
def test_generated_c_compiles(models, tmp_path, name):
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    if name not in models:
        pytest.skip("the host zoo is not installed")
    model = tmp_path / f"{name}.tflite"
    model.write_bytes(models[name])
    assert gen.main([str(model), str(tmp_path), "--no-summary"]) == 0
    _compile(tmp_path, "model_data.c")
    (tmp_path / "stub.c").write_text(STUB)
    _compile(tmp_path, "stub.c")


def test_rerunning_rewrites_no_file(tmp_path):
    assert gen.main([str(GESTURE), str(tmp_path), "--no-summary"]) == 0
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert gen.main([str(GESTURE), str(tmp_path), "--no-summary"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == stamps


def test_name_sets_the_array_symbol_and_files(tmp_path):
    assert gen.main([str(GESTURE), str(tmp_path), "--name", "user_model", "--no-summary"]) == 0
    assert "#define USER_MODEL_CRC32" in (tmp_path / "user_model.h").read_text()


def test_cli_prints_one_summary_line_and_exits_zero(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), str(GESTURE), str(tmp_path),
                           "--summary"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    data = GESTURE.read_bytes()
    kib = gen.ArenaSizing.of(tfl.read_model(data)).size // 1024
    assert done.stdout.splitlines() == [
        f"tinyfix model: gesture_int8.tflite crc 0x{zlib.crc32(data):08x}, input [1 64 3] "
        "int8 (192 B), output [1 6] int8, classifier, head FULLY_CONNECTED reading 24 "
        f"features, 7 ops (4 kinds), arena ~{kib} KiB"]


def test_cli_rejects_a_name_that_is_not_a_c_identifier(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), str(GESTURE), str(tmp_path),
                           "--name", "my-model"], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "C identifier" in done.stderr


# --- Ops, kinds and the head rule -------------------------------------------------------------


def _first_use_methods(data: bytes) -> tuple[str, ...]:
    """The op list as tflite-micro's schema parser sees it, mapped to resolver methods."""
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    methods: list[str] = []
    for sub in model.subgraphs:
        for op in sub.operators:
            code = model.operatorCodes[op.opcodeIndex]
            method = gen.RESOLVER_METHODS[names[max(code.builtinCode,
                                                    code.deprecatedBuiltinCode)]]
            if method not in methods:
                methods.append(method)
    return tuple(methods)


def test_ops_list_every_kind_once_in_first_use_order(models):
    for name, data in models.items():
        assert gen.analyse(data).methods == _first_use_methods(data), name


def test_resolver_methods_exist_in_tflm(models):
    header = next((root / "optional/modules/lib/tflite-micro/tensorflow/lite/micro/"
                   "micro_mutable_op_resolver.h" for root in (REPO.parent, REPO.parent / "zws")
                   if (root / "optional/modules/lib/tflite-micro").is_dir()), None)
    if header is None:
        pytest.skip("no Zephyr workspace with tflite-micro next to the repository")
    text = header.read_text()
    for op, method in gen.RESOLVER_METHODS.items():
        assert f"TfLiteStatus Add{method}(" in text and f"BuiltinOperator_{op}," in text, op


def test_head_rule_finds_the_gesture_models_fully_connected_with_24_features(models):
    facts = gen.analyse(models["gesture"])
    assert (facts.head.op, facts.head.op_index, facts.head.feature.index) == (
        "FULLY_CONNECTED", 6, 16)
    assert facts.head.feature.elements == 24 and facts.head.usable


def test_head_rule_finds_the_1x1_conv_of_a_person_detection_ending(models):
    facts = gen.analyse(models["person_ending"])
    assert (facts.head.op, facts.head.op_index, facts.head.feature.elements) == (
        "CONV_2D", 1, 8)
    assert facts.methods == ("AveragePool2D", "Conv2D", "Reshape", "Softmax")
    if "person_detect" in models:
        zoo = gen.analyse(models["person_detect"]).head
        assert zoo.op == "CONV_2D" and zoo.usable


def test_head_rule_finds_no_features_when_the_graph_ends_otherwise(models):
    g = TinyGraph()
    x, y = g.tensor((1, 4, 4, 2)), g.tensor((1, 2, 2, 2))
    pool = fb.Pool2DOptionsT()
    pool.padding, pool.strideW, pool.strideH, pool.filterWidth, pool.filterHeight = \
        fb.Padding.VALID, 2, 2, 2, 2
    g.op("MAX_POOL_2D", [x], [y], ("Pool2DOptions", pool))
    facts = gen.analyse(g.finish([x], [y]))
    assert facts.head.feature is None and "MAX_POOL_2D" in facts.head.note
    conf = gen.generate(facts).files["model.conf"]
    assert "CONFIG_TINYFIX_MAX_FEATURES=0" in conf


def test_kinds_and_classes_follow_the_host_rules(models):
    if "binary_logit" not in models:
        pytest.skip("the host zoo is not installed")
    binary = gen.analyse(models["binary_logit"])
    assert (binary.kind, binary.n_classes) == ("binary", 2)
    assert "CONFIG_TINYFIX_MAX_CLASSES=2" in gen.generate(binary).files["model.conf"]
    auto = gen.analyse(models["autoencoder"])
    assert auto.kind == "autoencoder" and not auto.head.usable
    assert "CONFIG_TINYFIX_MAX_FEATURES=0" in gen.generate(auto).files["model.conf"]
    dequantized = gen.analyse(models["float_io"])
    assert dequantized.dequantized and dequantized.logical_output.dtype == tfl.INT8
    assert dequantized.output.dtype == tfl.FLOAT32
    int16 = gen.analyse(models["int16x8"])
    assert int16.head.feature.dtype == tfl.INT16 and not int16.head.usable


def test_generator_and_host_twin_agree_on_output_kind_and_features(models):
    twin = pytest.importorskip("tinyfix.twin.model")
    for name, data in models.items():
        ours = gen.analyse(data)
        theirs = twin.ModelGraph.from_bytes(data, name)
        assert (ours.logical_output.index, ours.dequantized, ours.kind, ours.n_classes) == (
            theirs.output.index, theirs.dequantized, theirs.kind, theirs.n_classes), name
        if theirs.final is not None:
            assert (ours.head.op, ours.head.op_index, ours.head.feature.index) == (
                theirs.final.op, theirs.final.op_index, theirs.feature.index), name
        # The twin keeps an autoencoder's last layer but never re-fits it.
        refits = theirs.final is not None and theirs.kind != "autoencoder"
        assert ours.head.usable == refits, name


# --- Refusals ---------------------------------------------------------------------------------


def _refusal(tmp_path: Path, data: bytes, capsys) -> str:
    model = tmp_path / "user.tflite"
    model.write_bytes(data)
    assert gen.main([str(model), str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gen_model_sources: error: user.tflite: ")
    assert not (tmp_path / "out").exists()
    return lines[0]


def test_refuses_a_truncated_file(tmp_path, capsys):
    data = GESTURE.read_bytes()
    assert "truncated or corrupt" in _refusal(tmp_path, data[: len(data) // 2], capsys)


def test_refuses_random_bytes(tmp_path, capsys):
    noise = random.Random(7).randbytes(4096)
    assert "not a TFLite flatbuffer" in _refusal(tmp_path, noise, capsys)
    with_id = noise[:4] + b"TFL3" + noise[8:]
    assert "corrupt" in _refusal(tmp_path, with_id, capsys)


def test_refuses_a_hybrid_model_and_says_how_to_convert_it(tmp_path, capsys, hybrid_model):
    line = _refusal(tmp_path, hybrid_model, capsys)
    for phrase in ("dynamic-range", "cannot run", "representative_dataset",
                   "TFLITE_BUILTINS_INT8", "tf.int8"):
        assert phrase in line


def test_refuses_a_custom_op_by_name(tmp_path, capsys):
    data = _edit_opcode(GESTURE.read_bytes(), "MAX_POOL_2D", "CUSTOM", custom="TinyFixMagic")
    assert "custom op 'TinyFixMagic'" in _refusal(tmp_path, data, capsys)


def test_refuses_an_op_tflm_has_no_kernel_for(tmp_path, capsys):
    data = _edit_opcode(GESTURE.read_bytes(), "MAX_POOL_2D", "LSTM")
    assert "LSTM (builtin op 16)" in _refusal(tmp_path, data, capsys)


def test_refuses_a_model_with_two_inputs(tmp_path, capsys):
    assert "2 inputs and 1 output;" in _refusal(tmp_path, two_input_model(), capsys)


def test_refuses_more_than_64_classes(tmp_path, capsys):
    line = _refusal(tmp_path, fully_connected_model(n_in=4, n_out=65), capsys)
    assert "65 outputs" in line


def test_cli_error_is_one_line_without_traceback(tmp_path):
    model = tmp_path / "cut.tflite"
    model.write_bytes(GESTURE.read_bytes()[:1000])
    done = subprocess.run([sys.executable, str(SCRIPT), str(model), str(tmp_path / "out")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("gen_model_sources: error: cut.tflite: ")


def _only_own_errors(data: bytes) -> None:
    try:
        facts = gen.analyse(data)
        gen.generate(facts)
    except (tfl.TfliteFormatError, gen.ModelError) as err:
        assert "\n" not in str(err) and str(err)


@pytest.mark.parametrize("cut", range(0, GESTURE.stat().st_size, 61))
def test_every_truncation_gives_the_tools_own_error(cut):
    _only_own_errors(GESTURE.read_bytes()[:cut])


FUZZ_SEEDS = (GESTURE.read_bytes(), person_detect_ending())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FUZZ_SEEDS), st.data())
def test_byte_mutations_of_a_real_model_raise_only_the_tools_own_errors(seed, data):
    mutated = bytearray(seed)
    positions = st.integers(0, len(seed) - 1)
    for at, value in data.draw(st.lists(st.tuples(positions, st.integers(0, 255)),
                                        min_size=1, max_size=8)):
        mutated[at] = value
    _only_own_errors(bytes(mutated))


# --- Arena estimate against the real runtime --------------------------------------------------

MEASURE = r"""
import json, os, sys
from tflite_micro.python.tflite_micro import runtime

FLOOR = 1024  # below this TFLM cannot even hold its allocators


def fits(data, size):
    # Each probe in a forked child: some of TFLM's failure paths crash instead of failing.
    pid = os.fork()
    if pid == 0:
        try:
            runtime.Interpreter.from_bytes(data, arena_size=size)
        except Exception:
            os._exit(1)
        os._exit(0)
    return os.waitpid(pid, 0)[1] == 0


def smallest(data, guess):
    hi = max(guess, FLOOR + 1)
    while not fits(data, hi):
        hi *= 2
    lo = max(FLOOR, hi // 2)
    while lo > FLOOR and fits(data, lo):
        hi, lo = lo, max(FLOOR, lo // 2)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(data, mid) else (mid, hi)
    return hi


out = {}
for path, guess in zip(sys.argv[1::2], sys.argv[2::2]):
    out[path] = smallest(open(path, "rb").read(), int(guess))
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def real_arena(models, tmp_path_factory) -> dict[str, int]:
    """The smallest arena tflite-micro's x86-64 runtime accepts, per model."""
    folder = tmp_path_factory.mktemp("arena")
    args = []
    for name, data in models.items():
        path = folder / f"{name}.tflite"
        path.write_bytes(data)
        args += [str(path), str(gen.estimate_arena(tfl.read_model(data), gen.HOST_64).total)]
    done = subprocess.run([sys.executable, "-c", MEASURE, *args], capture_output=True,
                          text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return {Path(p).stem: size for p, size in json.loads(done.stdout).items()}


def test_arena_estimate_covers_the_real_runtime_and_stays_close(models, real_arena):
    for name, data in models.items():
        model = tfl.read_model(data)
        host = gen.estimate_arena(model, gen.HOST_64).total
        assert host >= real_arena[name], name
        assert host <= 1.1 * real_arena[name], name


def test_configured_arena_covers_the_real_runtime(models, real_arena):
    for name, data in models.items():
        sizing = gen.ArenaSizing.of(tfl.read_model(data))
        assert sizing.size >= real_arena[name], name
        assert sizing.size >= sizing.target.total * gen.DEFAULT_MARGIN, name


def test_sizing_for_64_bit_hosts_costs_32_bit_targets_under_2_kib(models):
    for name, data in models.items():
        sizing = gen.ArenaSizing.of(tfl.read_model(data))
        assert sizing.target.total <= sizing.host.total + sizing.target.scratch, name
        assert sizing.host.total - sizing.target.total < 2048, name


# arena_used_bytes() the firmware printed at boot for the gesture model (app/README.md):
# native_sim (32-bit, reference kernels) and qemu_cortex_m3 (CMSIS-NN), tap and preserve-all.
FIRMWARE_ARENA_USED = {(False, False): 2420, (False, True): 7044,
                       (True, False): 2724, (True, True): 7412}


@pytest.mark.parametrize(("cmsis_nn", "preserve_all"), sorted(FIRMWARE_ARENA_USED))
def test_32_bit_replay_matches_what_the_firmware_used(cmsis_nn, preserve_all):
    abi = dataclasses.replace(gen.TARGET_32, cmsis_nn=cmsis_nn)
    estimate = gen.estimate_arena(tfl.read_model(GESTURE.read_bytes()), abi, preserve_all)
    used = estimate.persistent + estimate.planned  # what arena_used_bytes() counts
    real = FIRMWARE_ARENA_USED[cmsis_nn, preserve_all]
    assert real <= used <= real + 64
    assert estimate.total >= used


def test_greedy_plan_reuses_memory_of_buffers_whose_lifetimes_do_not_overlap():
    assert gen.greedy_plan([(64, 0, 1), (64, 2, 3)]) == 64
    assert gen.greedy_plan([(64, 0, 1), (32, 1, 2), (64, 2, 3)]) == 96
    assert gen.greedy_plan([(16, 0, 0), (48, 0, 2), (32, 1, 2), (16, 2, 3)]) == 96


def test_summaries_name_every_model(models):
    for name, data in models.items():
        line = gen.generate(gen.analyse(data, f"{name}.tflite")).summary
        assert line.startswith(f"tinyfix model: {name}.tflite crc 0x") and "\n" not in line
