# SPDX-License-Identifier: Apache-2.0
"""Where quantization costs you: the int8 model against the float model it came from, on the
same inputs.

Per class (the class the float model picks): how often the int8 model picks it too, and
the mean and spread of float minus int8 class scores in the domain the core corrects
(logits; log-probabilities for a softmax or sigmoid output, both floored at the int8
output's half step, as the core floors them). And the feature vector that feeds the last
layer, where the error of every layer before it arrives: per feature the RMS of float
minus dequantized int8, beside the feature's own spread. The int8 side's figures come
through the C core at no correction; after a fit, `agreement()` scores a parameter set the
same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tinyfix.core import Core, ModelInfo, Params
from tinyfix.fit.domain import prob_floor, scaling_inputs
from tinyfix.fit.float_params import FloatParams
from tinyfix.fit.heldout import score_classification
from tinyfix.fit.quantize import quantize
from tinyfix.fit.through_core import run_frames
from tinyfix.reference import ReferenceRun


@dataclass(frozen=True)
class ClassError:
    name: str
    n: int  # inputs the float model gives this class
    agreement: float  # share of them the int8 model gives it too
    mean: float  # float minus int8 score of this class, over all inputs
    sd: float


@dataclass(frozen=True)
class FeatureError:
    rms: NDArray[np.float64]  # (F,) RMS of float minus dequantized int8
    spread: NDArray[np.float64]  # (F,) standard deviation of the float feature
    relative: float  # |float - int8| / |float| over all inputs and features
    cosine: float  # mean cosine similarity of the two vectors

    @property
    def worst(self) -> list[int]:
        """Features by RMS error relative to their spread, worst first."""
        ratio = self.rms / np.maximum(self.spread, 1e-12)
        return [int(i) for i in np.argsort(-ratio, kind="stable")]


@dataclass(frozen=True)
class QuantizationError:
    domain: str  # "logits" or "log-probabilities"
    n: int
    agreement: float  # int8 top-1 == float top-1
    kl: float  # KL(float || int8) of the class probabilities
    classes: list[ClassError]
    features: FeatureError | None
    feature_note: str  # why features are not compared, or ""
    float_accuracy: float | None = None  # with labels
    int8_accuracy: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "domain": self.domain, "n": self.n, "agreement": self.agreement, "kl": self.kl,
            "float_accuracy": self.float_accuracy, "int8_accuracy": self.int8_accuracy,
            "classes": [vars(c) for c in self.classes], "feature_note": self.feature_note,
        }
        if self.features is not None:
            out["features"] = {"relative_error": self.features.relative,
                               "cosine": self.features.cosine,
                               "rms": self.features.rms.tolist(),
                               "spread": self.features.spread.tolist()}
        return out


def float_scores(run: ReferenceRun, model: ModelInfo, kind: str) -> NDArray[np.float64]:
    """The float model's class scores in the domain the core corrects (see module doc)."""
    if kind == "probs":
        return np.log(np.maximum(run.probs, prob_floor(model)))
    if run.outputs.shape[1] == 1:
        if run.ends_in == "LOGISTIC":  # an int8 logit model whose float twin ends in sigmoid
            return np.log(np.maximum(run.probs, prob_floor(model)))
        return np.stack([np.zeros(len(run.outputs)), run.outputs[:, 0]], axis=1)
    if run.ends_in:
        return np.log(np.maximum(run.probs, 1e-30))
    return run.outputs


def agreement(core: Core, model: ModelInfo, params: Params, raw: NDArray,
              reference: ReferenceRun, features: NDArray | None = None) -> dict[str, float]:
    """{"kl", "agreement"} of a parameter set's outputs with the float model's, through the
    C core (a frame without a decision disagrees)."""
    s = score_classification(core, model, params, raw, reference.probs, features)
    return {"kl": s["nll"], "agreement": s["accuracy"]}


def measure(core: Core, model: ModelInfo, kind: str, raw: NDArray, reference: ReferenceRun,
            class_names: tuple[str, ...], labels: NDArray | None = None,
            int8_features: NDArray | None = None, feature_scale: float = 0.0,
            feature_zero_point: int = 0, feature_note: str = "") -> QuantizationError:
    """The int8 model's raw outputs (and dequantized features) against the float model on
    the same inputs."""
    identity, _ = quantize(core, model, FloatParams.identity(model.n_classes, kind))
    base = score_classification(core, model, identity, raw, reference.probs)
    int8_top = run_frames(core, model, identity, raw).top_class
    float_top = reference.top_class
    diff = float_scores(reference, model, kind) - scaling_inputs(raw, model, kind)
    classes = []
    for c in range(model.n_classes):
        mine = float_top == c
        classes.append(ClassError(
            class_names[c] if c < len(class_names) else str(c), int(mine.sum()),
            float(np.mean(int8_top[mine] == c)) if mine.any() else float("nan"),
            float(np.mean(diff[:, c])), float(np.std(diff[:, c]))))
    feats = None
    if int8_features is not None and reference.features is not None and not feature_note:
        real = feature_scale * (np.asarray(int8_features, dtype=np.float64) - feature_zero_point)
        f = reference.features
        err = f - real
        norms = np.linalg.norm(f, axis=1) * np.linalg.norm(real, axis=1)
        cos = np.sum(f * real, axis=1) / np.maximum(norms, 1e-30)
        feats = FeatureError(np.sqrt(np.mean(err ** 2, axis=0)), np.std(f, axis=0),
                             float(np.linalg.norm(err) / max(np.linalg.norm(f), 1e-30)),
                             float(np.mean(cos[norms > 0])) if np.any(norms > 0) else 1.0)
    elif not feature_note:
        feature_note = "the int8 model's feature vectors were not captured"
    float_acc = int8_acc = None
    if labels is not None:
        y = np.asarray(labels, dtype=np.int64)
        float_acc = float(np.mean(float_top == y))
        int8_acc = float(np.mean(int8_top == y))
    return QuantizationError("logits" if kind == "logits" else "log-probabilities", len(raw),
                             float(np.mean(int8_top == float_top)), base["nll"], classes, feats,
                             feature_note, float_acc, int8_acc)
