# SPDX-License-Identifier: Apache-2.0
"""Generate the firmware's model sources and Kconfig sizing from a user's .tflite file.

Run by the application's CMake at configure time (`-DTINYFIX_MODEL=path/to/model.tflite`),
in the user's Zephyr Python: standard library only.

    python3 scripts/gen_model_sources.py MODEL.tflite OUT_DIR [--name model_data]
        [--arena-margin 1.1] [--summary | --no-summary] [--debug]

OUT_DIR receives:
- <name>.c / <name>.h: the flatbuffer as a 16-byte aligned C array with <NAME>_LEN and
  <NAME>_CRC32 (scripts/demo_data/tflite_to_c.py writes them);
- model_ops.h: MODEL_OPS(X), the ops to register, as MicroMutableOpResolver method suffixes;
- model_info.h: input, output and feature tensor constants, the model kind, the arena estimate;
- model.conf: a Kconfig fragment sizing TinyFix and the tensor arena for this model.
A file is rewritten only when its text changes. One summary line goes to stdout.

The arena estimate replays what TFLM's MicroInterpreter::AllocateTensors() allocates, in
its order, with struct sizes measured from Zephyr's tflite-micro module: the persistent
structures, each kernel's op data, quantization and scratch requests (CMSIS-NN's too), and
the activations laid out as its GreedyMemoryPlanner lays them out.

Exit status: 0 written; 1 the model is refused or a file cannot be read or written (one
`gen_model_sources: error:` line on stderr says why); 2 bad command line; 3 an internal
error (a bug: rerun with --debug for the traceback).

The rules that pick the corrected output, the model kind and the feature tensor are those
of the host tool (host/src/tinyfix/twin/model.py); keep them identical.
"""

from __future__ import annotations

import argparse
import bisect
import importlib.util
import math
import os
import re
import sys
import tempfile
import traceback
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import tflite_reader as tfl

PROG = "gen_model_sources"
DEFAULT_MARGIN = 1.10
MAX_CLASSES = 64
MAX_FEATURES = 4096
MAX_CHANNELS = 64
MAX_DIMS = 6  # what the wire protocol's tensor descriptor carries
MIN_ARENA = 1024  # the range floor of CONFIG_APP_TENSOR_ARENA_SIZE
INT32_MAX = 2**31 - 1

KIND_CODES = {"classifier": 0, "binary": 1, "autoencoder": 2}  # host/src/tinyfix/core.py



def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# BuiltinOperator names by code (schema.fbs).
BUILTIN_NAMES = _words("""
ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE
EMBEDDING_LOOKUP FLOOR FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D
LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1
RELU6 RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH CONCAT_EMBEDDINGS
SKIP_GRAM CALL CUSTOM EMBEDDING_LOOKUP_SPARSE PAD UNIDIRECTIONAL_SEQUENCE_RNN GATHER
BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND TRANSPOSE MEAN SUB DIV SQUEEZE
UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE BIDIRECTIONAL_SEQUENCE_RNN EXP TOPK_V2 SPLIT
LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM CAST PRELU MAXIMUM ARG_MAX MINIMUM LESS NEG
PADV2 GREATER GREATER_EQUAL LESS_EQUAL SELECT SLICE SIN TRANSPOSE_CONV SPARSE_TO_DENSE TILE
EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT SHAPE POW ARG_MIN FAKE_QUANT REDUCE_PROD
REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND LOGICAL_NOT UNPACK REDUCE_MIN FLOOR_DIV
REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD RANGE RESIZE_NEAREST_NEIGHBOR LEAKY_RELU
SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V UNIQUE CEIL REVERSE_V2 ADD_N GATHER_ND COS WHERE
RANK ELU REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE
NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5 SCATTER_ND SELECT_V2 DENSIFY SEGMENT_SUM
BATCH_MATMUL PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE BROADCAST_TO RFFT2D CONV_3D
IMAG REAL COMPLEX_ABS HASHTABLE HASHTABLE_FIND HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL
CONV_3D_TRANSPOSE VAR_HANDLE READ_VARIABLE ASSIGN_VARIABLE BROADCAST_ARGS
RANDOM_STANDARD_NORMAL BUCKETIZE RANDOM_UNIFORM MULTINOMIAL GELU DYNAMIC_UPDATE_SLICE
RELU_0_TO_1 UNSORTED_SEGMENT_PROD UNSORTED_SEGMENT_MAX UNSORTED_SEGMENT_SUM ATAN2
UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR RIGHT_SHIFT STABLEHLO_LOGISTIC STABLEHLO_ADD
STABLEHLO_DIVIDE STABLEHLO_MULTIPLY STABLEHLO_MAXIMUM STABLEHLO_RESHAPE STABLEHLO_CLAMP
STABLEHLO_CONCATENATE STABLEHLO_BROADCAST_IN_DIM STABLEHLO_CONVOLUTION STABLEHLO_SLICE
STABLEHLO_CUSTOM_CALL STABLEHLO_REDUCE STABLEHLO_ABS STABLEHLO_AND STABLEHLO_COSINE
STABLEHLO_EXPONENTIAL STABLEHLO_FLOOR STABLEHLO_LOG STABLEHLO_MINIMUM STABLEHLO_NEGATE
STABLEHLO_OR STABLEHLO_POWER STABLEHLO_REMAINDER STABLEHLO_RSQRT STABLEHLO_SELECT
STABLEHLO_SUBTRACT STABLEHLO_TANH STABLEHLO_SCATTER STABLEHLO_COMPARE STABLEHLO_CONVERT
STABLEHLO_DYNAMIC_SLICE STABLEHLO_DYNAMIC_UPDATE_SLICE STABLEHLO_PAD STABLEHLO_IOTA
STABLEHLO_DOT_GENERAL STABLEHLO_REDUCE_WINDOW STABLEHLO_SORT STABLEHLO_WHILE
STABLEHLO_GATHER STABLEHLO_TRANSPOSE DILATE STABLEHLO_RNG_BIT_GENERATOR REDUCE_WINDOW
STABLEHLO_COMPOSITE STABLEHLO_SHIFT_LEFT STABLEHLO_CBRT STABLEHLO_CASE
""")

