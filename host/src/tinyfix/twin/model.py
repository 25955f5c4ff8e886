# SPDX-License-Identifier: Apache-2.0
"""What a .tflite model looks like to a TinyFix device: tensors, ops and the last layer.

Read from the flatbuffer with the schema classes the `tflite-micro` package ships, so the
twin describes any int8 model a user gives without TensorFlow.

The rules (scripts/gen_model_sources.py applies the same ones to build firmware):
- the *output* TinyFix corrects is the subgraph's output, or the int8/int16 tensor a trailing
  DEQUANTIZE turns into floats (the same numbers, exactly, before the float conversion);
- one output element is a binary classifier (class 1's logit or sigmoid probability); an
  output of the input's shape is an autoencoder (anomaly score: reconstruction error);
- the last layer (what the head stage re-fits) is found walking back from the output over an
  optional SOFTMAX or LOGISTIC and an optional RESHAPE to a FULLY_CONNECTED, or a 1x1
  CONV_2D on a 1x1 map (as TFLM's person-detection model ends); its input is the feature
  vector.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from tinyfix.core import Core, ModelInfo, Params
from tinyfix.errors import TinyfixError
from tinyfix.wire.messages import TensorDesc
from tinyfix.wire.protocol import MAX_DIMS, DType

# tflite schema TensorType -> TfLiteType numbering used on the wire.
_SCHEMA_DTYPE = {0: DType.FLOAT32, 2: DType.INT32, 3: DType.UINT8, 7: DType.INT16, 9: DType.INT8}
_CORE_OUTPUT = {DType.INT8: "int8", DType.INT16: "int16", DType.FLOAT32: "float32"}
NUMPY_DTYPE = {DType.FLOAT32: np.float32, DType.INT32: np.int32, DType.UINT8: np.uint8,
               DType.INT16: np.int16, DType.INT8: np.int8}
STAGE_HEAD, STAGE_SCALE = 0x01, 0x02


def schema() -> ModuleType:
    try:
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated
    except ImportError as err:
        raise TinyfixError(
            "the simulated device needs the tflite-micro package: pip install tflite-micro"
        ) from err
    return schema_py_generated


def read_model_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise TinyfixError(f"cannot read {what} {path}: {err.strerror}") from err


def parse_flatbuffer(data: bytes, name: str) -> tuple[ModuleType, Any]:
    """(the schema module, the unpacked ModelT) of a .tflite, or TinyfixError."""
    fb = schema()
    try:
        if not fb.Model.ModelBufferHasIdentifier(data, 0):
            raise ValueError("no TFL3 identifier")
        return fb, fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    except Exception as err:
        raise TinyfixError(f"{name} is not a TensorFlow Lite flatbuffer ({err})") from err


def _names(cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of the graph; scale and zero point of a per-channel tensor are channel 0's."""

    index: int
    name: str
    dtype: DType
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    scales: tuple[float, ...] = ()

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape) if self.shape else 0

    @property
    def nbytes(self) -> int:
        return self.n_elements * self.dtype.size

    def desc(self) -> TensorDesc:
        return TensorDesc(int(self.dtype), self.shape, self.scale, self.zero_point)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLM's QuantizeMultiplier(): real = multiplier * 2^(shift - 31)."""
    if real <= 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    scaled = q * (1 << 31)  # exact: a power-of-two scaling
    fixed = math.floor(scaled)
    if scaled - fixed >= 0.5:  # std::round: half away from zero
        fixed += 1
    if fixed == 1 << 31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return (1 << 31) - 1, 30
    return fixed, shift


@dataclass(frozen=True)
class FinalLayer:
    """The graph's last layer: what the head stage replaces or corrects."""

    op_index: int
    feature: TensorInfo
    weights: np.ndarray  # int8 (outputs, features)
    bias: np.ndarray  # int32 (outputs,)
    weight_scales: tuple[float, ...]
    multipliers: tuple[int, ...]
    shifts: tuple[int, ...]
    activation: str
    produces_output: bool
    op: str = "FULLY_CONNECTED"  # or CONV_2D (1x1 on a 1x1 map)
    # What follows the layer on the way to the output: "SOFTMAX", "LOGISTIC" or "".
    then: str = ""

    @property
    def per_channel(self) -> bool:
        return len(set(zip(self.multipliers, self.shifts, strict=True))) > 1

    def head_params(self, core: Core, model: ModelInfo) -> Params:
        """A parameter set whose head stage is this very layer (TFLM's arithmetic).

        Raises TinyfixError when the core's head cannot express the layer: it has no fused
        activation and writes the model's output tensor. Per-tensor and per-channel weight
        quantization both map onto its per-row multipliers.
        """
        if not self.produces_output or self.activation != "NONE":
            raise TinyfixError(f"the last {self.op} is not the model's output layer "
                               f"(activation {self.activation})")
        p = Params.identity(core, model)
        c = p.c
        n_rows, n_features = self.weights.shape
        c.flags = STAGE_HEAD | STAGE_SCALE
        c.n_features = n_features
        c.head_rows = n_rows
        c.head_columns = 0
        for k in range(n_rows):
            # A per-tensor layer has one multiplier; every row uses it.
            c.head.multiplier[k] = self.multipliers[k if len(self.multipliers) > 1 else 0]
            c.head.shift[k] = self.shifts[k if len(self.shifts) > 1 else 0]
        for i, b in enumerate(self.bias.tolist()):
            c.head.bias[i] = b
        for i, w in enumerate(self.weights.reshape(-1).tolist()):
            c.head.weights[i] = w
        return p.seal()


