# SPDX-License-Identifier: Apache-2.0
"""Run a zoo model in TFLite Micro (the `tflite-micro` package) on real-valued inputs.

Quantizes inputs and dequantizes outputs with the parameters TFLM itself reports, so a
check that passes here passes on the interpreter the simulated device uses.
"""

from __future__ import annotations

import time

import numpy as np
from tflite_micro.python.tflite_micro import runtime

# Generous: the float twins of the image models hold several 100 kB activations.
ARENA_BYTES = 2 * 1024 * 1024


class TflmModel:
    """One TFLM interpreter for a .tflite; raises RuntimeError if TFLM refuses it."""

    def __init__(self, data: bytes, arena_size: int = ARENA_BYTES) -> None:
        self.interpreter = runtime.Interpreter.from_bytes(data, arena_size=arena_size)
        self.input = self.interpreter.get_input_details(0)
        self.output = self.interpreter.get_output_details(0)
        self.seconds_per_inference = 0.0

    @staticmethod
    def _scale(details: dict) -> tuple[float, int] | None:
        q = details.get("quantization_parameters") or {}
        scales = list(q.get("scales", []))
        if not scales:
            return None
        zero_points = list(q.get("zero_points", [])) or [0]
        return float(scales[0]), int(zero_points[0])

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        dtype = np.dtype(self.input["dtype"])
        params = self._scale(self.input)
        if dtype.kind == "f" or params is None:
            return np.asarray(x, dtype=dtype)
        scale, zero_point = params
        info = np.iinfo(dtype)
        v = np.asarray(x, dtype=np.float64) / np.float32(scale)
        q = np.sign(v) * np.floor(np.abs(v) + 0.5) + zero_point
        return np.clip(q, info.min, info.max).astype(dtype)

    def dequantize_output(self, raw: np.ndarray) -> np.ndarray:
        params = self._scale(self.output)
        if np.dtype(self.output["dtype"]).kind == "f" or params is None:
            return raw.astype(np.float64)
        scale, zero_point = params
        return (raw.astype(np.float64) - zero_point) * np.float32(scale)

    def run_raw(self, x_stored: np.ndarray) -> np.ndarray:
        """Raw output tensors (N, outputs) for inputs already in the input tensor's type,
        each sample from a reset interpreter (a model that keeps state sees each alone)."""
        shape = tuple(int(d) for d in self.input["shape"])
        outs = []
        spent = 0
        for sample in x_stored:
            self.interpreter.reset()
            self.interpreter.set_input(np.ascontiguousarray(sample).reshape(shape), 0)
            start = time.perf_counter_ns()
            self.interpreter.invoke()
            spent += time.perf_counter_ns() - start
            outs.append(np.array(self.interpreter.get_output(0)).reshape(-1))
        self.seconds_per_inference = spent / 1e9 / max(len(x_stored), 1)
        return np.stack(outs)

    def run(self, x: np.ndarray) -> np.ndarray:
        """Real-valued outputs (N, outputs) for real-valued inputs (N, *input shape)."""
        return self.dequantize_output(self.run_raw(self.quantize_input(x)))
