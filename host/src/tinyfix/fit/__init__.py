# SPDX-License-Identifier: Apache-2.0
"""Fit a tinyfix parameter set from the device's raw outputs and labels.

    result = fit_classification(raw, labels, model, FitOptions(target_precision=0.9))
    result.params              # sealed core Params, ready for params_io
    result.stages              # every stage: kept or not, and why (held-out figures)
    result.evaluate(raw_eval, labels_eval).before / .after   # through the C core

fit_streaming() tunes voting for a false-accept target; fit_anomaly() the adaptive
threshold's alpha for a false-alarm target. Candidates are quantized and scored through the
C core on a held-out split of the calibration data, never on the evaluation set.
"""

from tinyfix.fit.anomaly import fit_anomaly
from tinyfix.fit.classification import fit_classification
from tinyfix.fit.domain import detect_output_kind
from tinyfix.fit.float_params import AnomalySettings, FloatParams, VoteSettings
from tinyfix.fit.options import DeviceLimits, FitOptions
from tinyfix.fit.quantize import Clip, quantize
from tinyfix.fit.result import Evaluation, FitResult, StageDecision
from tinyfix.fit.streaming import fit_streaming

__all__ = [
    "AnomalySettings",
    "Clip",
    "DeviceLimits",
    "Evaluation",
    "FitOptions",
    "FitResult",
    "FloatParams",
    "StageDecision",
    "VoteSettings",
    "detect_output_kind",
    "fit_anomaly",
    "fit_classification",
    "fit_streaming",
    "quantize",
]