# Every builtin op TFLM's MicroMutableOpResolver has an Add<Method>() for
# (tensorflow/lite/micro/micro_mutable_op_resolver.h): op name -> method suffix.
RESOLVER_METHODS: dict[str, str] = {
    "ABS": "Abs", "ADD": "Add", "ADD_N": "AddN", "ARG_MAX": "ArgMax", "ARG_MIN": "ArgMin",
    "ASSIGN_VARIABLE": "AssignVariable", "AVERAGE_POOL_2D": "AveragePool2D",
    "BATCH_MATMUL": "BatchMatMul", "BATCH_TO_SPACE_ND": "BatchToSpaceNd",
    "BROADCAST_ARGS": "BroadcastArgs", "BROADCAST_TO": "BroadcastTo", "CALL_ONCE": "CallOnce",
    "CAST": "Cast", "CEIL": "Ceil", "CONCATENATION": "Concatenation", "CONV_2D": "Conv2D",
    "COS": "Cos", "CUMSUM": "CumSum", "DEPTHWISE_CONV_2D": "DepthwiseConv2D",
    "DEPTH_TO_SPACE": "DepthToSpace", "DEQUANTIZE": "Dequantize", "DIV": "Div", "ELU": "Elu",
    "EMBEDDING_LOOKUP": "EmbeddingLookup", "EQUAL": "Equal", "EXP": "Exp",
    "EXPAND_DIMS": "ExpandDims", "FILL": "Fill", "FLOOR": "Floor", "FLOOR_DIV": "FloorDiv",
    "FLOOR_MOD": "FloorMod", "FULLY_CONNECTED": "FullyConnected", "GATHER": "Gather",
    "GATHER_ND": "GatherNd", "GREATER": "Greater", "GREATER_EQUAL": "GreaterEqual",
    "HARD_SWISH": "HardSwish", "IF": "If", "L2_NORMALIZATION": "L2Normalization",
    "L2_POOL_2D": "L2Pool2D", "LEAKY_RELU": "LeakyRelu", "LESS": "Less",
    "LESS_EQUAL": "LessEqual", "LOG": "Log", "LOGICAL_AND": "LogicalAnd",
    "LOGICAL_NOT": "LogicalNot", "LOGICAL_OR": "LogicalOr", "LOGISTIC": "Logistic",
    "LOG_SOFTMAX": "LogSoftmax", "MAXIMUM": "Maximum", "MAX_POOL_2D": "MaxPool2D",
    "MEAN": "Mean", "MINIMUM": "Minimum", "MIRROR_PAD": "MirrorPad", "MUL": "Mul", "NEG": "Neg",
    "NOT_EQUAL": "NotEqual", "PACK": "Pack", "PAD": "Pad", "PADV2": "PadV2", "PRELU": "Prelu",
    "QUANTIZE": "Quantize", "READ_VARIABLE": "ReadVariable", "REDUCE_MAX": "ReduceMax",
    "RELU": "Relu", "RELU6": "Relu6", "RESHAPE": "Reshape", "RESIZE_BILINEAR": "ResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighbor", "ROUND": "Round", "RSQRT": "Rsqrt",
    "SELECT_V2": "SelectV2", "SHAPE": "Shape", "SIN": "Sin", "SLICE": "Slice",
    "SOFTMAX": "Softmax", "SPACE_TO_BATCH_ND": "SpaceToBatchNd",
    "SPACE_TO_DEPTH": "SpaceToDepth", "SPLIT": "Split", "SPLIT_V": "SplitV", "SQRT": "Sqrt",
    "SQUARE": "Square", "SQUARED_DIFFERENCE": "SquaredDifference", "SQUEEZE": "Squeeze",
    "STRIDED_SLICE": "StridedSlice", "SUB": "Sub", "SUM": "Sum", "SVDF": "Svdf", "TANH": "Tanh",
    "TRANSPOSE": "Transpose", "TRANSPOSE_CONV": "TransposeConv",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTM", "UNPACK": "Unpack",
    "VAR_HANDLE": "VarHandle", "WHILE": "While", "ZEROS_LIKE": "ZerosLike",
}

HEAD_OPS = ("FULLY_CONNECTED", "CONV_2D")
ACTIVATION_OPS = ("SOFTMAX", "LOGISTIC")
CORRECTABLE_OUTPUTS = (tfl.INT8, tfl.INT16, tfl.FLOAT32)
DESCRIBABLE_TYPES = (tfl.FLOAT32, tfl.INT32, tfl.UINT8, tfl.INT16, tfl.INT8)

# --- Arena estimate: sizes measured, not guessed. -------------------------------------------
# sizeof()/alignof() of TFLM's structs, printed by compiling the headers of Zephyr's
# tflite-micro module with arm-none-eabi-g++ -mcpu=cortex-m4 -fno-short-enums (int-sized
# enums: the larger layout; g++ -m32 for native_sim gives the same or less) and x86-64 g++.
# Zephyr compiles TFLM without TF_LITE_STATIC_MEMORY, so the firmware's TfLiteTensor and
# TfLiteNode are the full structs; the Python runtime's are the reduced ones.

# Builtin options TFLM parses into the arena per op: (size, align) 32-bit, then 64-bit.
BUILTIN_DATA: dict[str, tuple[int, int, int, int]] = {
    "ADD": (8, 4, 8, 4), "ARG_MAX": (4, 4, 4, 4), "ARG_MIN": (4, 4, 4, 4),
    "AVERAGE_POOL_2D": (40, 4, 40, 4), "BATCH_MATMUL": (3, 1, 3, 1), "CALL_ONCE": (4, 4, 4, 4),
    "CAST": (8, 4, 8, 4), "CONCATENATION": (8, 4, 8, 4), "CONV_2D": (28, 4, 28, 4),
    "CUMSUM": (2, 1, 2, 1), "DEPTHWISE_CONV_2D": (28, 4, 28, 4), "DEPTH_TO_SPACE": (4, 4, 4, 4),
    "DIV": (4, 4, 4, 4), "FULLY_CONNECTED": (16, 4, 16, 4), "GATHER": (8, 4, 8, 4),
    "IF": (8, 4, 8, 4), "L2_NORMALIZATION": (4, 4, 4, 4), "L2_POOL_2D": (40, 4, 40, 4),
    "LEAKY_RELU": (4, 4, 4, 4), "MAX_POOL_2D": (40, 4, 40, 4), "MEAN": (1, 1, 1, 1),
    "MIRROR_PAD": (4, 4, 4, 4), "MUL": (4, 4, 4, 4), "PACK": (8, 4, 8, 4),
    "REDUCE_MAX": (1, 1, 1, 1), "RESHAPE": (36, 4, 36, 4), "RESIZE_BILINEAR": (2, 1, 2, 1),
    "RESIZE_NEAREST_NEIGHBOR": (2, 1, 2, 1), "SHAPE": (4, 4, 4, 4), "SOFTMAX": (4, 4, 4, 4),
    "SPACE_TO_DEPTH": (4, 4, 4, 4), "SPLIT": (4, 4, 4, 4), "SPLIT_V": (4, 4, 4, 4),
    "SQUEEZE": (36, 4, 36, 4), "STRIDED_SLICE": (24, 4, 24, 4), "SUB": (8, 4, 8, 4),
    "SUM": (1, 1, 1, 1), "SVDF": (12, 4, 12, 4), "TRANSPOSE_CONV": (20, 4, 20, 4),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": (16, 4, 16, 4), "UNPACK": (8, 4, 8, 4),
    "VAR_HANDLE": (8, 4, 16, 8), "WHILE": (8, 4, 8, 4),
}

# The op data each kernel's Init() allocates with the reference kernels: (32-bit, 64-bit as
# the tflite-micro Python runtime builds it, whose USE_TFLM_COMPRESSION adds two ints to
# conv and fully-connected op data). Ops absent here and from NO_OP_DATA get DEFAULT_OP_DATA.
OP_DATA: dict[str, tuple[int, int]] = {
    "ABS": (28, 28), "ADD": (60, 60), "ADD_N": (40, 40), "AVERAGE_POOL_2D": (32, 32),
    "BATCH_MATMUL": (16, 32), "CALL_ONCE": (8, 8), "CONCATENATION": (24, 40),
    "CONV_2D": (56, 80), "CUMSUM": (36, 36), "DEPTHWISE_CONV_2D": (56, 80),
    "DEQUANTIZE": (32, 32), "DIV": (28, 28), "ELU": (256, 256), "EMBEDDING_LOOKUP": (8, 16),
    "EQUAL": (32, 32), "FULLY_CONNECTED": (48, 72), "GREATER": (32, 32),
    "GREATER_EQUAL": (32, 32), "HARD_SWISH": (20, 20), "IF": (8, 8),
    "L2_NORMALIZATION": (4, 4), "LEAKY_RELU": (24, 24), "LESS": (32, 32),
    "LESS_EQUAL": (32, 32), "LOGISTIC": (16, 16), "LOG_SOFTMAX": (28, 40),
    "MAX_POOL_2D": (32, 32), "MEAN": (40, 40), "MIRROR_PAD": (20, 20), "MUL": (36, 36),
    "NOT_EQUAL": (32, 32), "PAD": (56, 56), "PADV2": (56, 56), "PRELU": (28, 28),
    "QUANTIZE": (32, 32), "REDUCE_MAX": (40, 40), "RELU": (28, 28), "RELU6": (8, 8),
    "RSQRT": (28, 28), "SELECT_V2": (1, 1), "SOFTMAX": (56, 80), "SPACE_TO_BATCH_ND": (4, 4),
    "SQUARED_DIFFERENCE": (112, 112), "STRIDED_SLICE": (84, 84), "SUB": (52, 52),
    "SUM": (40, 40), "SVDF": (36, 36), "TANH": (16, 16), "TRANSPOSE_CONV": (72, 88),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": (688, 688), "VAR_HANDLE": (4, 4), "WHILE": (8, 8),
}
# The CMSIS-NN kernels' op data where it is larger (32-bit).
CMSIS_NN_OP_DATA: dict[str, int] = {
    "AVERAGE_POOL_2D": 36, "BATCH_MATMUL": 36, "CONV_2D": 60, "DEPTHWISE_CONV_2D": 60,
    "FULLY_CONNECTED": 72, "MAX_POOL_2D": 36, "SOFTMAX": 64, "SVDF": 40, "TRANSPOSE_CONV": 76,
}
NO_OP_DATA = frozenset(_words("""
ARG_MAX ARG_MIN BATCH_TO_SPACE_ND BROADCAST_ARGS BROADCAST_TO CAST CEIL COS DEPTH_TO_SPACE EXP
EXPAND_DIMS FILL FLOOR GATHER GATHER_ND L2_POOL_2D LOG LOGICAL_AND LOGICAL_OR MAXIMUM MINIMUM
NEG PACK READ_VARIABLE RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR ROUND SHAPE SIN SLICE
SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUEEZE TRANSPOSE UNPACK ZEROS_LIKE
"""))
DEFAULT_OP_DATA = 128