@dataclass(frozen=True)
class ModelGraph:
    """A parsed .tflite: tensors the device reports, its ops and its last layer.

    `output` is the tensor TinyFix corrects (before a trailing DEQUANTIZE, see the module
    docstring); `dequantized` says a DEQUANTIZE follows it. `kind` is "classifier",
    "binary" or "autoencoder". `head_note` says why there is no usable last layer. `state`
    says what keeps state from one Invoke() to the next ("" for none): then an output
    depends on the inputs before it, unless the interpreter is reset."""

    data: bytes
    crc: int
    ops: tuple[str, ...]
    input: TensorInfo
    output: TensorInfo
    feature: TensorInfo | None
    final: FinalLayer | None
    name: str = ""
    kind: str = "classifier"
    dequantized: bool = False
    head_note: str = ""
    state: str = ""

    @classmethod
    def load(cls, path: str | Path) -> ModelGraph:
        path = Path(path)
        return cls.from_bytes(read_model_file(path, "the model"), name=path.name)

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "model") -> ModelGraph:
        fb, model = parse_flatbuffer(data, name)
        return _describe(fb, model, bytes(data), name)

    @property
    def n_classes(self) -> int:
        """Classes: one per output element, two for a binary model or an autoencoder."""
        return self.output.n_elements if self.kind == "classifier" else 2

    def model_info(self, core: Core) -> ModelInfo:
        """The core's view of the model (channels: the input's last dimension, when the
        core holds that many; otherwise the input stage is not available)."""
        lib = core.lib
        channels = self.input.shape[-1] if self.input.shape else 0
        if self.input.dtype != DType.INT8 or channels > lib.TINYFIX_MAX_CHANNELS:
            channels = 0
        n_features = 0 if self.feature is None else self.feature.n_elements
        if n_features > lib.TINYFIX_MAX_FEATURES or self.kind == "autoencoder":
            n_features = 0
        float_out = self.output.dtype == DType.FLOAT32
        quantized_in = self.input.dtype in (DType.INT8, DType.INT16) and self.input.scale > 0
        if self.input.dtype not in _CORE_OUTPUT:
            raise TinyfixError(f"the input tensor is {self.input.dtype.name}; TinyFix feeds "
                               "int8, int16 or float32 inputs")
        return ModelInfo(
            model_crc=self.crc,
            n_classes=self.n_classes,
            output_type=_CORE_OUTPUT[self.output.dtype],
            output_scale=1.0 if float_out else self.output.scale,
            output_zero_point=0 if float_out else self.output.zero_point,
            n_channels=channels,
            input_scale=self.input.scale if quantized_in else 1.0,
            input_zero_point=self.input.zero_point if quantized_in else 0,
            n_features=n_features,
            feature_zero_point=self.feature.zero_point if n_features else 0,
            kind=self.kind,
            n_outputs=self.output.n_elements,
            input_type=_CORE_OUTPUT[self.input.dtype],
        )


def _tensor(fb: ModuleType, sub: Any, index: int, what: str) -> TensorInfo:
    t = sub.tensors[index]
    dtype = _SCHEMA_DTYPE.get(t.type)
    if dtype is None:
        kind = _names(fb.TensorType).get(t.type, str(t.type))
        raise TinyfixError(f"the {what} tensor has type {kind}, which TinyFix does not carry")
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
    if len(shape) > MAX_DIMS or any(d < 1 or d > 0xFFFF for d in shape):
        raise TinyfixError(f"the {what} tensor's shape {list(shape)} cannot be described")
    q = t.quantization
    scales = tuple(float(s) for s in (q.scale if q is not None and q.scale is not None else []))
    zps = [int(z) for z in (q.zeroPoint if q is not None and q.zeroPoint is not None else [])]
    raw = t.name if t.name is not None else b""
    name = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    return TensorInfo(index, name, dtype, shape, scales[0] if scales else 0.0,
                      zps[0] if zps else 0, scales)


