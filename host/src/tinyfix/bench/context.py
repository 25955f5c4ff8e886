# SPDX-License-Identifier: Apache-2.0
"""What the scenarios share: sizes, the models (run by the real TFLM kernels), the demo
data from fixed seeds, and the fits several tables and the cost section reuse.

Raw outputs of an int8 model are what the device returns: inputs quantized by the C core's
input stage (as the firmware does; with a parameter set's input correction where a row has
one) and run through TFLM, which also gives the int8 feature vector the final
FULLY_CONNECTED reads (the head stage's input). Rows without a correction are scored through
the C core too, with the identity parameter set (the same "before" as `calibrate.py`); the
float model's float32 logits take the same path.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tinyfix import metrics
from tinyfix.capture import quantize_inputs
from tinyfix.core import Core, ModelInfo, Params
from tinyfix.demo_data import gesture_data as gd
from tinyfix.errors import TinyfixError
from tinyfix.fit import (
    DeviceLimits,
    FitOptions,
    FitResult,
    FloatParams,
    HeadSource,
    fit_classification,
    head_source,
    quantize,
)
from tinyfix.fit.frame_labels import model_window_ms
from tinyfix.fit.through_core import CoreRun, run_frames
from tinyfix.twin.model import ModelGraph
from tinyfix.twin.tflm import TflmRunner
from tinyfix.wire.protocol import DType

REPO = Path(__file__).resolve().parents[4]
MODEL_DIR = REPO / "models" / "gesture"
INT8_MODEL = MODEL_DIR / "gesture_int8.tflite"
FLOAT_MODEL = MODEL_DIR / "gesture_float.tflite"
# A field calibration stream of the same drifted device, apart from the documented test
# stream (gesture_data.SEEDS["stream_field"]): voting is tuned here, judged there.
STREAM_FIELD_CALIB_SEED = 3003
BACKGROUND = tuple(gd.CLASS_NAMES.index(n) for n in gd.BACKGROUND_CLASSES)


@dataclass(frozen=True)
class BenchSize:
    """How much data each scenario uses. Windows are counts, streams seconds or hours."""

    name: str
    lab_test: int
    lab_reference: int  # labelled lab windows the label-free fit takes as its reference
    lab_reference_alt: int  # a second reference size to show the sensitivity (0: none)
    field_calib: int
    field_test: int
    stream_lab_s: float
    stream_calib_s: float
    stream_test_s: float
    anomaly_lab_calib_h: float
    anomaly_lab_test_h: float
    anomaly_field_calib_h: float
    anomaly_field_test_h: float
    retrain_epochs: int
    callgrind_calls: int
    cortexm_frames: int


# The documented splits of the demo (models/gesture/seeds.json) at full size.
FULL = BenchSize("full", lab_test=1800, lab_reference=600, lab_reference_alt=1200,
                 field_calib=600, field_test=1800, stream_lab_s=600.0,
                 stream_calib_s=1200.0, stream_test_s=1800.0, anomaly_lab_calib_h=12.0,
                 anomaly_lab_test_h=24.0, anomaly_field_calib_h=12.0,
                 anomaly_field_test_h=48.0, retrain_epochs=100, callgrind_calls=50,
                 cortexm_frames=100)
# CI: the same calibration data (what a user would have), shorter evaluation.
QUICK = BenchSize("quick", lab_test=600, lab_reference=600, lab_reference_alt=0,
                  field_calib=600, field_test=900, stream_lab_s=300.0,
                  stream_calib_s=1200.0, stream_test_s=900.0, anomaly_lab_calib_h=12.0,
                  anomaly_lab_test_h=8.0, anomaly_field_calib_h=12.0,
                  anomaly_field_test_h=24.0, retrain_epochs=40, callgrind_calls=10,
                  cortexm_frames=20)
# Tests: structure only.
TINY = BenchSize("tiny", lab_test=120, lab_reference=120, lab_reference_alt=0,
                 field_calib=240, field_test=180, stream_lab_s=120.0,
                 stream_calib_s=360.0, stream_test_s=180.0, anomaly_lab_calib_h=0.5,
                 anomaly_lab_test_h=0.5, anomaly_field_calib_h=1.0,
                 anomaly_field_test_h=1.0, retrain_epochs=2, callgrind_calls=2,
                 cortexm_frames=2)
SIZES = {s.name: s for s in (FULL, QUICK, TINY)}


@dataclass
class Model:
    """A .tflite run by TFLM, with the core's view of its output."""

    label: str
    graph: ModelGraph
    info: ModelInfo
    runner: TflmRunner

    @classmethod
    def load(cls, label: str, graph: ModelGraph, core: Core) -> Model:
        return cls(label, graph, graph.model_info(core), TflmRunner(graph))

    def run(self, core: Core, x: NDArray, params: Params | None = None
            ) -> tuple[NDArray, NDArray | None]:
        """Raw outputs and feature vectors (None if the model has no final int8
        FULLY_CONNECTED) for real-valued inputs: quantized by the C core for an int8 input,
        with the input correction of `params` if it has one."""
        if self.graph.input.dtype == DType.INT8:
            x = quantize_inputs(core, self.info, np.asarray(x, dtype=np.float32), params)
        else:
            x = np.asarray(x, dtype=np.float32)
        return self.runner.run(x)

    def outputs(self, core: Core, x: NDArray) -> NDArray:
        """Raw outputs for real-valued inputs: quantized by the C core for an int8 input."""
        return self.run(core, x)[0]

    def identity(self, core: Core, background: tuple[int, ...] = ()) -> Params:
        """No correction: the raw model as deployed, background classes marked."""
        fp = FloatParams.identity(self.info.n_classes, "logits", background)
        return quantize(core, self.info, fp)[0]