ARENA_ALIGN = 16  # MicroArenaBufferAlignment()
PLANNER_BYTES_PER_BUFFER = 40  # GreedyMemoryPlanner::per_buffer_size()
MAX_SCRATCH_PER_OP = 12  # kMaxScratchBuffersPerOp
SOFTMAX_INT16_LUT = 513 * 2  # two int16 lookup tables of LUTSize<int16_t>() entries
# Kernels whose Prepare() holds its tensors while a helper (CalculateOpDataConv...) takes
# temporary copies of them all again.
NESTED_PREPARE = frozenset(("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"))


@dataclass(frozen=True)
class Abi:
    """Sizes (bytes) of TFLM's bookkeeping on one target; structs align to a pointer."""

    name: str
    pointer: int
    eval_tensor: int
    tflite_tensor: int
    node_and_registration: int
    affine_quantization: int
    scratch_request: int
    scratch_handle: int
    subgraph_allocations: int
    allocation_info: int
    arena_allocator: int
    micro_allocator: int
    greedy_planner: int
    linear_planner: int
    builtin_data_allocator: int
    cmsis_nn: bool  # count CMSIS-NN's scratch buffers (Cortex-M DSP builds) as well
    # Bytes lost to aligning the arena's start and end (the firmware's arena is aligned;
    # the Python runtime's comes from malloc, so both ends may be off).
    alignment_slack: int


# The firmware: a Cortex-M with the reference or the CMSIS-NN kernels, or native_sim.
TARGET_32 = Abi("32-bit target", pointer=4, eval_tensor=12, tflite_tensor=64,
                node_and_registration=44, affine_quantization=12, scratch_request=12,
                scratch_handle=4, subgraph_allocations=8, allocation_info=24,
                arena_allocator=36, micro_allocator=36, greedy_planner=44, linear_planner=4108,
                builtin_data_allocator=8, cmsis_nn=True, alignment_slack=ARENA_ALIGN)
# The tflite-micro Python runtime the tests measure: reference kernels, and the recording
# allocators (RecordingSingleArenaBufferAllocator, RecordingMicroAllocator) in the arena.
# Its allocator objects take 64 bytes more than the headers of Zephyr's module give
# (measured with print_allocations(); the wheel is a newer TFLM), counted in micro_allocator.
HOST_64 = Abi("x86-64 tflite-micro runtime", pointer=8, eval_tensor=24, tflite_tensor=64,
              node_and_registration=64, affine_quantization=24, scratch_request=16,
              scratch_handle=8, subgraph_allocations=16, allocation_info=32,
              arena_allocator=104, micro_allocator=248 + 64, greedy_planner=72, linear_planner=8208,
              builtin_data_allocator=16, cmsis_nn=False, alignment_slack=2 * ARENA_ALIGN)


class ModelError(Exception):
    """The model is one the firmware cannot be built around; the message says why."""


# --- Model analysis ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    """The last layer by the head rule, its feature tensor, and whether TinyFix can use it."""

    op_index: int = -1
    op: str = ""
    feature: tfl.Tensor | None = None
    usable: bool = False
    note: str = "no feature tensor"


@dataclass(frozen=True)
class ModelFacts:
    """What the generated files say about one model."""

    source: str
    data: bytes
    crc: int
    model: tfl.Model
    ops: tuple[str, ...]  # one per operator of every subgraph, subgraph 0 first
    methods: tuple[str, ...]  # resolver method suffixes in first-use order
    input: tfl.Tensor
    output: tfl.Tensor
    logical_output: tfl.Tensor
    dequantized: bool
    kind: str
    head: Head

    @property
    def n_classes(self) -> int:
        """As the host counts them: one per output element, two for binary and autoencoder."""
        return self.logical_output.elements if self.kind == "classifier" else 2


def op_name(model: tfl.Model, op: tfl.Operator) -> str:
    code = model.operator_codes[op.opcode_index].code
    return BUILTIN_NAMES[code] if 0 <= code < len(BUILTIN_NAMES) else f"BUILTIN_{code}"


def _resolver_methods(model: tfl.Model) -> tuple[list[str], list[str]]:
    """Each operator's op name, and the resolver methods in first-use order."""
    names: list[str] = []
    methods: list[str] = []
    for sub in model.subgraphs:
        for op in sub.operators:
            code = model.operator_codes[op.opcode_index]
            name = op_name(model, op)
            if code.code == tfl.CUSTOM_CODE:
                raise ModelError(f"uses the custom op {code.custom_code or '?'!r}; the "
                                 "generated op resolver registers TFLM's builtin ops only")
            method = RESOLVER_METHODS.get(name)
            if method is None:
                raise ModelError(f"uses {name} (builtin op {code.code}), which TensorFlow "
                                 "Lite Micro has no kernel for")
            names.append(name)
            if method not in methods:
                methods.append(method)
    return names, methods


def hybrid_op(model: tfl.Model, sub: tfl.SubGraph, ops: Sequence[str]) -> str | None:
    """The first op taking float32 activations with int8 constant weights, if any."""
    for name, op in zip(ops, sub.operators, strict=False):
        tensors = [sub.tensors[i] for i in op.inputs if i >= 0]
        float_activation = any(t.dtype == tfl.FLOAT32 and not model.is_constant(t)
                               for t in tensors)
        int8_weights = any(t.dtype == tfl.INT8 and model.is_constant(t) for t in tensors)
        if float_activation and int8_weights:
            return name
    return None


def _hybrid_message(op: str) -> str:
    return (f"is a dynamic-range (\"hybrid\") quantized model: its {op} takes float32 "
            "activations with int8 weights, which TensorFlow Lite Micro cannot run. "
            "Re-convert it with full-integer quantization: converter.optimizations = "
            "[tf.lite.Optimize.DEFAULT], converter.representative_dataset = <a few hundred "
            "real inputs>, converter.target_spec.supported_ops = "
            "[tf.lite.OpsSet.TFLITE_BUILTINS_INT8], converter.inference_input_type = "
            "converter.inference_output_type = tf.int8")


def input_of(op: tfl.Operator, k: int) -> int:
    """Tensor index of input k, -1 when the operator has no such input."""
    return op.inputs[k] if k < len(op.inputs) else -1


def producers(sub: tfl.SubGraph) -> dict[int, int]:
    """Index of the operator that writes each tensor."""
    return {t: i for i, op in enumerate(sub.operators) for t in op.outputs}


