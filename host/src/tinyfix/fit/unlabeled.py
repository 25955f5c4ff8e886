# SPDX-License-Identifier: Apache-2.0
"""Label-free adaptation from unlabeled field captures: new class priors, and an input
correction that makes the field's inputs look like the lab's. Each is fitted and reported
on its own, and both together, so a user sees what labels would add.

(a) Priors. The model's outputs are first calibrated by bias-corrected temperature scaling
    (a temperature and per-class offsets, Alexandari et al., 2020) fitted on labelled lab
    data; without it they are taken as calibrated for the training mix (uniform unless
    FitOptions.source_priors says otherwise). EM (Saerens et al., 2002; fit.em_prior) then
    finds the field's class priors, applied as log(field prior / lab prior) on the class
    biases.
(b) Inputs. Per-channel mean and spread of the field inputs are matched to the lab's
    (fit.input_stats) as the input stage's offset and gain (Q16.16). The lab reference is
    mixed at the field's class priors estimated by EM, re-estimated on the corrected
    inputs' outputs a few times (the class mix moves the statistics as much as a sensor
    offset does).
Both: the input correction of (b), then (a) on the outputs of the corrected inputs.
Nothing here reads a field label; the data are run through the model by a caller-given
function (the device or its twin), and every set is sealed through the C core's formats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.special import softmax

from tinyfix import metrics
from tinyfix.core import Core, ModelInfo, Params
from tinyfix.errors import TinyfixError
from tinyfix.fit import scaling
from tinyfix.fit.domain import check_raw, detect_output_kind, scaling_inputs
from tinyfix.fit.em_prior import PriorEstimate, em_priors, prior_shift
from tinyfix.fit.float_params import FloatParams, InputSettings
from tinyfix.fit.input_stats import ChannelStats, ReferenceStats, match_inputs
from tinyfix.fit.options import FitOptions
from tinyfix.fit.quantize import quantize
from tinyfix.fit.result import StageDecision
from tinyfix.fit.through_core import CoreRun, run_frames

# Raw outputs (N, C) of real-valued inputs (N, ..., channels), run through the model with
# the input correction of the given parameter set (None: none).
ModelRun = Callable[[NDArray, Params | None], NDArray]
# The same with the model's feature vectors (N, F), or None when it has none.
FeatureRun = Callable[[NDArray, Params | None], tuple[NDArray, NDArray | None]]
INPUT_ROUNDS = 3
MIN_LAB_SAMPLES = 30


@dataclass(frozen=True)
class LabReference:
    """Labelled lab data: inputs and/or the model's raw outputs on them."""

    y: NDArray[np.int64] | None = None
    x: NDArray | None = None
    raw: NDArray | None = None


@dataclass(frozen=True)
class Adapted:
    """One label-free parameter set and how it was found."""

    name: str
    params: Params
    float_params: FloatParams
    stages: list[StageDecision]

    @property
    def corrects_inputs(self) -> bool:
        return self.float_params.input is not None


@dataclass
class UnlabeledFit:
    core: Core
    model: ModelInfo
    output_kind: str
    # "prior", "inputs", "both"; with a float reference model "teacher", "teacher+inputs"
    sets: dict[str, Adapted] = field(default_factory=dict)

    @property
    def best(self) -> Adapted:
        for name in ("both", "prior", "inputs"):
            if name in self.sets:
                return self.sets[name]
        raise TinyfixError("nothing was fitted")

    def evaluate(self, raw: NDArray, y: NDArray, x: NDArray | None = None,
                 run_model: ModelRun | None = None, run_features: FeatureRun | None = None
                 ) -> dict[str, dict[str, float]]:
        """Accuracy, macro-F1 and ECE through the C core on labelled evaluation data: the
        model as it is ("raw"), and every set (sets with an input correction run the
        inputs x through the model again with it; sets with a head need `run_features`)."""
        labels = np.asarray(y, dtype=np.int64)
        n = self.model.n_classes
        identity, _ = quantize(self.core, self.model,
                               FloatParams.identity(n, self.output_kind))
        rows = {"raw": _scores(run_frames(self.core, self.model, identity, raw), labels, n)}
        for name, adapted in self.sets.items():
            out, feats = raw, None
            with_input = adapted.params if adapted.corrects_inputs else None
            if adapted.float_params.head is not None:
                if x is None or run_features is None:
                    continue
                out, feats = run_features(x, with_input)
            elif adapted.corrects_inputs:
                if x is None or run_model is None:
                    continue
                out = run_model(x, adapted.params)
            rows[name] = _scores(run_frames(self.core, self.model, adapted.params, out,
                                            features=feats), labels, n)
        return rows


def _scores(run: CoreRun, y: NDArray[np.int64], n: int) -> dict[str, float]:
    return metrics.classification_metrics(y, run.top_class, run.confidence, n)


def _calibration(core: Core, model: ModelInfo, kind: str, lab: LabReference,
                 lab_raw: NDArray | None, options: FitOptions
                 ) -> tuple[FloatParams, NDArray[np.float64], StageDecision]:
    n = model.n_classes
    identity = FloatParams.identity(n, kind)
    if lab_raw is None or lab.y is None or lab.y.size < MIN_LAB_SAMPLES:
        if options.source_priors is not None:
            source = np.asarray(options.source_priors, dtype=np.float64)
            mix = "the training mix given"
        else:
            source, mix = np.full(n, 1.0 / n), "a uniform training mix"
        return identity, source / source.sum(), StageDecision(
            "calibration", False, "no labelled lab data: the model's outputs are taken as "
            f"calibrated for {mix}")
    y = np.asarray(lab.y, dtype=np.int64)
    z = scaling_inputs(lab_raw, model, kind)
    fp = scaling.fit_bias(z, y, identity, options.l2)
    counts = np.bincount(y, minlength=n).astype(np.float64) + 1.0
    source = counts / counts.sum()
    before = _nll(identity, z, y)
    after = _nll(fp, z, y)
    return fp, source, StageDecision(
        "calibration", True, f"bias-corrected temperature scaling on {y.size} labelled lab "
        f"samples: 1/T {fp.inv_temperature:.3f}, lab NLL {before:.3f} -> {after:.3f}",
        {"nll": before}, {"nll": after})


