# SPDX-License-Identifier: Apache-2.0
"""The float model an int8 model was converted from, run on the host as a reference.

It runs in LiteRT (`ai-edge-litert`) with its reference kernels (OpResolverType.BUILTIN_REF):
plain float arithmetic, no XNNPACK. Only the float model runs here; the int8 side always
runs in TFLM (the device or its twin), since LiteRT's int8 kernels do not reproduce TFLM's.

    ref = ReferenceModel.load("gesture_float.tflite")
    ref.check_matches(int8_graph)          # shapes, class count; TinyfixError says what differs
    run = ref.run(x)                       # x: (N, *input shape) in real units
    run.probs                              # (N, classes): the teacher's probabilities
    run.features                           # (N, F) the last layer's input, or None

The last layer is found as for the int8 model (tinyfix.twin.model): walking back from the
output over an optional SOFTMAX or LOGISTIC and RESHAPE to a FULLY_CONNECTED or CONV_2D,
whose input is the feature vector the int8 model's features are compared with.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit, softmax

from tinyfix.errors import TinyfixError
from tinyfix.twin.model import ModelGraph, parse_flatbuffer, read_model_file

_FLOAT32 = 0  # schema TensorType


def _op_names(fb: Any, model: Any, sub: Any) -> list[str]:
    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if isinstance(v, int)}
    out = []
    for op in sub.operators or []:
        code = model.operatorCodes[op.opcodeIndex]
        out.append(names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?"))
    return out


@dataclass(frozen=True)
class ReferenceRun:
    """The float model on N inputs."""

    outputs: NDArray[np.float64]  # (N, outputs) as the model writes them
    probs: NDArray[np.float64]  # (N, classes)
    features: NDArray[np.float64] | None  # (N, F) the last layer's input, or None
    ends_in: str  # "SOFTMAX", "LOGISTIC" or "" (logits)

    @property
    def top_class(self) -> NDArray[np.int64]:
        return np.argmax(self.probs, axis=1).astype(np.int64)


@dataclass(frozen=True)
class ReferenceModel:
    name: str
    data: bytes
    input_shape: tuple[int, ...]  # without the batch dimension
    n_outputs: int
    ends_in: str
    feature_tensor: int | None  # the last layer's input, or None
    n_features: int
    stateful: bool
    feature_note: str = ""

    @classmethod
    def load(cls, path: str | Path) -> ReferenceModel:
        path = Path(path)
        return cls.from_bytes(read_model_file(path, "the reference model"), path.name)

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "reference model") -> ReferenceModel:
        fb, model = parse_flatbuffer(data, name)
        sub = model.subgraphs[0]
        if len(sub.inputs) != 1 or len(sub.outputs) != 1:
            raise TinyfixError(f"{name} has {len(sub.inputs)} inputs and {len(sub.outputs)} "
                               "outputs; the int8 model it stands for has one of each")
        inp, out = sub.tensors[int(sub.inputs[0])], sub.tensors[int(sub.outputs[0])]
        if inp.type != _FLOAT32 or out.type != _FLOAT32:
            raise TinyfixError(f"{name} is not a float model (its input or output is not "
                               "float32): give the float .tflite the int8 model was "
                               "converted from")
        ops = _op_names(fb, model, sub)
        producer = {int(t): i for i, op in enumerate(sub.operators or []) for t in op.outputs}
        at = producer.get(int(sub.outputs[0]))
        ends_in = ""
        if at is not None and ops[at] in ("SOFTMAX", "LOGISTIC"):
            ends_in = ops[at]
            at = producer.get(int(sub.operators[at].inputs[0]))
        if at is not None and ops[at] == "RESHAPE":
            at = producer.get(int(sub.operators[at].inputs[0]))
        feature, n_features, note = None, 0, ""
        if at is not None and ops[at] in ("FULLY_CONNECTED", "CONV_2D"):
            feature = int(sub.operators[at].inputs[0])
            n_features = math.prod(int(d) for d in sub.tensors[feature].shape[1:])
        else:
            note = "the float model does not end in a FULLY_CONNECTED or CONV_2D layer"
        stateful = any(t.isVariable for t in sub.tensors) or "VAR_HANDLE" in ops
        shape = tuple(int(d) for d in inp.shape)
        return cls(name, bytes(data), shape[1:] if shape and shape[0] == 1 else shape,
                   math.prod(int(d) for d in out.shape), ends_in, feature, n_features,
                   stateful, note)

    @property
    def n_classes(self) -> int:
        return 2 if self.n_outputs == 1 else self.n_outputs

    def check_matches(self, input_shape: tuple[int, ...], n_outputs: int, kind: str,
                      name: str = "the int8 model") -> None:
        """Raise TinyfixError unless this float model can stand for an int8 model with this
        input shape, output count and kind (ModelInfo.kind)."""
        if kind == "autoencoder":
            raise TinyfixError("--reference-model is for classifiers: an autoencoder's "
                               "reconstruction is fitted by its anomaly threshold")
        int8_input = tuple(int(d) for d in input_shape)
        if int8_input and int8_input[0] == 1:
            int8_input = int8_input[1:]
        if int8_input != self.input_shape:
            raise TinyfixError(f"the reference model {self.name} takes inputs of shape "
                               f"{list(self.input_shape)}, {name} {list(int8_input)}: they "
                               "are not the same network")
        if n_outputs != self.n_outputs:
            raise TinyfixError(f"the reference model {self.name} has {self.n_outputs} "
                               f"output(s), {name} {n_outputs}: not the same classes")

    def check_graph(self, graph: ModelGraph) -> None:
        self.check_matches(graph.input.shape, graph.output.n_elements, graph.kind,
                           f"the int8 model {graph.name}")

    def features_match(self, n_features: int) -> str:
        """"" when the float model's feature vector can be compared with the int8 model's
        `n_features`, else why not."""
        if self.feature_tensor is None:
            return self.feature_note
        if n_features != self.n_features:
            return (f"the float model's last layer reads {self.n_features} features, the "
                    f"int8 model's {n_features}")
        return ""

    def run(self, x: NDArray, progress: Callable[[int], None] | None = None) -> ReferenceRun:
        """The float model on every input (N, *input shape), one at a time from a reset
        state; `progress` is called with the number done."""
        try:
            from ai_edge_litert import interpreter as litert
        except ImportError as err:
            raise TinyfixError("--reference-model runs the float model in LiteRT: pip "
                               "install ai-edge-litert") from err
        xs = np.asarray(x, dtype=np.float32)
        if xs.shape[1:] != self.input_shape:
            raise TinyfixError(f"inputs of shape {list(xs.shape[1:])}; the reference model "
                               f"takes {list(self.input_shape)}")
        interp = litert.Interpreter(
            model_content=self.data,
            experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF,
            experimental_preserve_all_tensors=self.feature_tensor is not None)
        interp.allocate_tensors()
        inp = interp.get_input_details()[0]
        out = interp.get_output_details()[0]
        outputs = np.empty((len(xs), self.n_outputs))
        feats = None if self.feature_tensor is None else np.empty((len(xs), self.n_features))
        for i, sample in enumerate(xs):
            if self.stateful:
                interp.reset_all_variables()
            interp.set_tensor(inp["index"], sample.reshape(inp["shape"]))
            interp.invoke()
            outputs[i] = interp.get_tensor(out["index"]).reshape(-1)
            if feats is not None:
                feats[i] = interp.get_tensor(self.feature_tensor).reshape(-1)
            if progress is not None:
                progress(i + 1)
        if not np.all(np.isfinite(outputs)):
            raise TinyfixError(f"the reference model {self.name} gave non-finite outputs")
        return ReferenceRun(outputs, self.probabilities(outputs), feats, self.ends_in)

    def probabilities(self, outputs: NDArray[np.float64]) -> NDArray[np.float64]:
        """Class probabilities from the model's outputs (N, outputs)."""
        if self.n_outputs == 1:
            p1 = outputs[:, 0] if self.ends_in == "LOGISTIC" else expit(outputs[:, 0])
            p1 = np.clip(p1, 0.0, 1.0)
            return np.stack([1.0 - p1, p1], axis=1)
        if self.ends_in in ("SOFTMAX", "LOGISTIC"):  # LOGISTIC: one sigmoid per class
            p = np.clip(outputs, 0.0, None)
            return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-300)
        return softmax(outputs, axis=1)