def _check_describable(t: tfl.Tensor, what: str) -> None:
    if t.dtype not in DESCRIBABLE_TYPES:
        raise ModelError(f"the {what} tensor has type {t.type_name}, which TinyFix does not "
                         "carry (float32, int32, uint8, int16 or int8)")
    if len(t.shape) > MAX_DIMS or any(d < 1 or d > 0xFFFF for d in t.shape):
        raise ModelError(f"the {what} tensor's shape {list(t.shape)} cannot be described "
                         f"(at most {MAX_DIMS} dimensions of 1 to 65535)")
    if t.nbytes > INT32_MAX:
        raise ModelError(f"the {what} tensor {list(t.shape)} is too large ({t.nbytes} bytes)")
    q = t.quantization
    if q is not None and not all(math.isfinite(s) for s in q.scale):
        raise ModelError(f"the {what} tensor has a non-finite quantization scale")
    if q is not None and not all(-INT32_MAX - 1 <= z <= INT32_MAX for z in q.zero_point):
        raise ModelError(f"the {what} tensor's zero point does not fit an int32")


def _check_activation_sizes(model: tfl.Model) -> None:
    for sub in model.subgraphs:
        for t in sub.tensors:
            if t.nbytes > INT32_MAX and not model.is_constant(t):
                raise ModelError(f"tensor {t.index} ({t.name}) {list(t.shape)} would need "
                                 f"{t.nbytes} bytes of arena")


def model_kind(inp: tfl.Tensor, out: tfl.Tensor, ops: Sequence[str]) -> str:
    """classifier, binary (one output value) or autoencoder (output of the input's shape)."""
    if out.elements == 1:
        return "binary"
    same_shape = ([d for d in inp.shape if d != 1] == [d for d in out.shape if d != 1])
    if (same_shape and inp.elements == out.elements and inp.elements >= 8
            and "SOFTMAX" not in ops[-2:]):
        return "autoencoder"
    return "classifier"


def find_head(model: tfl.Model, sub: tfl.SubGraph, ops: Sequence[str],
              output: tfl.Tensor, kind: str) -> Head:
    """The head rule: from the output back over an optional SOFTMAX or LOGISTIC, then an
    optional RESHAPE, to a FULLY_CONNECTED or a 1x1 CONV_2D on a 1x1 map; its input 0 is
    the feature tensor when it is int8 (or int16, in a 16x8 model)."""
    writer = producers(sub)
    at = writer.get(output.index)
    if at is not None and ops[at] in ACTIVATION_OPS:
        at = writer.get(input_of(sub.operators[at], 0))
    if at is not None and ops[at] == "RESHAPE":
        at = writer.get(input_of(sub.operators[at], 0))
    if at is None or ops[at] not in HEAD_OPS:
        tail = ", ".join(ops[-3:]) or "no ops"
        return Head(note=f"does not end with FULLY_CONNECTED or a 1x1 CONV_2D (ends {tail})")
    op, name = sub.operators[at], ops[at]
    if input_of(op, 0) < 0 or input_of(op, 1) < 0:
        return Head(note=f"the last {name} has no input or no weights")
    feature, weights = sub.tensors[op.inputs[0]], sub.tensors[op.inputs[1]]
    if name == "CONV_2D":
        if len(weights.shape) != 4 or weights.shape[1:3] != (1, 1):
            return Head(note="the last CONV_2D is not a 1x1 convolution")
        if math.prod(feature.shape[1:-1]) != 1:
            return Head(note="the last CONV_2D runs on a map larger than 1x1")
    if feature.dtype not in (tfl.INT8, tfl.INT16) or model.is_constant(feature):
        return Head(note=f"the last {name} reads {feature.type_name} features")
    usable, note = _head_usability(model, name, at, feature, weights, kind)
    return Head(op_index=at, op=name, feature=feature, usable=usable, note=note)


def _head_usability(model: tfl.Model, name: str, at: int, feature: tfl.Tensor,
                    weights: tfl.Tensor, kind: str) -> tuple[bool, str]:
    """Whether the head stage can re-fit this layer, as the host decides it."""
    if kind == "autoencoder":
        return False, "an autoencoder's output is a reconstruction, not class scores"
    if feature.dtype != tfl.INT8:
        return False, "16x8 features: the head stage re-fits int8 layers only"
    if weights.dtype != tfl.INT8 or not model.is_constant(weights):
        return False, f"the last {name}'s weights are not constant int8"
    if name == "FULLY_CONNECTED" and len(weights.shape) != 2:
        return False, "the last FULLY_CONNECTED's weights are not a matrix"
    if feature.elements > MAX_FEATURES:
        return False, f"{feature.elements} features exceed {MAX_FEATURES}"
    return True, f"input 0 of {name} (operator {at})"


def printable(name: str) -> str:
    """A file name safe inside C and Kconfig comments."""
    return "".join(c if c.isprintable() else "?" for c in name).replace("*/", "*?")


def analyse(data: bytes, source: str = "model.tflite") -> ModelFacts:
    """Read and check a model. Raises tfl.TfliteFormatError or ModelError."""
    source = printable(source)
    model = tfl.read_model(data)
    sub = model.subgraphs[0]
    ops, methods = _resolver_methods(model)
    main_ops = ops[:len(sub.operators)]
    if not main_ops:
        raise ModelError("has no operators")
    _check_activation_sizes(model)
    if len(sub.inputs) != 1 or len(sub.outputs) != 1:
        raise ModelError(f"has {_count(len(sub.inputs), 'input')} and "
                         f"{_count(len(sub.outputs), 'output')}; TinyFix devices run models "
                         "with one of each")
    hybrid = hybrid_op(model, sub, main_ops)
    if hybrid is not None:
        raise ModelError(_hybrid_message(hybrid))
    inp, out = sub.tensors[sub.inputs[0]], sub.tensors[sub.outputs[0]]
    _check_describable(inp, "input")
    _check_describable(out, "output")
    logical, dequantized = _logical_output(sub, main_ops, out)
    if logical.dtype not in CORRECTABLE_OUTPUTS:
        raise ModelError(f"the output tensor is {logical.type_name}; the TinyFix core "
                         "corrects int8, int16 or float32 outputs")
    if logical.elements < 1 or not logical.shape:
        raise ModelError("the output tensor is empty")
    kind = model_kind(inp, logical, main_ops)
    if kind == "classifier" and logical.elements > MAX_CLASSES:
        raise ModelError(f"has {logical.elements} outputs; TinyFix corrects classifiers of "
                         f"1 to {MAX_CLASSES} classes, or autoencoders (output of the "
                         "input's shape)")
    head = find_head(model, sub, main_ops, logical, kind)
    if head.feature is not None:
        _check_describable(head.feature, "feature")
    return ModelFacts(source=source, data=bytes(data), crc=zlib.crc32(data) & 0xFFFFFFFF,
                      model=model, ops=tuple(ops), methods=tuple(methods), input=inp,
                      output=out, logical_output=logical, dequantized=dequantized,
                      kind=kind, head=head)


def _logical_output(sub: tfl.SubGraph, ops: Sequence[str],
                    out: tfl.Tensor) -> tuple[tfl.Tensor, bool]:
    """The tensor TinyFix corrects: the int8/int16 input of a trailing DEQUANTIZE."""
    at = producers(sub).get(out.index)
    if at is None or ops[at] != "DEQUANTIZE" or input_of(sub.operators[at], 0) < 0:
        return out, False
    logical = sub.tensors[sub.operators[at].inputs[0]]
    _check_describable(logical, "dequantized output")
    return logical, True


# --- Arena estimate ---------------------------------------------------------------------------


def align_up(n: int, align: int) -> int:
    return (n + align - 1) // align * align