def _nll(fp: FloatParams, z: NDArray[np.float64], y: NDArray[np.int64]) -> float:
    p = softmax(fp.logits(z), axis=1)[np.arange(y.size), y]
    return float(-np.mean(np.log(np.maximum(p, 1e-12))))


def _em(fp: FloatParams, raw: NDArray, model: ModelInfo, kind: str,
        source: NDArray[np.float64]) -> PriorEstimate:
    probs = softmax(fp.logits(scaling_inputs(raw, model, kind)), axis=1)
    return em_priors(probs, source)


def _prior_stage(estimate: PriorEstimate, source: NDArray[np.float64], n_samples: int
                 ) -> StageDecision:
    mix = ", ".join(f"{p:.2f}" for p in estimate.priors)
    lab = ", ".join(f"{p:.2f}" for p in source)
    state = (f"converged in {estimate.iterations} iterations" if estimate.converged
             else f"not converged after {estimate.iterations} iterations")
    return StageDecision("prior", True, f"EM on {n_samples} unlabeled outputs, {state}: "
                         f"class priors [{mix}] (lab [{lab}]), added as log(prior ratio) "
                         "to the class biases")


def _with_prior(fp: FloatParams, estimate: PriorEstimate, source: NDArray[np.float64]
                ) -> FloatParams:
    return fp.replace(class_bias=fp.class_bias + prior_shift(estimate.priors, source))


def _seal(core: Core, model: ModelInfo, name: str, fp: FloatParams,
          stages: list[StageDecision], options: FitOptions) -> Adapted:
    params, clips = quantize(core, model, fp, options.device)
    if clips:
        stages = [*stages, StageDecision("clipped", False,
                                         "; ".join(str(c) for c in clips))]
    return Adapted(name, params, fp, stages)


def _input_text(settings: InputSettings, field: ChannelStats, ref: ChannelStats,
                weighted: bool) -> str:
    chans = "; ".join(f"ch{k}: offset {o:+.3f}, gain {g:.3f}" for k, (o, g) in
                      enumerate(zip(settings.offset, settings.gain, strict=True)))
    how = ("lab statistics per class, mixed at the field priors EM estimated"
           if weighted else "pooled lab statistics")
    return (f"field mean {np.round(field.mean, 3).tolist()} sd "
            f"{np.round(field.sd, 3).tolist()} matched to lab mean "
            f"{np.round(ref.mean, 3).tolist()} sd {np.round(ref.sd, 3).tolist()} ({how}): "
            f"{chans}")


def fit_unlabeled(model: ModelInfo, field_raw: NDArray, *, field_x: NDArray | None = None,
                  lab: LabReference | None = None, run_model: ModelRun | None = None,
                  options: FitOptions | None = None, core: Core | None = None
                  ) -> UnlabeledFit:
    """Label-free sets from the field's raw outputs (N, C) and, for the input correction,
    its real-valued inputs (N, ..., channels), lab reference data and a way to run the
    model. Sets that lack what they need are left out."""
    options = options or FitOptions()
    core = core or Core(options.core_variant)
    lab = lab or LabReference()
    raw = check_raw(field_raw, model)
    kind = options.output_kind or detect_output_kind(raw, model)
    lab_raw = lab.raw
    if lab_raw is None and lab.x is not None and run_model is not None:
        lab_raw = run_model(lab.x, None)
    if lab_raw is not None:
        lab_raw = check_raw(lab_raw, model)
    result = UnlabeledFit(core, model, kind)
    fp_cal, source, calibration = _calibration(core, model, kind, lab, lab_raw, options)
    estimate = _em(fp_cal, raw, model, kind, source)
    result.sets["prior"] = _seal(core, model, "prior", _with_prior(fp_cal, estimate, source),
                                 [calibration, _prior_stage(estimate, source, len(raw))],
                                 options)
    if field_x is None or lab.x is None or run_model is None or model.n_channels == 0:
        return result
    ref = ReferenceStats.of(lab.x, lab.y, model.n_classes, model.n_channels)
    field_stats = ChannelStats.of(field_x, model.n_channels)
    identity = FloatParams.identity(model.n_classes, kind)
    priors = estimate
    for _ in range(INPUT_ROUNDS if ref.per_class else 1):
        target = ref.at(priors.priors)
        settings = match_inputs(field_stats, target)
        probe, _ = quantize(core, model, identity.replace(input=settings), options.device)
        priors = _em(fp_cal, run_model(field_x, probe), model, kind, source)
    text = _input_text(settings, field_stats, target, ref.per_class)
    inputs_stage = StageDecision("inputs", True, text)
    result.sets["inputs"] = _seal(core, model, "inputs", identity.replace(input=settings),
                                  [inputs_stage], options)
    both = _with_prior(fp_cal, priors, source).replace(input=settings)
    result.sets["both"] = _seal(core, model, "both", both,
                                [inputs_stage, calibration,
                                 _prior_stage(priors, source, len(raw))], options)
    return result
