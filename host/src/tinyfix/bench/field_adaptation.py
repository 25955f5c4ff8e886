# SPDX-License-Identifier: Apache-2.0
"""The field-adaptation rows of scenario 1 (issue 9) that are not a plain fit: the label-free
sets and on-device adaptation. Both end in parameter sets run by the C core.

Label-free (`tinyfix fit --unlabeled`): the field calibration windows' inputs and the int8
model's raw outputs on them, never their labels; the reference is labelled lab data (lab
validation windows, seed 1002). fit_unlabeled gives three sets: the input stage's offset and
gain from matched per-channel statistics, a prior shift from EM on calibrated outputs, and
both. A set with an input correction is scored by running the field test inputs through the
C core's input stage with it, then TFLM, then the C core with the same set.

On-device adaptation: the device starts from a parameter set whose head stage is the model's
own last layer, bit for bit (ModelGraph.final.head_params), with the ADAPT stage on; the
labelled field calibration windows arrive one by one, and for each the device runs
tinyfix_process() on the model's raw output and feature vector, then tinyfix_adapt_label()
with the label (a bounded SGD step on the class biases and the head's weights). The field
test windows are then processed by the same context without labels and scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tinyfix import metrics
from tinyfix.bench.context import Bench
from tinyfix.core import Corrector, Params, q16
from tinyfix.fit import LabReference, UnlabeledFit, fit_unlabeled
from tinyfix.fit.quantize import STAGE
from tinyfix.fit.through_core import run_frames

# Head weights: step lr * (p - [label]) * feature LSB in weight LSBs, each weight within
# +/- clamp LSB of the flashed one (tests/host/test_core_adapt_head.py drives the same).
ADAPT_HEAD_LEARNING_RATE = 0.05
ADAPT_HEAD_CLAMP = 32
LABEL_FREE_SETS = {"inputs": "input statistics", "prior": "prior (EM)", "both": "both"}


@dataclass(frozen=True)
class Scored:
    """A parameter set and its figures on the field test windows (through the C core)."""

    params: Params
    figures: dict[str, float]


def label_free_fit(bench: Bench, lab_key: str = "lab_val") -> UnlabeledFit:
    """The label-free sets from the field calibration windows (labels never read) and the
    labelled lab windows `lab_key` ("lab_val": the bench size's lab reference)."""
    model = bench.int8
    lab = bench.windows(lab_key)

    def run_model(x: NDArray, params: Params | None) -> NDArray:
        return model.run(bench.core, x, params)[0]

    return fit_unlabeled(model.info, bench.raw(model, "windows:field_calib"),
                         field_x=bench.windows("field_calib").x,
                         lab=LabReference(y=lab.y, x=lab.x), run_model=run_model,
                         core=bench.core)


def score_label_free(bench: Bench, fit: UnlabeledFit) -> dict[str, Scored]:
    """Every label-free set on the field test windows."""
    model, test = bench.int8, bench.windows("field_test")
    out = {}
    for name, adapted in fit.sets.items():
        params = adapted.params
        raw = bench.raw(model, "windows:field_test",
                        params if adapted.corrects_inputs else None)
        run = run_frames(bench.core, model.info, params, raw)
        out[name] = Scored(params, metrics.classification_metrics(
            test.y, run.top_class, run.confidence, model.info.n_classes))
    return out


def adaptation_start(bench: Bench) -> Params:
    """The set a device adapts from: the model's own last layer as the head, ADAPT on (the
    biases at the core's default rate and clamp, the head at ADAPT_HEAD_*)."""
    model = bench.int8
    assert model.graph.final is not None
    params = model.graph.final.head_params(bench.core, model.info)
    params.c.flags |= STAGE["adapt"]
    params.c.adapt.head_learning_rate = q16(ADAPT_HEAD_LEARNING_RATE)
    params.c.adapt.head_clamp = ADAPT_HEAD_CLAMP
    return params.seal()


@dataclass(frozen=True)
class Adaptation:
    start: Params
    frames: int  # labelled frames the device adapted on
    before: dict[str, float]  # the start set on the test windows, no adaptation
    after: dict[str, float]  # the same context after the labelled frames
    largest_weight_change: int  # LSB, at most ADAPT_HEAD_CLAMP


def on_device(bench: Bench) -> Adaptation:
    model, core = bench.int8, bench.core
    start = adaptation_start(bench)
    cal, test = bench.windows("field_calib"), bench.windows("field_test")
    raw_cal = bench.raw(model, "windows:field_calib")
    feats_cal = bench.features(model, "windows:field_calib")
    raw_test = bench.raw(model, "windows:field_test")
    feats_test = bench.features(model, "windows:field_test")
    n = model.info.n_classes

    def score(corrector: Corrector) -> dict[str, float]:
        top = np.empty(test.y.size, dtype=np.int64)
        conf = np.empty(test.y.size, dtype=np.float64)
        for i in range(test.y.size):
            r = corrector.process(raw_test[i], features=feats_test[i])
            top[i], conf[i] = r.top_class, r.top_prob / 32768.0
        return metrics.classification_metrics(test.y, top, conf, n)

    before = score(Corrector(core, model.info, start))
    device = Corrector(core, model.info, start)
    for i in range(cal.y.size):
        device.process(raw_cal[i], features=feats_cal[i])
        device.adapt(int(cal.y[i]))
    weights = n * model.info.n_features
    delta = np.array(list(device.ctx.head_delta[0:weights]), dtype=np.int64)
    change = int(np.max(np.abs((delta + 128) >> 8))) if delta.size else 0
    return Adaptation(start, int(cal.y.size), before, score(device), change)