@dataclass(frozen=True)
class ArenaEstimate:
    total: int  # the smallest arena AllocateTensors() should accept
    persistent: int  # the tail: structs, op data, quantization arrays
    planned: int  # the head: activations and scratch buffers as the planner lays them out
    scratch: int  # the largest scratch buffer any kernel asks for


class _Arena:
    """TFLM's single arena: persistent allocations grow down from the end, the planned
    (head) section and temporary allocations up from the start; `peak` is the most the
    two ever need together."""

    def __init__(self) -> None:
        self.tail = 0
        self.head = 0
        self.temp = 0
        self.peak = 0

    def persistent(self, size: int, align: int) -> None:
        # The end of a 16-aligned arena is aligned; aligning down below it rounds up here.
        self.tail = align_up(self.tail + size, align)
        self.check()

    def temporary(self, size: int, align: int) -> None:
        self.temp = align_up(max(self.temp, self.head), align) + size
        self.check()

    def reset_temporary(self) -> None:
        self.temp = 0

    def check(self) -> None:
        self.peak = max(self.peak, max(self.head, self.temp) + self.tail)


def greedy_plan(buffers: Sequence[tuple[int, int, int]]) -> int:
    """Bytes TFLM's GreedyMemoryPlanner spans for (size, first use, last use) buffers.

    Its method: place buffers largest first (equal sizes: the one added last first), each
    at the lowest offset where it fits between the buffers already placed whose lifetimes
    overlap its own."""
    order = sorted(range(len(buffers)), key=lambda i: (-buffers[i][0], -i))
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last) by offset
    end = 0
    for i in order:
        size, first, last = buffers[i]
        offset = 0
        for p_offset, p_size, p_first, p_last in placed:
            if p_first > last or first > p_last:
                continue
            if p_offset - offset >= size:
                break
            offset = max(offset, p_offset + p_size)
        bisect.insort(placed, (offset, size, first, last))
        end = max(end, offset + size)
    return end


