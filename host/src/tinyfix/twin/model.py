# SPDX-License-Identifier: Apache-2.0
"""What a .tflite model looks like to a TinyFix device: tensors, ops and the last layer.

Read from the flatbuffer with the schema classes the `tflite-micro` package ships, so the
twin describes any int8 model a user gives without TensorFlow. The feature vector is the
int8 input of the final FULLY_CONNECTED (optionally followed by SOFTMAX): what the core's
head stage re-fits.
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
    """The graph's last FULLY_CONNECTED: what the head stage replaces."""

    op_index: int
    feature: TensorInfo
    weights: np.ndarray  # int8 (classes, features)
    bias: np.ndarray  # int32 (classes,)
    weight_scales: tuple[float, ...]
    multipliers: tuple[int, ...]
    shifts: tuple[int, ...]
    activation: str
    produces_output: bool

    @property
    def per_channel(self) -> bool:
        return len(set(zip(self.multipliers, self.shifts, strict=True))) > 1

    def head_params(self, core: Core, model: ModelInfo) -> Params:
        """A parameter set whose head stage is this very layer (TFLM's arithmetic).

        Raises TinyfixError when the core's head cannot express the layer: it has no fused
        activation and writes the model's output tensor. Per-tensor and per-channel weight
        quantization both map onto its per-class multipliers.
        """
        if not self.produces_output or self.activation != "NONE":
            raise TinyfixError("the last FULLY_CONNECTED is not the model's output layer "
                               f"(activation {self.activation})")
        p = Params.identity(core, model)
        c = p.c
        n_features = self.weights.shape[1]
        c.flags = STAGE_HEAD | STAGE_SCALE
        c.n_features = n_features
        n_classes = self.weights.shape[0]
        for k in range(n_classes):
            # A per-tensor layer has one multiplier; every class uses it.
            c.head.multiplier[k] = self.multipliers[k if len(self.multipliers) > 1 else 0]
            c.head.shift[k] = self.shifts[k if len(self.shifts) > 1 else 0]
        for i, b in enumerate(self.bias.tolist()):
            c.head.bias[i] = b
        for i, w in enumerate(self.weights.reshape(-1).tolist()):
            c.head.weights[i] = w
        return p.seal()


@dataclass(frozen=True)
class ModelGraph:
    """A parsed .tflite: tensors the device reports, its ops and its last layer."""

    data: bytes
    crc: int
    ops: tuple[str, ...]
    input: TensorInfo
    output: TensorInfo
    feature: TensorInfo | None
    final: FinalLayer | None
    name: str = ""

    @classmethod
    def load(cls, path: str | Path) -> ModelGraph:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as err:
            raise TinyfixError(f"cannot read the model {path}: {err.strerror}") from err
        return cls.from_bytes(data, name=path.name)

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "model") -> ModelGraph:
        fb = schema()
        try:
            if not fb.Model.ModelBufferHasIdentifier(data, 0):
                raise ValueError("no TFL3 identifier")
            model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
        except Exception as err:
            raise TinyfixError(f"{name} is not a TensorFlow Lite flatbuffer ({err})") from err
        return _describe(fb, model, bytes(data), name)

    @property
    def n_classes(self) -> int:
        return self.output.n_elements

    def model_info(self, core: Core) -> ModelInfo:
        """The core's view of the model (channels: the input's last dimension)."""
        lib = core.lib
        channels = self.input.shape[-1] if self.input.shape else 0
        if self.input.dtype != DType.INT8 or channels > lib.TINYFIX_MAX_CHANNELS:
            channels = 0
        n_features = 0 if self.feature is None else self.feature.n_elements
        if n_features > lib.TINYFIX_MAX_FEATURES:
            n_features = 0
        float_out = self.output.dtype == DType.FLOAT32
        return ModelInfo(
            model_crc=self.crc,
            n_classes=self.n_classes,
            output_type=_CORE_OUTPUT[self.output.dtype],
            output_scale=1.0 if float_out else self.output.scale,
            output_zero_point=0 if float_out else self.output.zero_point,
            n_channels=channels,
            input_scale=self.input.scale if channels else 1.0,
            input_zero_point=self.input.zero_point if channels else 0,
            n_features=n_features,
            feature_zero_point=self.feature.zero_point if n_features else 0,
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


def _final_layer(fb: ModuleType, model: Any, sub: Any, ops: list[str],
                 output: TensorInfo) -> FinalLayer | None:
    at = len(ops) - 1
    if ops and ops[-1] == "SOFTMAX":
        at -= 1
    if at < 0 or ops[at] != "FULLY_CONNECTED":
        return None
    op = sub.operators[at]
    inputs = [int(i) for i in op.inputs]
    feature = _tensor(fb, sub, inputs[0], "feature")
    if feature.dtype != DType.INT8 or len(inputs) < 2:
        return None
    w_info = _tensor(fb, sub, inputs[1], "weight")
    if w_info.dtype != DType.INT8 or len(w_info.shape) != 2:
        return None
    out = _tensor(fb, sub, int(op.outputs[0]), "layer output")
    weights = _buffer(model, sub, inputs[1], np.int8).reshape(w_info.shape)
    n_classes = w_info.shape[0]
    if len(inputs) > 2 and inputs[2] >= 0:
        bias = _buffer(model, sub, inputs[2], np.int32)
    else:
        bias = np.zeros(n_classes, dtype=np.int32)
    w_scales = w_info.scales if len(w_info.scales) > 1 else (w_info.scale,) * n_classes
    quant = [
        quantize_multiplier(float(np.float32(feature.scale)) * float(np.float32(s))
                            / float(np.float32(out.scale)))
        for s in w_scales
    ]
    options = op.builtinOptions
    act = getattr(options, "fusedActivationFunction", 0) if options is not None else 0
    return FinalLayer(
        op_index=at, feature=feature, weights=weights, bias=bias, weight_scales=w_scales,
        multipliers=tuple(m for m, _ in quant), shifts=tuple(s for _, s in quant),
        activation=_names(fb.ActivationFunctionType).get(act, str(act)),
        produces_output=out.index == output.index,
    )


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
    inp = _tensor(fb, sub, int(sub.inputs[0]), "input")
    out = _tensor(fb, sub, int(sub.outputs[0]), "output")
    if out.dtype not in _CORE_OUTPUT:
        raise TinyfixError(f"the output tensor is {out.dtype.name}; the TinyFix core corrects "
                           "int8, int16 or float32 outputs")
    if out.n_elements < 2:
        raise TinyfixError(f"the output tensor has {out.n_elements} element; TinyFix "
                           "corrects models with at least two classes")
    final = _final_layer(fb, model, sub, ops, out)
    return ModelGraph(data=data, crc=zlib.crc32(data), ops=tuple(ops), input=inp, output=out,
                      feature=None if final is None else final.feature, final=final, name=name)
