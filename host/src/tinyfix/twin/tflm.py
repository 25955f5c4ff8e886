# SPDX-License-Identifier: Apache-2.0
"""Run a model with the real TFLite Micro kernels (the `tflite-micro` PyPI package).

Every tensor is preserved so the feature vector (the final FULLY_CONNECTED's input) can be
read after Invoke(), as firmware does with a persistent tensor or a preserved arena.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator

import numpy as np

from tinyfix.errors import TinyfixError
from tinyfix.twin.model import NUMPY_DTYPE, ModelGraph

# Host arena: generous, since a too small one only costs a confusing allocation error.
MIN_ARENA_BYTES = 256 * 1024
_MISSING_OP = re.compile(r"Didn't find op for builtin opcode '([^']+)'")


@contextlib.contextmanager
def _stderr_text() -> Iterator[list[str]]:
    """Collect what C++ code prints on fd 2 (TFLM reports why it refuses a model there)."""
    out: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out.append(tmp.read().decode(errors="replace"))


class TflmRunner:
    """One TFLM interpreter for a graph; not thread-safe (the twin serves one request at a
    time)."""

    def __init__(self, graph: ModelGraph) -> None:
        try:
            from tflite_micro.python.tflite_micro import runtime
        except ImportError as err:
            raise TinyfixError(
                "the simulated device needs the tflite-micro package: pip install tflite-micro"
            ) from err
        self.graph = graph
        arena = max(MIN_ARENA_BYTES, 16 * len(graph.data))
        with _stderr_text() as text:
            try:
                self._interp = runtime.Interpreter.from_bytes(
                    graph.data, arena_size=arena,
                    intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors,
                )
                failure = None
            except (RuntimeError, ValueError) as err:
                failure = err
        if failure is not None:
            raise TinyfixError(self._explain(failure, text[0])) from failure
        self._in_shape = tuple(graph.input.shape)
        self._in_dtype = NUMPY_DTYPE[graph.input.dtype]

    def _explain(self, err: Exception, log: str) -> str:
        missing = _MISSING_OP.findall(log)
        if missing:
            ops = ", ".join(dict.fromkeys(missing))
            return (f"{self.graph.name} uses {ops}, which TensorFlow Lite Micro has no kernel "
                    "for; the simulated device (and the firmware) cannot run it")
        detail = " ".join(line.strip() for line in log.splitlines() if line.strip())
        return f"TensorFlow Lite Micro cannot run {self.graph.name}: {err}" + (
            f" ({detail})" if detail else "")

    def reset(self) -> None:
        """Start the model's state afresh (variable tensors, resource variables)."""
        self._interp.reset()

    def invoke(self, data: bytes, features: bool) -> tuple[bytes, bytes | None, int]:
        """Raw output bytes, feature bytes (if asked and known), nanoseconds in Invoke()."""
        x = np.frombuffer(data, dtype=self._in_dtype).reshape(self._in_shape)
        self._interp.set_input(x, 0)
        start = time.perf_counter_ns()
        self._interp.invoke()
        spent = time.perf_counter_ns() - start
        if self.graph.dequantized:
            # The numbers TinyFix corrects: the int8 tensor before the float conversion.
            got = self._interp.GetTensor(self.graph.output.index, 0)
            raw = np.ascontiguousarray(got["tensor_data"],
                                       dtype=NUMPY_DTYPE[self.graph.output.dtype]).tobytes()
        else:
            raw = np.ascontiguousarray(self._interp.get_output(0)).tobytes()
        feats = None
        if features and self.graph.feature is not None:
            got = self._interp.GetTensor(self.graph.feature.index, 0)
            feats = np.ascontiguousarray(got["tensor_data"], dtype=np.int8).tobytes()
        return raw, feats, spent

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw outputs (N, classes) and features (N, F) for a batch of quantized inputs,
        each from a reset state when the model keeps one (a sample is its own sequence)."""
        n = x.shape[0]
        out_dtype = NUMPY_DTYPE[self.graph.output.dtype]
        raws = np.empty((n, self.graph.output.n_elements), dtype=out_dtype)
        feats = None
        if self.graph.feature is not None:
            feats = np.empty((n, self.graph.feature.n_elements), dtype=np.int8)
        for i in range(n):
            if self.graph.state:
                self.reset()
            raw, f, _ = self.invoke(np.ascontiguousarray(x[i], self._in_dtype).tobytes(),
                                    feats is not None)
            raws[i] = np.frombuffer(raw, dtype=out_dtype)
            if feats is not None and f is not None:
                feats[i] = np.frombuffer(f, dtype=np.int8)
        return raws, feats