def _same_padding(size: int, stride: int, kernel: int, dilation: int) -> int:
    out = (size + stride - 1) // max(stride, 1)
    effective = (kernel - 1) * dilation + 1
    return max(((out - 1) * stride + effective - size) // 2, 0)


def _cmsis_conv_scratch(inp: tfl.Tensor, weights: tfl.Tensor,
                        opts: tfl.ConvOptions) -> int:
    """arm_convolve_wrapper_s8/s16_get_buffer_size() of a DSP (Cortex-M4/M7/M33) build."""
    c, kh, kw = inp.shape[3], weights.shape[1], weights.shape[2]
    columns = c * kh * kw
    if inp.dtype == tfl.INT16:
        return 4 * columns
    if kh == kw == 1 and opts.dilation_w == opts.dilation_h == 1:
        # 1x1 kernels never pad; armclang builds keep a 2 x int16 row for them.
        return 4 * c if opts.stride_w == opts.stride_h == 1 else 0
    return 4 * align_up(columns, 4)


def _cmsis_depthwise_scratch(inp: tfl.Tensor, weights: tfl.Tensor, out: tfl.Tensor,
                             opts: tfl.ConvOptions) -> int:
    """arm_depthwise_conv_wrapper_s8/s16_get_buffer_size() of a DSP build."""
    c, kh, kw = inp.shape[3], weights.shape[1], weights.shape[2]
    if c != out.shape[3] or inp.shape[0] != 1 or opts.dilation_w != 1 or opts.dilation_h != 1:
        return 0
    if inp.dtype == tfl.INT8 and kh == kw == 3:
        pads = (0, 0) if opts.padding == tfl.PADDING_VALID else (
            _same_padding(inp.shape[1], opts.stride_h, kh, 1),
            _same_padding(inp.shape[2], opts.stride_w, kw, 1))
        if max(pads) <= 1:
            return 0
    return 2 * c * kh * kw


def kernel_needs(model: tfl.Model, sub: tfl.SubGraph, op: tfl.Operator, name: str,
                 abi: Abi) -> tuple[list[int], list[int]]:
    """(persistent buffers, scratch buffers) one kernel's Prepare() asks for, in bytes."""
    tensors = [sub.tensors[i] if i >= 0 else None for i in op.inputs]
    outputs = [sub.tensors[i] for i in op.outputs]
    # TRANSPOSE_CONV takes (output shape, weights, input, bias).
    data_input = 2 if name == "TRANSPOSE_CONV" else 0
    inp = tensors[data_input] if len(tensors) > data_input else None
    weights = tensors[1] if len(tensors) > 1 else None
    out = outputs[0] if outputs else None
    if inp is None or out is None:
        return [], []
    quantized = inp.dtype in (tfl.INT8, tfl.INT16)
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV") and weights is not None:
        return _conv_needs(name, op, inp, weights, out, quantized, abi)
    if name == "FULLY_CONNECTED" and weights is not None:
        return _fully_connected_needs(inp, weights, out, quantized, abi)
    if name == "AVERAGE_POOL_2D" and abi.cmsis_nn and quantized and len(inp.shape) == 4:
        return [], [4 * inp.shape[3]]
    if name == "SOFTMAX" and inp.dtype == tfl.INT16:
        return [SOFTMAX_INT16_LUT, SOFTMAX_INT16_LUT], []
    if name in ("MEAN", "SUM", "REDUCE_MAX"):
        axis = tensors[1] if len(tensors) > 1 and tensors[1] is not None else None
        scratch = [4 * len(inp.shape), 4 * (axis.elements if axis is not None else 1)]
        if name != "REDUCE_MAX" and quantized:
            scratch.append(4 * out.elements)
        return [], scratch
    return [], []


def _conv_needs(name: str, op: tfl.Operator, inp: tfl.Tensor, weights: tfl.Tensor,
                out: tfl.Tensor, quantized: bool, abi: Abi) -> tuple[list[int], list[int]]:
    if len(weights.shape) != 4 or len(inp.shape) != 4 or len(out.shape) != 4:
        return [], []
    channels = weights.shape[3] if name == "DEPTHWISE_CONV_2D" else weights.shape[0]
    persistent = [4 * channels, 4 * channels]
    reference = [weights.elements] if weights.dtype == tfl.INT4 else []
    if name == "TRANSPOSE_CONV":
        if quantized:
            reference.append(out.elements * (4 if inp.dtype == tfl.INT8 else 8))
        return persistent, reference
    opts = op.options if isinstance(op.options, tfl.ConvOptions) else tfl.ConvOptions()
    cmsis: list[int] = []
    if abi.cmsis_nn and quantized:
        size = (_cmsis_conv_scratch(inp, weights, opts) if name == "CONV_2D"
                else _cmsis_depthwise_scratch(inp, weights, out, opts))
        cmsis = [size] if size > 0 else []
    return persistent, max(reference, cmsis, key=sum)


def _fully_connected_needs(inp: tfl.Tensor, weights: tfl.Tensor, out: tfl.Tensor,
                           quantized: bool, abi: Abi) -> tuple[list[int], list[int]]:
    scales = weights.quantization.scale if weights.quantization is not None else ()
    per_channel = quantized and len(scales) > 1
    persistent = [4 * len(scales), 4 * len(scales)] if per_channel else []
    reference = [weights.elements] if weights.dtype == tfl.INT4 else []
    cmsis: list[int] = []
    accum_depth = weights.shape[-1] if weights.shape else 0
    if (abi.cmsis_nn and inp.dtype == tfl.INT8 and weights.dtype != tfl.INT4
            and len(out.shape) > 2 and accum_depth % 4 == 0):
        depth = out.shape[-1]
        cmsis = [4 * accum_depth] + ([] if per_channel else [8 * depth])
    return persistent, max(reference, cmsis, key=sum)


def _op_data(name: str, abi: Abi) -> int:
    if name in NO_OP_DATA:
        return 0
    sizes = OP_DATA.get(name)
    if sizes is None:
        return DEFAULT_OP_DATA
    size = sizes[0 if abi.pointer == 4 else 1]
    return max(size, CMSIS_NN_OP_DATA.get(name, 0)) if abi.cmsis_nn else size


def _temp_tensor(arena: _Arena, t: tfl.Tensor, abi: Abi) -> None:
    """AllocateTempTfLiteTensor(): the struct, and its quantization arrays when quantized."""
    arena.temporary(abi.tflite_tensor, abi.pointer)
    q = t.quantization
    if q is not None and q.scale and q.zero_point:
        arena.temporary(abi.affine_quantization, abi.pointer)
        arena.temporary(4 + 4 * len(q.scale), 4)


def _persistent_tensor(arena: _Arena, t: tfl.Tensor, abi: Abi) -> None:
    arena.persistent(abi.tflite_tensor, abi.pointer)
    q = t.quantization
    if q is not None and q.scale and q.zero_point:
        arena.persistent(abi.affine_quantization, abi.pointer)
        arena.persistent(4 + 4 * len(q.scale), 4)


def _lifetimes(model: tfl.Model, abi: Abi, scratch: Sequence[tuple[int, int]],
               preserve_all: bool) -> list[tuple[int, int, int]]:
    """(aligned size, first use, last use) of every buffer the planner places, in TFLM's
    order: each subgraph's tensors, then the scratch buffers (size, operator index)."""
    buffers: list[tuple[int, int, int]] = []
    for s, sub in enumerate(model.subgraphs):
        end = len(sub.operators)
        first = [-1] * len(sub.tensors)
        last = [-1] * len(sub.tensors)

        def touch(t: int, scope: int, first: list[int] = first, last: list[int] = last
                  ) -> None:
            if first[t] == -1:
                first[t] = scope
            last[t] = scope

        for t in sub.inputs:
            touch(t, 0)
        for k, op in enumerate(sub.operators, start=1):
            for t in op.outputs:
                touch(t, k)
            for t in op.inputs:
                if t >= 0:
                    touch(t, k)
        for t in sub.outputs:
            touch(t, end)
        for t in sub.tensors:
            if model.is_constant(t) or t.is_variable or t.nbytes == 0:
                continue
            span = (0, end) if preserve_all or s > 0 else (first[t.index], last[t.index])
            buffers.append((align_up(t.nbytes, ARENA_ALIGN), *span))
    buffers += [(align_up(size, ARENA_ALIGN), k + 1, k + 1) for size, k in scratch]
    return buffers


def resource_variable_count(model: tfl.Model) -> int:
    """VAR_HANDLE ops: at most this many resource variables (the firmware creates them)."""
    return sum(op_name(model, op) == "VAR_HANDLE" for sub in model.subgraphs
               for op in sub.operators)


def is_stateful(model: tfl.Model) -> bool:
    """Whether an output depends on earlier invocations: variable tensors (LSTM, SVDF
    state) or resource variables."""
    return resource_variable_count(model) > 0 or any(
        t.is_variable for sub in model.subgraphs for t in sub.tensors)


def _resource_variable_bytes(model: tfl.Model, abi: Abi) -> list[int]:
    """Persistent allocations of resource variables: MicroResourceVariables::Create()'s
    object and slots, then one buffer per variable at its first ASSIGN_VARIABLE's Prepare."""
    count = resource_variable_count(model)
    if count == 0:
        return []
    # struct MicroResourceVariables {pointer, int, int}; MicroResourceVariable {three
    # pointers, int bytes, int default_value}.
    sizes = [abi.pointer + 8, count * (3 * abi.pointer + 8)]
    for sub in model.subgraphs:
        assigned: set[int] = set()
        for op in sub.operators:
            if op_name(model, op) == "ASSIGN_VARIABLE" and op.inputs[0] not in assigned:
                assigned.add(op.inputs[0])
                sizes.append(sub.tensors[op.inputs[1]].nbytes)
    return sizes


def estimate_arena(model: tfl.Model, abi: Abi = TARGET_32,
                   preserve_all: bool = False) -> ArenaEstimate:
    """The arena TFLM's MicroInterpreter::AllocateTensors() needs for `model` on `abi`,
    replaying its allocations in order (micro_allocator.cc, micro_interpreter.cc)."""
    arena = _Arena()
    ptr = abi.pointer
    planner = abi.linear_planner if preserve_all else abi.greedy_planner
    for size in (abi.arena_allocator, planner, abi.micro_allocator,
                 abi.builtin_data_allocator):
        arena.persistent(size, ptr)
    arena.head = abi.scratch_request * MAX_SCRATCH_PER_OP
    arena.persistent(abi.subgraph_allocations * len(model.subgraphs), ptr)
    for sub in model.subgraphs:
        arena.persistent(abi.eval_tensor * len(sub.tensors), ptr)
    for sub in model.subgraphs:
        arena.persistent(abi.node_and_registration * len(sub.operators), ptr)
    nodes = [(sub, op, op_name(model, op)) for sub in model.subgraphs for op in sub.operators]
    for _, _, name in nodes:
        params = BUILTIN_DATA.get(name)
        if params is not None:
            arena.persistent(*(params[:2] if ptr == 4 else params[2:]))
    for _, _, name in nodes:
        if _op_data(name, abi):
            arena.persistent(_op_data(name, abi), ARENA_ALIGN)
    for size in _resource_variable_bytes(model, abi):
        arena.persistent(size, ARENA_ALIGN)
    scratch: list[tuple[int, int]] = []
    for k, (sub, op, name) in enumerate(nodes):
        for _ in range(2 if name in NESTED_PREPARE else 1):
            for t in op.inputs + op.outputs:
                if t >= 0:
                    _temp_tensor(arena, sub.tensors[t], abi)
        persistent, requests = kernel_needs(model, sub, op, name, abi)
        for size in persistent:
            arena.persistent(size, ARENA_ALIGN)
        scratch += [(size, k) for size in requests]
        arena.reset_temporary()
        arena.head = abi.scratch_request * (len(scratch) + MAX_SCRATCH_PER_OP)
        arena.check()
    if scratch:
        arena.persistent(abi.scratch_handle * len(scratch), ptr)
    n_tensors = sum(len(sub.tensors) for sub in model.subgraphs)
    arena.temporary(ptr * len(model.subgraphs), ptr)
    arena.temporary(abi.allocation_info * (n_tensors + len(scratch)), ptr)
    for sub in model.subgraphs:
        for t in sub.tensors:
            if t.is_variable:
                arena.persistent(t.nbytes, ARENA_ALIGN)
    buffers = _lifetimes(model, abi, scratch, preserve_all)
    if not preserve_all:
        arena.temporary(PLANNER_BYTES_PER_BUFFER * len(buffers), ARENA_ALIGN)
    planned = (sum(size for size, _, _ in buffers) if preserve_all
               else greedy_plan(buffers))
    arena.reset_temporary()
    arena.head = planned
    sub = model.subgraphs[0]
    for indices in (sub.inputs, sub.outputs):
        arena.persistent(ptr * len(indices), ARENA_ALIGN)
        for t in indices:
            _persistent_tensor(arena, sub.tensors[t], abi)
    return ArenaEstimate(total=arena.peak + abi.alignment_slack, persistent=arena.tail,
                         planned=planned, scratch=max((s for s, _ in scratch), default=0))


def configured_arena(estimate: int, margin: float) -> int:
    """An arena size: the estimate times the margin, in whole KiB."""
    return max(MIN_ARENA, align_up(math.ceil(estimate * margin), 1024))


@dataclass(frozen=True)
class ArenaSizing:
    """The arena estimates of one model and the sizes configured from them.

    The size covers the larger of the 32-bit and the 64-bit replay: the same build files
    serve Cortex-M boards and 64-bit hosts (native_sim/native/64), and on a 32-bit target
    the difference is TFLM's pointer-sized bookkeeping, under 2 KiB even for large models.
    The margin is for what the replay does not measure: CMSIS-NN's scratch (modelled from
    its sources), a TFLM version whose structs grew, ops outside OP_DATA."""

    target: ArenaEstimate  # 32-bit, CMSIS-NN scratch included
    host: ArenaEstimate  # 64-bit, as the tflite-micro Python runtime allocates
    target_preserve_all: ArenaEstimate
    host_preserve_all: ArenaEstimate
    margin: float

    @classmethod
    def of(cls, model: tfl.Model, margin: float = DEFAULT_MARGIN) -> ArenaSizing:
        return cls(estimate_arena(model, TARGET_32), estimate_arena(model, HOST_64),
                   estimate_arena(model, TARGET_32, preserve_all=True),
                   estimate_arena(model, HOST_64, preserve_all=True), margin)

    @property
    def size(self) -> int:
        """CONFIG_APP_TENSOR_ARENA_SIZE."""
        return configured_arena(max(self.target.total, self.host.total), self.margin)

    @property
    def preserve_all_size(self) -> int:
        """The arena size for TFLM's preserve_all_tensors mode."""
        return configured_arena(max(self.target_preserve_all.total,
                                    self.host_preserve_all.total), self.margin)


# --- Output files -----------------------------------------------------------------------------


def _banner(facts: ModelFacts, comment: Callable[[str], str]) -> str:
    return (comment("SPDX-License-Identifier: Apache-2.0") + "\n"
            + comment(f"Generated by scripts/gen_model_sources.py from {facts.source} "
                      f"(crc32 0x{facts.crc:08X}). Do not edit.") + "\n")


def _c_comment(text: str) -> str:
    return f"/* {text} */"


def _float(x: float) -> str:
    text = f"{x:.9g}"
    if not any(c in text for c in ".e"):
        text += ".0"
    return text + "f"


def _dims(t: tfl.Tensor) -> str:
    return "[" + " ".join(str(d) for d in t.shape) + "]"


def _scale_and_zero_point(t: tfl.Tensor) -> tuple[float, int]:
    """TfLiteTensor.params as TFLM fills them: channel 0's, when both vectors are there."""
    q = t.quantization
    if q is None or not q.scale or not q.zero_point:
        return 0.0, 0
    return q.scale[0], q.zero_point[0]


def _tensor_macros(prefix: str, t: tfl.Tensor, what: str) -> list[str]:
    scale, zero = _scale_and_zero_point(t)
    dtype = tfl.TENSOR_TYPES[t.dtype]
    dims = ", ".join(str(d) for d in t.shape) or "0"
    lines = [f"/** {what}: tensor {t.index}, {t.type_name} {_dims(t)}. */",
             f"#define {prefix}_TENSOR {t.index}",
             f"#define {prefix}_DTYPE {dtype[2]} /* TfLiteType: {t.type_name} */",
             f"#define {prefix}_NDIMS {len(t.shape)}",
             f"#define {prefix}_DIMS {{{dims}}}"]
    lines += [f"#define {prefix}_DIM{i} {d}" for i, d in enumerate(t.shape)]
    lines += [f"#define {prefix}_ELEMENTS {t.elements}",
              f"#define {prefix}_BYTES {t.nbytes}",
              f"#define {prefix}_SCALE {_float(scale)}",
              f"#define {prefix}_ZERO_POINT {zero}",
              ""]
    return lines


def model_info_header(facts: ModelFacts, arena: ArenaSizing) -> str:
    head = facts.head
    feature = head.feature
    lines = [_banner(facts, _c_comment).rstrip("\n"), "", "#ifndef MODEL_INFO_H_",
             "#define MODEL_INFO_H_", "",
             "/** zlib.crc32 and length of the flatbuffer these constants describe. */",
             f"#define MODEL_INFO_CRC32 0x{facts.crc:08X}u",
             f"#define MODEL_INFO_LEN {len(facts.data)}u",
             f"#define MODEL_SCHEMA_VERSION {facts.model.version}",
             "/** Operators in the graph (nodes; MODEL_OP_COUNT counts their kinds). */",
             f"#define MODEL_OPERATOR_COUNT {len(facts.ops)}", ""]
    lines += _tensor_macros("MODEL_INPUT", facts.input, "The subgraph's input")
    lines += _tensor_macros("MODEL_OUTPUT", facts.output, "The subgraph's output")
    lines += _tensor_macros("MODEL_LOGICAL_OUTPUT", facts.logical_output,
                            "What TinyFix corrects: the output, or the int8/int16 tensor "
                            "before a trailing DEQUANTIZE")
    kind = facts.kind
    lines += [
        "/** 1 when a DEQUANTIZE turns the logical output into the float32 output. */",
        f"#define MODEL_OUTPUT_DEQUANTIZED {int(facts.dequantized)}",
        "/** Output elements, and classes as TinyFix counts them (2: binary, autoencoder). */",
        f"#define MODEL_NUM_OUTPUTS {facts.logical_output.elements}",
        f"#define MODEL_NUM_CLASSES {facts.n_classes}",
        "/** Model kind: 0 classifier, 1 binary (one output value), 2 autoencoder. */",
        f"#define MODEL_KIND {KIND_CODES[kind]} /* {kind} */",
        f"#define MODEL_IS_BINARY {int(kind == 'binary')}",
        f"#define MODEL_IS_AUTOENCODER {int(kind == 'autoencoder')}", "",
        "/** 1 when outputs depend on earlier invocations (variable tensors, resource",
        " * variables): the link then offers the host a model reset. */",
        f"#define MODEL_STATEFUL {int(is_stateful(facts.model))}",
        "/** Resource variables to create (VAR_HANDLE ops), 0 for none. */",
        f"#define MODEL_RESOURCE_VARIABLES {resource_variable_count(facts.model)}", "",
        f"/** The feature tensor (input 0 of the head op), or -1: {head.note}. */",
        f"#define MODEL_FEATURE_TENSOR {feature.index if feature else -1}",
        f"#define MODEL_FEATURE_ELEMENTS {feature.elements if feature else 0}",
    ]
    if feature is not None:
        scale, zero = _scale_and_zero_point(feature)
        lines += [f"#define MODEL_FEATURE_DTYPE {tfl.TENSOR_TYPES[feature.dtype][2]} "
                  f"/* TfLiteType: {feature.type_name} */",
                  f"#define MODEL_FEATURE_SCALE {_float(scale)}",
                  f"#define MODEL_FEATURE_ZERO_POINT {zero}"]
    else:
        lines += ["#define MODEL_FEATURE_DTYPE 0", "#define MODEL_FEATURE_SCALE 0.0f",
                  "#define MODEL_FEATURE_ZERO_POINT 0"]
    lines += [
        "/** 1 when the head stage can re-fit the head op (int8 features and weights). */",
        f"#define MODEL_FEATURE_USABLE {int(head.usable)}",
        "/** The head op: MODEL_HEAD_OP_<NAME>, its BuiltinOperator and operator index. */",
        f"#define MODEL_HEAD_OP_{head.op or 'NONE'} 1",
        f"#define MODEL_HEAD_OP_NAME \"{head.op}\"",
        f"#define MODEL_HEAD_OP_CODE {BUILTIN_NAMES.index(head.op) if head.op else -1}",
        f"#define MODEL_HEAD_OP_INDEX {head.op_index}", "",
        "/**",
        " * Tensor arena estimates in bytes, without margin: persistent structures plus the",
        " * planned activations and scratch buffers, for a 32-bit target (reference or",
        " * CMSIS-NN kernels) and for a 64-bit host. MODEL_ARENA_SIZE is the larger times",
        " * the margin in whole KiB (CONFIG_APP_TENSOR_ARENA_SIZE in model.conf); the",
        " * _PRESERVE_ALL figures are for TFLM's preserve_all_tensors mode.",
        " */",
        f"#define MODEL_ARENA_ESTIMATE {arena.target.total}",
        f"#define MODEL_ARENA_PERSISTENT {arena.target.persistent}",
        f"#define MODEL_ARENA_PLANNED {arena.target.planned}",
        f"#define MODEL_ARENA_ESTIMATE_64 {arena.host.total}",
        f"#define MODEL_ARENA_SIZE {arena.size}",
        f"#define MODEL_ARENA_ESTIMATE_PRESERVE_ALL {arena.target_preserve_all.total}",
        f"#define MODEL_ARENA_SIZE_PRESERVE_ALL {arena.preserve_all_size}", "",
        "#endif /* MODEL_INFO_H_ */", ""]
    return "\n".join(lines)


def model_ops_header(facts: ModelFacts) -> str:
    entries = " ".join(f"X({m})" for m in facts.methods)
    if len(entries) > 70:
        entries = "\\\n\t" + " \\\n\t".join(f"X({m})" for m in facts.methods)
    kinds = sorted(set(facts.ops))
    lines = [_banner(facts, _c_comment).rstrip("\n"), "", "#ifndef MODEL_OPS_H_",
             "#define MODEL_OPS_H_", "",
             "/**",
             " * The builtin ops the model uses, in first-use order, as MicroMutableOpResolver",
             " * method suffixes. Define X to use it, e.g.",
             " *   #define ADD_OP(name) if (status == kTfLiteOk) status = resolver.Add##name();",
             " *   MODEL_OPS(ADD_OP)",
             " */",
             f"#define MODEL_OPS(X) {entries}", "",
             "/** Entries of MODEL_OPS: the MicroMutableOpResolver template argument. */",
             f"#define MODEL_OP_COUNT {len(facts.methods)}", "",
             "/* One MODEL_HAS_OP_<BUILTIN> per op kind, for code that wraps a kernel. */"]
    lines += [f"#define MODEL_HAS_OP_{name} 1" for name in kinds]
    lines += ["", "#endif /* MODEL_OPS_H_ */", ""]
    return "\n".join(lines)


def kconfig_fragment(facts: ModelFacts, arena: ArenaSizing) -> str:
    out, inp, head = facts.logical_output, facts.input, facts.head
    classes = max(2, facts.n_classes)
    if facts.kind == "classifier":
        why_classes = f"the output {_dims(out)} {out.type_name} has {out.elements} elements"
    elif facts.kind == "binary":
        why_classes = "one output value is a binary classifier's two classes"
    else:
        why_classes = "an autoencoder's two classes, normal and anomaly"
    features = head.feature.elements if head.usable and head.feature is not None else 0
    if features:
        why_features = (f"tensor {head.feature.index} {_dims(head.feature)}, input 0 of "
                        f"{head.op} (operator {head.op_index})")
    else:
        why_features = f"no usable feature tensor: {head.note}"
    last = inp.shape[-1] if inp.shape else 1
    channels = min(max(last, 1), MAX_CHANNELS)
    lines = [_banner(facts, lambda s: f"# {s}").rstrip("\n"),
             f"# {classes} classes: {why_classes}.",
             f"CONFIG_TINYFIX_MAX_CLASSES={classes}",
             f"# {features} features: {why_features}.",
             f"CONFIG_TINYFIX_MAX_FEATURES={features}",
             f"# {channels} channels: the input {_dims(inp)}'s last dimension, clamped to "
             f"1..{MAX_CHANNELS}.",
             f"CONFIG_TINYFIX_MAX_CHANNELS={channels}",
             f"# {arena.size} bytes: TFLM arena estimate {arena.target.total} B on 32-bit "
             f"targets (CMSIS-NN scratch included), {arena.host.total} B on 64-bit hosts; "
             f"the larger x {arena.margin:g}, in whole KiB (preserve-all mode: "
             f"{arena.preserve_all_size}).",
             f"CONFIG_APP_TENSOR_ARENA_SIZE={arena.size}", ""]
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def summary_line(facts: ModelFacts, arena_size: int) -> str:
    inp, out, head = facts.input, facts.logical_output, facts.head
    if head.feature is not None:
        reading = f"head {head.op} reading {head.feature.elements} features"
        if not head.usable:
            reading += f" (not re-fittable: {head.note})"
    else:
        reading = "no head"
    dequant = " (then DEQUANTIZE)" if facts.dequantized else ""
    return (f"tinyfix model: {facts.source} crc 0x{facts.crc:08x}, input {_dims(inp)} "
            f"{inp.type_name} ({inp.nbytes} B), output {_dims(out)} {out.type_name}{dequant}"
            f", {facts.kind}, {reading}, {len(facts.ops)} ops "
            f"({_count(len(facts.methods), 'kind')}), arena ~{arena_size // 1024} KiB")


def _load_tflite_to_c() -> ModuleType:
    path = Path(__file__).resolve().parent / "demo_data" / "tflite_to_c.py"
    spec = importlib.util.spec_from_file_location("tinyfix_tflite_to_c", path)
    if spec is None or spec.loader is None:
        raise OSError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Generated:
    files: dict[str, str]  # file name -> text
    arena: ArenaSizing
    summary: str


def generate(facts: ModelFacts, name: str = "model_data",
             margin: float = DEFAULT_MARGIN) -> Generated:
    """Every output file's text for `facts`, and the summary line."""
    header, source = _load_tflite_to_c().c_sources(facts.data, name, facts.source)
    arena = ArenaSizing.of(facts.model, margin)
    files = {
        f"{name}.h": header,
        f"{name}.c": source,
        "model_ops.h": model_ops_header(facts),
        "model_info.h": model_info_header(facts, arena),
        "model.conf": kconfig_fragment(facts, arena),
    }
    return Generated(files, arena, summary_line(facts, arena.size))


def write_if_changed(path: Path, text: str) -> bool:
    """Write atomically, and only when the text differs, so that CMake rebuilds only what
    a new model changes. True when written."""
    try:
        if path.read_text() == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.splitlines()[0],
        epilog="Exit status: 0 written, 1 model refused or I/O error, 2 usage, 3 bug.")
    parser.add_argument("model", type=Path, help="the .tflite flatbuffer")
    parser.add_argument("out_dir", type=Path, help="directory for the generated files")
    parser.add_argument("--name", default="model_data",
                        help="C symbol and file stem of the model array (default: %(default)s)")
    parser.add_argument("--arena-margin", type=float, default=DEFAULT_MARGIN, metavar="FLOAT",
                        help="factor on the arena estimate (default: %(default)s)")
    parser.add_argument("--summary", action=argparse.BooleanOptionalAction, default=True,
                        help="print the one-line summary on stdout (default: on)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of bugs")
    return parser


