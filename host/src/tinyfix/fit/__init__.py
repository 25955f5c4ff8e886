# SPDX-License-Identifier: Apache-2.0
"""Fit a tinyfix parameter set from the device's raw outputs and labels.

    result = fit_classification(raw, labels, model, FitOptions(target_precision=0.9))
    result.params              # sealed core Params, ready for params_io
    result.stages              # every stage: kept or not, and why (held-out figures)
    result.evaluate(raw_eval, labels_eval).before / .after   # through the C core

fit_streaming() tunes voting for a false-accept target; fit_anomaly() the adaptive
threshold's alpha for a false-alarm target. Given the model's feature vectors and its last
layer (head_source()), both also try re-fitting that layer (the core's head stage);
fit_unlabeled() adapts without field labels (class priors by EM, input statistics).
With a float reference model's probabilities (tinyfix.reference), fit_classification() runs
a "quantization" stage fitted to them first (fit.quantization_stage), or takes them as soft
labels in place of labels (fit.teacher, fit.targets).
Candidates are quantized and scored through the C core on a held-out split of the
calibration data, never on the evaluation set.
"""

from tinyfix.fit.anomaly import fit_anomaly
from tinyfix.fit.classification import fit_classification
from tinyfix.fit.domain import detect_output_kind
from tinyfix.fit.float_params import AnomalySettings, FloatParams, InputSettings, VoteSettings
from tinyfix.fit.head_source import HeadSource, head_source
from tinyfix.fit.options import DeviceLimits, FitOptions
from tinyfix.fit.quantize import Clip, quantize
from tinyfix.fit.result import Evaluation, FitResult, StageDecision
from tinyfix.fit.streaming import fit_streaming
from tinyfix.fit.unlabeled import LabReference, UnlabeledFit, fit_unlabeled

__all__ = [
    "AnomalySettings",
    "Clip",
    "DeviceLimits",
    "Evaluation",
    "FitOptions",
    "FitResult",
    "FloatParams",
    "HeadSource",
    "InputSettings",
    "LabReference",
    "StageDecision",
    "UnlabeledFit",
    "VoteSettings",
    "detect_output_kind",
    "fit_anomaly",
    "fit_classification",
    "fit_streaming",
    "fit_unlabeled",
    "head_source",
    "quantize",
]