def _buffer(model: Any, sub: Any, index: int, dtype: type) -> np.ndarray:
    data = model.buffers[sub.tensors[index].buffer].data
    if data is None:
        raise TinyfixError(f"tensor {index} has no constant data")
    return np.frombuffer(np.asarray(data, dtype=np.uint8).tobytes(), dtype=dtype).copy()


def _producers(sub: Any) -> dict[int, int]:
    """Operator index that writes each tensor."""
    return {int(t): i for i, op in enumerate(sub.operators or []) for t in op.outputs}


def _layer_weights(fb: ModuleType, model: Any, sub: Any, op: Any, kind: str
                   ) -> tuple[np.ndarray, np.ndarray, TensorInfo] | str:
    """(weights (outputs, features), bias, weight tensor) of a FULLY_CONNECTED or 1x1
    CONV_2D, or why it is not a layer the head stage can take."""
    inputs = [int(i) for i in op.inputs]
    if len(inputs) < 2:
        return f"the last {kind} has no weights"
    w_info = _tensor(fb, sub, inputs[1], "weight")
    if w_info.dtype != DType.INT8:
        return f"the last {kind}'s weights are {w_info.dtype.name}, not int8"
    weights = _buffer(model, sub, inputs[1], np.int8)
    if kind == "CONV_2D":
        if len(w_info.shape) != 4 or w_info.shape[1:3] != (1, 1):
            return "the last CONV_2D is not a 1x1 convolution"
        weights = weights.reshape(w_info.shape[0], w_info.shape[3])
    elif len(w_info.shape) != 2:
        return "the last FULLY_CONNECTED's weights are not a matrix"
    else:
        weights = weights.reshape(w_info.shape)
    n_out = weights.shape[0]
    if len(inputs) > 2 and inputs[2] >= 0:
        bias = _buffer(model, sub, inputs[2], np.int32)
    else:
        bias = np.zeros(n_out, dtype=np.int32)
    return weights, bias, w_info


def _final_layer(fb: ModuleType, model: Any, sub: Any, ops: list[str],
                 output: TensorInfo) -> FinalLayer | str:
    """The last layer by the head rule (module docstring), or why there is none."""
    producers = _producers(sub)
    at = producers.get(output.index)
    then = ""
    if at is not None and ops[at] in ("SOFTMAX", "LOGISTIC"):
        then = ops[at]
        at = producers.get(int(sub.operators[at].inputs[0]))
    if at is not None and ops[at] == "RESHAPE":
        at = producers.get(int(sub.operators[at].inputs[0]))
    if at is None or ops[at] not in ("FULLY_CONNECTED", "CONV_2D"):
        tail = ", ".join(ops[-3:]) or "no ops"
        return ("the model does not end with FULLY_CONNECTED or a 1x1 CONV_2D (then "
                f"optionally RESHAPE and SOFTMAX or LOGISTIC): its last ops are {tail}")
    op, kind = sub.operators[at], ops[at]
    feature = _tensor(fb, sub, int(op.inputs[0]), "feature")
    if kind == "CONV_2D" and math.prod(feature.shape[1:-1]) != 1:
        return "the last CONV_2D runs on a map larger than 1x1"
    if feature.dtype != DType.INT8:
        return (f"the last layer reads {feature.dtype.name} features (a 16x8 model): the head "
                "stage re-fits int8 layers only")
    found = _layer_weights(fb, model, sub, op, kind)
    if isinstance(found, str):
        return found
    weights, bias, w_info = found
    out = _tensor(fb, sub, int(op.outputs[0]), "layer output")
    n_out = weights.shape[0]
    w_scales = w_info.scales if len(w_info.scales) > 1 else (w_info.scale,) * n_out
    quant = [
        quantize_multiplier(float(np.float32(feature.scale)) * float(np.float32(s))
                            / float(np.float32(out.scale)))
        for s in w_scales
    ]
    options = op.builtinOptions
    act = getattr(options, "fusedActivationFunction", 0) if options is not None else 0
    # A RESHAPE keeps values and quantization, so the layer writes the output's numbers.
    same = (out.scale, out.zero_point) == (output.scale, output.zero_point)
    return FinalLayer(
        op_index=at, feature=feature, weights=weights, bias=bias, weight_scales=w_scales,
        multipliers=tuple(m for m, _ in quant), shifts=tuple(s for _, s in quant),
        activation=_names(fb.ActivationFunctionType).get(act, str(act)),
        produces_output=not then and same, op=kind, then=then,
    )


