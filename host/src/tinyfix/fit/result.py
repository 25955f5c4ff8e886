# SPDX-License-Identifier: Apache-2.0
"""What a fit returns: the sealed parameter set, the decision on every stage, and the
before/after evaluation through the C core."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tinyfix import metrics
from tinyfix.core import Core, ModelInfo, Params
from tinyfix.errors import TinyfixError
from tinyfix.fit.detections import detections_of
from tinyfix.fit.float_params import AnomalySettings, FloatParams, VoteSettings
from tinyfix.fit.quantize import Clip, quantize
from tinyfix.fit.through_core import run_frames


@dataclass(frozen=True)
class StageDecision:
    """One stage: kept or not, and why; before/after are held-out scores (empty when the
    stage was not tried)."""

    name: str
    kept: bool
    reason: str
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.name, "kept": self.kept, "reason": self.reason,
                "before": self.before, "after": self.after}


@dataclass(frozen=True)
class Evaluation:
    """before: the raw model as deployed; after: the parameters through the C core."""

    before: dict[str, float]
    after: dict[str, float]
    predictions: dict[str, NDArray]
    reliability_before: metrics.ReliabilityDiagram | None = None
    reliability_after: metrics.ReliabilityDiagram | None = None
    confusion_before: NDArray[np.int64] | None = None
    confusion_after: NDArray[np.int64] | None = None
    histogram: metrics.ScoreHistogram | None = None


@dataclass
class FitResult:
    task: str  # "classification", "streaming", "anomaly" or "autoencoder"
    core: Core
    model: ModelInfo
    params: Params
    float_params: FloatParams
    stages: list[StageDecision]
    clipped: list[Clip]
    n_fit: int
    n_heldout: int
    # Streaming: every voting setting the search tried, scored on the fit part of the
    # calibration stream (a false-accept / false-reject curve).
    vote_trials: list[tuple[VoteSettings, metrics.StreamScore]] = field(default_factory=list)
    # Domain of the model's raw outputs when it differs from float_params' (a head writes
    # logits even for a model that outputs probabilities); None: the same.
    baseline_kind: str | None = None
    # Autoencoders: the fixed threshold a lab would set on the calibration data's normal
    # scores (Q16.16, score shift 0), the "before" of the evaluation.
    fixed_threshold: float = float("inf")
    # Streaming: the cross-validated prediction and DET curves (fit.streaming.StreamReport).
    stream_report: Any = None
    # With a float reference model: where quantization costs (quant_report.QuantizationReport),
    # and the set as it was after the "quantization" stage alone (None: not kept).
    quantization: Any = None
    quantization_params: Params | None = None

    @property
    def output_kind(self) -> str:
        return self.float_params.output_kind

    @property
    def uses_features(self) -> bool:
        """The set re-fits the last layer: the device (and every evaluation) needs the
        feature vectors."""
        return self.float_params.head is not None

    def _features(self, features: NDArray | None) -> NDArray | None:
        if features is None and self.uses_features:
            raise TinyfixError("this parameter set re-fits the model's last layer: "
                               "evaluating it needs the feature vectors")
        return features

    @property
    def stages_kept(self) -> list[str]:
        return [s.name for s in self.stages if s.kept]

    def baseline_params(self) -> Params:
        """No correction: identity in the output's domain, background classes marked."""
        fp = FloatParams.identity(self.model.n_classes, self.baseline_kind or self.output_kind,
                                  self.float_params.background)
        return quantize(self.core, self.model, fp)[0]

    def evaluate(self, raw: NDArray, labels: NDArray | None = None, *,
                 t_ms: NDArray | None = None, events: metrics.Events | None = None,
                 features: NDArray | None = None) -> Evaluation:
        """Classification with `labels`, streaming with `t_ms` and `events`; `features`
        (the model's feature vectors, one row a frame) when the set has a head."""
        if labels is not None:
            return self.evaluate_classification(raw, labels, features)
        if t_ms is None or events is None:
            raise TinyfixError("evaluation needs labels, or t_ms and events for a stream")
        return self.evaluate_streaming(raw, t_ms, events, features)

    def evaluate_classification(self, raw: NDArray, labels: NDArray,
                                features: NDArray | None = None) -> Evaluation:
        y = np.asarray(labels, dtype=np.int64)
        n = self.model.n_classes
        before = run_frames(self.core, self.model, self.baseline_params(), raw)
        after = run_frames(self.core, self.model, self.params, raw,
                           features=self._features(features))
        decided = after.decision != metrics.NO_DECISION
        return Evaluation(
            before=metrics.classification_metrics(y, before.top_class, before.confidence, n),
            after=metrics.classification_metrics(y, after.decision, after.confidence, n),
            predictions={"pred": after.decision, "confidence": after.confidence},
            reliability_before=metrics.reliability_diagram(before.confidence,
                                                           before.top_class == y),
            reliability_after=metrics.reliability_diagram(
                after.confidence[decided], after.decision[decided] == y[decided]),
            confusion_before=metrics.confusion_matrix(y, before.top_class, n),
            confusion_after=metrics.confusion_matrix(y, after.decision, n,
                                                     with_no_decision=True),
        )

    def detections(self, raw: NDArray, t_ms: NDArray, params: Params | None = None,
                   features: NDArray | None = None
                   ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(times, classes) of the detections `params` (default: the fitted set) make:
        vote events with the vote stage on, else each change of the decision to a
        non-background class."""
        if params is None:
            params, features = self.params, self._features(features)
        return detections_of(self.core, self.model, params, raw, t_ms,
                             self.float_params.background, features)

    def evaluate_streaming(self, raw: NDArray, t_ms: NDArray, events: metrics.Events,
                           features: NDArray | None = None) -> Evaluation:
        t = np.asarray(t_ms, dtype=np.int64)
        bt, bl = self.detections(raw, t, self.baseline_params())
        at, al = self.detections(raw, t, features=features)
        return Evaluation(
            before=metrics.streaming_metrics(bt, bl, events, t),
            after=metrics.streaming_metrics(at, al, events, t),
            predictions={"det_t_ms": at, "det_label": al},
        )

    def evaluate_anomaly(self, raw: NDArray, t_ms: NDArray, anomalous: NDArray | None = None
                         ) -> Evaluation:
        """before: the same adaptive threshold at the default alpha; after: the fit's."""
        if self.float_params.anomaly is None:
            raise TinyfixError("this parameter set has no anomaly stage")
        t = np.asarray(t_ms, dtype=np.int64)
        default = self.float_params.replace(
            anomaly=replace(self.float_params.anomaly, alpha=AnomalySettings.alpha))
        before = run_frames(self.core, self.model, quantize(self.core, self.model, default)[0],
                            raw, t)
        after = run_frames(self.core, self.model, self.params, raw, t)
        return Evaluation(
            before=metrics.alarm_metrics(before.anomaly, t, anomalous),
            after=metrics.alarm_metrics(after.anomaly, t, anomalous),
            predictions={"anomaly": after.anomaly},
        )

    def summary(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "output_kind": self.output_kind,
            "stages": [s.as_dict() for s in self.stages],
            "stages_kept": self.stages_kept,
            "clipped": [str(c) for c in self.clipped],
            "n_fit": self.n_fit,
            "n_heldout": self.n_heldout,
            "uses_features": self.uses_features,
            "params_crc": f"0x{self.params.crc:08x}",
        }