def run(args: argparse.Namespace) -> Generated:
    """Analyse, generate and write."""
    try:
        data = args.model.read_bytes()
    except OSError as err:
        raise ModelError(f"cannot read {args.model}: {err.strerror or err}") from err
    try:
        facts = analyse(data, args.model.name)
    except (tfl.TfliteFormatError, ModelError) as err:
        raise ModelError(f"{args.model.name}: {err}") from err
    generated = generate(facts, args.name, args.arena_margin)
    try:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        for file_name, text in generated.files.items():
            write_if_changed(args.out_dir / file_name, text)
    except OSError as err:
        raise ModelError(f"cannot write to {args.out_dir}: {err.strerror or err}") from err
    return generated


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not math.isfinite(args.arena_margin) or args.arena_margin < 1.0:
        parser.error("--arena-margin must be a number of at least 1.0")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args.name):
        parser.error(f"--name must be a C identifier, not {args.name!r}")
    if args.name in ("model_info", "model_ops"):
        parser.error(f"--name {args.name} would overwrite the generated {args.name}.h")
    try:
        generated = run(args)
    except ModelError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    except Exception as err:
        if args.debug:
            traceback.print_exc()
        print(f"{PROG}: internal error: {type(err).__name__}: {err} (rerun with --debug)",
              file=sys.stderr)
        return 3
    if args.summary:
        print(generated.summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
