# SPDX-License-Identifier: Apache-2.0
"""A built zoo model: its float graph, its .tflite files, its data and how to read outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from tinyfix.zoo.data import (
    DRIFTS,
    ClassConditional,
    Drift,
    NormalSubspace,
    channel_stats,
    reconstruction_error,
    write_npz,
)
from tinyfix.zoo.flatbuffer import write_tflite
from tinyfix.zoo.graph import Graph
from tinyfix.zoo.quantize import QuantizedGraph, calibrate, quantize
from tinyfix.zoo.stateful import carry_logits

KINDS = ("classifier", "binary", "autoencoder", "hybrid")
# Field drift is scaled until the float model keeps this share of its lab labels: a drop a
# correction can win back most of (the demo's accelerometer loses about as much).
FIELD_AGREEMENT = 0.78
_DRIFT_FIT_SAMPLES = 128
_DRIFT_FIT_STEPS = 5


@dataclass(frozen=True, eq=False)
class Design:
    """What a topology returns: the float graph, its data and how to quantize it.

    `calibration` are the representative inputs the converter would be given; `kind` says
    how outputs become labels ("binary": one logit, or one probability after LOGISTIC).
    `drift` gives the field drift's proportions; its size is fitted per model. `stateful`
    makes the int8 model carry its logits from one invocation to the next (zoo.stateful).
    """

    name: str
    kind: str
    graph: Graph
    distribution: ClassConditional | NormalSubspace
    calibration: np.ndarray
    class_names: tuple[str, ...]
    scheme: str = "int8"
    float_io: bool = False
    anomaly_threshold: float | None = None
    drift: Drift = field(default_factory=Drift)
    stateful: bool = False


@dataclass(frozen=True, eq=False)
class ZooModel:
    """A test model. `tflite` is the model under test (int8, 16x8 or hybrid; with float I/O
    for "float_io"); `float_tflite` the float32 model with the same weights."""

    design: Design
    quantized: QuantizedGraph
    tflite: bytes
    float_tflite: bytes
    channel_mean: np.ndarray
    channel_sd: np.ndarray

    @property
    def name(self) -> str:
        return self.design.name

    @property
    def kind(self) -> str:
        return self.design.kind

    @property
    def graph(self) -> Graph:
        return self.design.graph

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.design.class_names

    @property
    def n_classes(self) -> int:
        """Label classes (2 for binary models and the autoencoder)."""
        return len(self.design.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.graph.tensors[self.graph.input].shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.graph.tensors[self.graph.output].shape

    @property
    def input_dtype(self) -> str:
        return "float32" if self.design.float_io else self.quantized.params[self.graph.input].dtype

    @property
    def output_dtype(self) -> str:
        if self.design.float_io:
            return "float32"
        return self.quantized.params[self.graph.output].dtype

    @property
    def ops(self) -> tuple[str, ...]:
        kinds = self.graph.op_kinds
        return ("QUANTIZE", *kinds, "DEQUANTIZE") if self.design.float_io else kinds

    @property
    def anomaly_threshold(self) -> float | None:
        """Reconstruction error above which the autoencoder calls an input an anomaly."""
        return self.design.anomaly_threshold

    def last_layer(self) -> tuple[str, int, int]:
        """(op, inputs, outputs) of the last weighted layer."""
        op = next(o for o in reversed(self.graph.ops) if len(o.inputs) == 3)
        w = self.graph.tensors[op.inputs[1]].shape
        return op.kind, int(np.prod(w[1:])), int(w[0])

    def forward_float(self, x: np.ndarray) -> np.ndarray:
        """Float reference outputs (N, outputs) for real inputs (N, *input shape w/o batch)."""
        out = self.graph.run(np.asarray(x, dtype=np.float32))
        return out.reshape(out.shape[0], -1)

    def predict(self, outputs: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
        """Labels from real-valued outputs (N, outputs): arg-max, a binary output's side of 0
        (logit) or 0.5 (LOGISTIC), or for the autoencoder its reconstruction error of x
        against the threshold."""
        outputs = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
        if self.kind == "autoencoder":
            if x is None or self.anomaly_threshold is None:
                raise ValueError("the autoencoder's labels need the inputs x")
            return (reconstruction_error(x, outputs) > self.anomaly_threshold).astype(np.int64)
        if outputs.shape[1] == 1:
            cut = 0.5 if self.graph.ops[-1].kind == "LOGISTIC" else 0.0
            return (outputs[:, 0] > cut).astype(np.int64)
        return np.argmax(outputs, axis=1).astype(np.int64)

    def dataset(self, n: int = 300, seed: int = 1, drift: str = "lab",
                drift_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """x (N, *input shape w/o batch) float32 in real units and y (N,) int64 labels.

        A classifier's labels are the float model's decisions on the clean inputs; with
        drift="field" the inputs then go through the device drift numbered `drift_seed`.
        """
        if drift not in DRIFTS:
            raise ValueError(f"drift is one of {DRIFTS}, not {drift!r}")
        rng = np.random.default_rng([0xDA7A, seed])
        dist = self.design.distribution
        x, generating = dist.sample(n, rng)
        y = generating if self.kind == "autoencoder" else self.predict(self.forward_float(x))
        if drift == "field":
            x = self._drifted(x, self.field_drift, drift_seed, rng)
        return x, y

    def _drifted(self, x: np.ndarray, drift: Drift, drift_seed: int,
                 rng: np.random.Generator) -> np.ndarray:
        moved = drift.apply(x, self.channel_mean, self.channel_sd, drift_seed, rng)
        return self.design.distribution.clip_real(moved)

    @cached_property
    def field_drift(self) -> Drift:
        """The design's drift scaled so the float model keeps FIELD_AGREEMENT of its labels
        on field data (device 0), found by bisection on a fixed sample."""
        x, y = self.dataset(_DRIFT_FIT_SAMPLES, seed=0x5EED)

        def agreement(severity: float) -> float:
            rng = np.random.default_rng(0x5EED)
            moved = self._drifted(x, self.design.drift.scaled(severity), 0, rng)
            return float(np.mean(self.predict(self.forward_float(moved), moved) == y))

        low, high = 0.0, 1.0
        while agreement(high) > FIELD_AGREEMENT and high < 64.0:
            low, high = high, 2.0 * high
        for _ in range(_DRIFT_FIT_STEPS):
            middle = 0.5 * (low + high)
            low, high = (middle, high) if agreement(middle) > FIELD_AGREEMENT else (low, middle)
        return self.design.drift.scaled(0.5 * (low + high))

    def save(self, folder: str | Path) -> dict[str, Path]:
        """<name>_int8.tflite (the model under test, whatever its scheme) and
        <name>_float.tflite."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"int8": folder / f"{self.name}_int8.tflite",
                 "float": folder / f"{self.name}_float.tflite"}
        paths["int8"].write_bytes(self.tflite)
        paths["float"].write_bytes(self.float_tflite)
        return paths

    def save_dataset(self, path: str | Path, n: int = 300, seed: int = 1, drift: str = "lab",
                     drift_seed: int = 0) -> Path:
        x, y = self.dataset(n, seed, drift, drift_seed)
        return write_npz(path, x, y, self.class_names)


def realize(design: Design) -> ZooModel:
    """Calibrate, quantize and write a design's flatbuffers."""
    graph = design.graph
    ranges = calibrate(graph, design.calibration) if design.scheme in ("int8", "int16x8") else None
    quantized = quantize(graph, ranges, design.scheme)
    tflite = write_tflite(graph, quantized, design.float_io, f"TinyFix zoo {design.name}")
    if design.stateful:
        tflite = carry_logits(tflite)
    float_tflite = write_tflite(graph, quantize(graph, None, "float"), False,
                                f"TinyFix zoo {design.name} (float)")
    mean, sd = channel_stats(design.calibration)
    return ZooModel(design, quantized, tflite, float_tflite, mean, sd)