@dataclass(frozen=True)
class Windows:
    x: NDArray[np.float32]
    y: NDArray[np.int64]


@dataclass(frozen=True)
class Stream:
    x: NDArray[np.float32]
    t_ms: NDArray[np.int64]
    events: metrics.Events

    @property
    def minutes(self) -> float:
        return metrics.stream_duration_ms(self.t_ms) / 60000


class Bench:
    """Shared state of one benchmark run; everything is computed once, when first asked."""

    def __init__(self, size: BenchSize, core: Core | None = None) -> None:
        self.size = size
        self.core = core or Core()
        self._runs: dict[tuple[str, str, int], tuple[NDArray, NDArray | None]] = {}
        self._windows: dict[str, Windows] = {}
        self._streams: dict[str, Stream] = {}
        # Parameter sets the tables used, by scenario: the cost section times these.
        self.fitted: dict[str, FitResult] = {}
        # Filled by upper_bound.retrain(): the retrained int8 model, or why there is none.
        self.retrained: Model | None = None
        self.retrained_skip: str = "not attempted (--no-upper-bound)"
        self.retrained_log: dict[str, object] = {}

    @cached_property
    def int8(self) -> Model:
        return Model.load("int8", ModelGraph.load(INT8_MODEL), self.core)

    @cached_property
    def float32(self) -> Model:
        return Model.load("float", ModelGraph.load(FLOAT_MODEL), self.core)

    # ---- data -------------------------------------------------------------------------

    def windows(self, key: str) -> Windows:
        """"lab_test", "lab_val" (the label-free fit's lab reference; "lab_val_alt" the
        same seed at the second size), "field_calib" or "field_test": the documented
        splits' seeds."""
        if key not in self._windows:
            split, _, seed_key = gd.DEFAULT_SPLITS[key.removesuffix("_alt")]
            n = {"lab_test": self.size.lab_test, "lab_val": self.size.lab_reference,
                 "lab_val_alt": self.size.lab_reference_alt,
                 "field_calib": self.size.field_calib,
                 "field_test": self.size.field_test}[key]
            d = gd.generate_classification(split, n, gd.SEEDS[seed_key])
            self._windows[key] = Windows(d["x"], d["y"].astype(np.int64))
        return self._windows[key]

    def stream(self, key: str) -> Stream:
        """"lab" (documented stream_lab seed), "field_calib" (STREAM_FIELD_CALIB_SEED) or
        "field_test" (documented stream_field seed)."""
        if key not in self._streams:
            split, seconds, seed = {
                "lab": ("lab", self.size.stream_lab_s, gd.SEEDS["stream_lab"]),
                "field_calib": ("field", self.size.stream_calib_s, STREAM_FIELD_CALIB_SEED),
                "field_test": ("field", self.size.stream_test_s, gd.SEEDS["stream_field"]),
            }[key]
            d = gd.generate_stream(split, seconds, seed)
            events = metrics.Events.of(np.round(d["event_start_ms"]).astype(np.int64),
                                       np.round(d["event_end_ms"]).astype(np.int64),
                                       d["event_label"])
            self._streams[key] = Stream(d["x"], np.round(d["t_ms"]).astype(np.int64), events)
        return self._streams[key]

    def inputs(self, what: str) -> NDArray:
        """Real-valued inputs of "windows:<key>" or "stream:<key>"."""
        kind, key = what.split(":", 1)
        return self.windows(key).x if kind == "windows" else self.stream(key).x

    def _run(self, model: Model, what: str, params: Params | None
             ) -> tuple[NDArray, NDArray | None]:
        cache_key = (f"{model.label}:{model.info.model_crc:08x}", what,
                     -1 if params is None else params.crc)
        if cache_key not in self._runs:
            self._runs[cache_key] = model.run(self.core, self.inputs(what), params)
        return self._runs[cache_key]

    def raw(self, model: Model, what: str, params: Params | None = None) -> NDArray:
        """Raw outputs of `model` on "windows:<key>" or "stream:<key>" (inputs corrected by
        the C core's input stage with `params`, if given)."""
        return self._run(model, what, params)[0]

    def features(self, model: Model, what: str, params: Params | None = None) -> NDArray:
        """The int8 feature vectors (the final FULLY_CONNECTED's input) of the same run."""
        feats = self._run(model, what, params)[1]
        if feats is None:
            raise TinyfixError(f"{model.graph.name} has no feature vector to read")
        return feats

    # ---- scoring and fits shared by several tables ------------------------------------

    def run_identity(self, model: Model, raw: NDArray, t_ms: NDArray | None = None,
                     background: tuple[int, ...] = ()) -> CoreRun:
        return run_frames(self.core, model.info, model.identity(self.core, background), raw,
                          t_ms)

    @cached_property
    def classification_fit(self) -> FitResult:
        """The output-only fit: the int8 model's raw outputs on the labelled field
        calibration windows, default options (what `scripts/demo` does given recorded
        scores only)."""
        cal = self.windows("field_calib")
        return fit_classification(self.raw(self.int8, "windows:field_calib"), cal.y,
                                  self.int8.info, FitOptions(), self.core)

    @cached_property
    def head(self) -> HeadSource | str:
        """The int8 model's own last layer as the head stage re-fits it (or why not)."""
        return head_source(self.int8.graph, self.int8.info, DeviceLimits().max_features)

    @cached_property
    def window_ms(self) -> int:
        """The model's input window: what a frame of a stream sees (frame labels)."""
        return model_window_ms(self.int8.graph.input.shape, gd.SAMPLE_RATE_HZ)

    @cached_property
    def head_fit(self) -> FitResult:
        """The full fit with the model's feature vectors: the output-only stages, then the
        last-layer re-fit, kept only if it beats them on the held-out split (what
        `scripts/demo` does on the simulated device, which reports features)."""
        cal = self.windows("field_calib")
        return fit_classification(self.raw(self.int8, "windows:field_calib"), cal.y,
                                  self.int8.info, FitOptions(), self.core,
                                  features=self.features(self.int8, "windows:field_calib"),
                                  head=self.head)
