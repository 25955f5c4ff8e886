# SPDX-License-Identifier: Apache-2.0
"""A tiny float graph: tensors, ops in execution order, and its float forward pass.

The graph is the single description every zoo artefact comes from: the float reference
(labels, calibration ranges), the int8 / 16x8 / hybrid quantization and the flatbuffers.
Shapes carry TFLite's batch dimension of 1; the forward pass runs a batch (N, ...) in its
place. Weights are stored as TFLite lays them out (CONV_2D [O, kh, kw, I], DEPTHWISE_CONV_2D
[1, kh, kw, I*M], FULLY_CONNECTED [O, I]).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyfix.zoo import kernels

WEIGHTED_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
# Ops whose output TFLite quantizes exactly like their input (the kernels do not rescale).
PASS_THROUGH_OPS = ("AVERAGE_POOL_2D", "MAX_POOL_2D", "RESHAPE")


@dataclass
class Tensor:
    """`role` is "activation", "weight", "bias" or "int32" (a RESHAPE shape, MEAN axes)."""

    name: str
    shape: tuple[int, ...]
    role: str = "activation"
    data: np.ndarray | None = None

    @property
    def is_constant(self) -> bool:
        return self.data is not None


@dataclass
class Op:
    """One builtin op; only the fields its kind uses matter."""

    kind: str
    inputs: tuple[int, ...]
    output: int
    activation: str = "NONE"
    padding: str = "SAME"
    stride: tuple[int, int] = (1, 1)
    filter_size: tuple[int, int] = (1, 1)
    depth_multiplier: int = 1
    per_channel: bool = True  # weight scales per output channel (FULLY_CONNECTED may not)
    keep_dims: bool = False


@dataclass
class Graph:
    tensors: list[Tensor] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    input: int = 0
    output: int = 0

    def add_tensor(self, tensor: Tensor) -> int:
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def producer(self, tensor: int) -> Op | None:
        return next((op for op in self.ops if op.output == tensor), None)

    @property
    def op_kinds(self) -> tuple[str, ...]:
        return tuple(op.kind for op in self.ops)

    def forward(self, x: np.ndarray) -> dict[int, np.ndarray]:
        """Every activation for a batch x (N, *input shape without batch), float32."""
        values = {self.input: np.asarray(x, dtype=np.float32)}
        for op in self.ops:
            values[op.output] = run_op(self, op, values)
        return values

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[self.output]


def run_op(graph: Graph, op: Op, values: dict[int, np.ndarray]) -> np.ndarray:
    """The float result of one op on a batch, its fused activation applied."""
    x = values[op.inputs[0]]
    consts = [graph.tensors[i].data for i in op.inputs[1:]]
    n = x.shape[0]
    if op.kind == "FULLY_CONNECTED":
        w, b = consts
        out = x.reshape(n, -1) @ w.T + b
    elif op.kind == "CONV_2D":
        out = kernels.conv2d(x, consts[0], consts[1], op.stride, op.padding)
    elif op.kind == "DEPTHWISE_CONV_2D":
        out = kernels.depthwise_conv2d(x, consts[0], consts[1], op.stride, op.padding,
                                       op.depth_multiplier)
    elif op.kind == "AVERAGE_POOL_2D":
        out = kernels.average_pool(x, op.filter_size, op.stride, op.padding)
    elif op.kind == "MAX_POOL_2D":
        out = kernels.max_pool(x, op.filter_size, op.stride, op.padding)
    elif op.kind == "RESHAPE":
        out = x.reshape(n, *graph.tensors[op.output].shape[1:])
    elif op.kind == "SOFTMAX":
        out = kernels.softmax(x)
    elif op.kind == "LOGISTIC":
        out = kernels.logistic(x)
    elif op.kind == "ADD":
        out = x + values[op.inputs[1]]
    elif op.kind == "MEAN":
        axes = tuple(int(a) for a in np.asarray(consts[0]))
        out = x.mean(axis=axes, keepdims=op.keep_dims)
    else:
        raise ValueError(f"the zoo graph has no float kernel for {op.kind}")
    return kernels.activation(out, op.activation).astype(np.float32, copy=False)