def _hybrid_note(fb: ModuleType, model: Any, sub: Any, ops: list[str]) -> str:
    """Why TFLM cannot run a dynamic-range ("hybrid") model, or "" when it is not one."""
    for i, op in enumerate(sub.operators or []):
        inputs = [int(t) for t in op.inputs if int(t) >= 0]
        types = [sub.tensors[t].type for t in inputs]
        consts = [model.buffers[sub.tensors[t].buffer].data is not None for t in inputs]
        float_activation = any(t == fb.TensorType.FLOAT32 and not c
                               for t, c in zip(types, consts, strict=True))
        int8_weights = any(t == fb.TensorType.INT8 and c
                           for t, c in zip(types, consts, strict=True))
        if float_activation and int8_weights:
            return (f"is a dynamic-range (\"hybrid\") quantized model: its {ops[i]} takes "
                    "float activations with int8 weights, which TensorFlow Lite Micro cannot "
                    "run. Convert it with full-integer quantization: "
                    "converter.optimizations = [tf.lite.Optimize.DEFAULT], "
                    "converter.representative_dataset = <a few hundred real inputs>, "
                    "converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]"
                    ", converter.inference_input_type = converter.inference_output_type = "
                    "tf.int8")
    return ""


def _state_note(sub: Any, ops: list[str]) -> str:
    """What carries state between invocations: variable tensors (LSTM, SVDF) or resource
    variables (VAR_HANDLE); "" when nothing does."""
    variables = {i for i, t in enumerate(sub.tensors) if t.isVariable}
    users = sorted({ops[k] for k, op in enumerate(sub.operators or [])
                    if variables & {int(t) for t in op.inputs}})
    parts = []
    if variables:
        parts.append(f"{len(variables)} variable tensor(s) of {', '.join(users) or 'no op'}")
    if "VAR_HANDLE" in ops:
        parts.append(f"{ops.count('VAR_HANDLE')} resource variable(s) (VAR_HANDLE)")
    return " and ".join(parts)


def _kind(inp: TensorInfo, out: TensorInfo, ops: list[str]) -> str:
    if out.n_elements == 1:
        return "binary"
    same_shape = tuple(d for d in inp.shape if d != 1) == tuple(d for d in out.shape if d != 1)
    if (same_shape and inp.n_elements == out.n_elements and inp.n_elements >= 8
            and "SOFTMAX" not in ops[-2:]):
        return "autoencoder"
    return "classifier"


def _describe(fb: ModuleType, model: Any, data: bytes, name: str) -> ModelGraph:
    if not model.subgraphs:
        raise TinyfixError(f"{name} has no subgraph")
    sub = model.subgraphs[0]
    op_names = _names(fb.BuiltinOperator)
    ops: list[str] = []
    for op in sub.operators or []:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin == fb.BuiltinOperator.CUSTOM:
            custom = code.customCode.decode() if code.customCode else "?"
            raise TinyfixError(f"{name} uses the custom op {custom!r}, which the simulated "
                               "device (TFLite Micro's built-in kernels) cannot run")
        ops.append(op_names.get(builtin, f"BUILTIN_{builtin}"))
    if len(sub.inputs) != 1 or len(sub.outputs) != 1:
        raise TinyfixError(f"{name} has {len(sub.inputs)} inputs and {len(sub.outputs)} "
                           "outputs; TinyFix devices run models with one of each")
    hybrid = _hybrid_note(fb, model, sub, ops)
    if hybrid:
        raise TinyfixError(f"{name} {hybrid}")
    inp = _tensor(fb, sub, int(sub.inputs[0]), "input")
    out = _tensor(fb, sub, int(sub.outputs[0]), "output")
    dequantized = False
    last = _producers(sub).get(out.index)
    if last is not None and ops[last] == "DEQUANTIZE":
        out = _tensor(fb, sub, int(sub.operators[last].inputs[0]), "dequantized output")
        dequantized = True
    if out.dtype not in _CORE_OUTPUT:
        raise TinyfixError(f"the output tensor is {out.dtype.name}; the TinyFix core corrects "
                           "int8, int16 or float32 outputs")
    if out.n_elements < 1:
        raise TinyfixError(f"{name}'s output tensor is empty")
    if out.n_elements > 64 and _kind(inp, out, ops) == "classifier":
        raise TinyfixError(f"{name} has {out.n_elements} outputs; TinyFix corrects classifiers "
                           "of 1 to 64 classes, or autoencoders (output of the input's shape)")
    kind = _kind(inp, out, ops)
    final = _final_layer(fb, model, sub, ops, out)
    note = final if isinstance(final, str) else ""
    layer = None if isinstance(final, str) else final
    return ModelGraph(data=data, crc=zlib.crc32(data), ops=tuple(ops), input=inp, output=out,
                      feature=None if layer is None else layer.feature, final=layer, name=name,
                      kind=kind, dequantized=dequantized, head_note=note,
                      state=_state_note(sub, ops))
