# SPDX-License-Identifier: Apache-2.0
"""Re-fit the model's last layer (the core's head stage) from the device's own features.

On the fit split of the calibration data, for every variant (the full layer, or only the
weights of the features that matter most, for a size budget) and every regularisation
strength lam on a grid, a layer is fitted on two folds and run *through the C core* on the
third (stratified 3-fold cross-fitting); a temperature is fitted on the pooled out-of-fold
logits the core produced. The variant and lam with the lowest out-of-fold NLL win; the
layer is then re-fitted on the whole fit split with that lam and temperature. Whether it
is kept is decided by the caller on the held-out split, against the output-only stages.

The head writes its logits in the model output's quantization. For a logits model that
is the model's own output scale, so lam = inf gives back the model's layer bit for bit. A
model that ends in SOFTMAX has a probability output scale, far too fine for logits: the
head then writes logits at a coarser step (and shifted to the middle of the int8 range,
which softmax does not see), and the scale stage multiplies that step back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tinyfix.core import Core, ModelInfo
from tinyfix.errors import TinyfixError
from tinyfix.fit.float_params import FloatParams
from tinyfix.fit.head_lr import feature_usefulness, fit_layer
from tinyfix.fit.head_params import HeadParams, quantize_head
from tinyfix.fit.head_source import HeadSource
from tinyfix.fit.heldout import classification_scores
from tinyfix.fit.nll import fit_affine
from tinyfix.fit.options import FitOptions
from tinyfix.fit.quantize import Q16, quantize
from tinyfix.fit.scaling import CLASS_SCALE_LIMIT, INV_TEMPERATURE_LIMITS
from tinyfix.fit.through_core import run_frames

LAMBDAS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, math.inf)
FOLDS = 3
MIN_SAMPLES_PER_CLASS = 10  # in the fit split, per class of the model
# Softmax models: the logits that matter (from this far below a frame's largest up to the
# largest) span about SPAN output steps of the head, the largest sit HEADROOM steps below
# the top of the int8 range, and one step is at most LIMIT output steps (the scale stage
# multiplies it back: class scales and 1/T, each up to 64).
SOFTMAX_RELEVANT_LOGITS = 16.0
SOFTMAX_SPAN_STEPS = 200
SOFTMAX_HEADROOM_STEPS = 8
SOFTMAX_STEP_LIMIT = 1024.0


@dataclass(frozen=True)
class Variant:
    """Which weights move: all (k = n_features) or the top-k features' columns."""

    k: int
    n_features: int

    @property
    def name(self) -> str:
        return "full layer" if self.k == self.n_features else f"top {self.k} features"

    def trainable(self, x: NDArray[np.float64], y: NDArray[np.int64],
                  source: HeadSource) -> NDArray[np.bool_] | None:
        if self.k == self.n_features:
            return None
        rank = np.argsort(-feature_usefulness(x, y, source.weights, source.bias),
                          kind="stable")
        mask = np.zeros(self.n_features, dtype=bool)
        mask[rank[:self.k]] = True
        return mask


@dataclass(frozen=True)
class Trial:
    variant: Variant
    lam: float
    inv_temperature: float  # relative: multiplies the head's output step factor
    scores: dict[str, float]  # out-of-fold, through the C core


@dataclass(frozen=True)
class HeadFit:
    state: FloatParams
    chosen: Trial
    trials: list[Trial]

    @property
    def head(self) -> HeadParams:
        assert self.state.head is not None
        return self.state.head

    def describe(self) -> str:
        c = self.chosen
        head = self.head
        lam = "inf (the model's own layer)" if math.isinf(c.lam) else f"{c.lam:g}"
        best_of = {}
        for t in self.trials:
            name = t.variant.name
            if name not in best_of or t.scores["nll"] < best_of[name].scores["nll"]:
                best_of[name] = t
        others = "; ".join(f"{n} {t.scores['nll']:.3f}" for n, t in best_of.items())
        return (f"{c.variant.name}, lam {lam}, 1/T {c.inv_temperature:.3f} "
                f"(out-of-fold NLL {c.scores['nll']:.3f}; best per variant: {others}); "
                f"flash {head.flash_bytes} B as the core stores it "
                f"({head.n_classes}x{head.n_features} int8 weights, "
                f"{head.n_classes} int32 biases, multipliers and shifts)"
                + (f", {head.residual_bytes} B as a residual on {head.trained_features} "
                   "features" if head.trained_features < head.n_features else ""))


def _folds(y: NDArray[np.int64], k: int, seed: int) -> NDArray[np.int64]:
    """Fold index of every sample, each class spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(y.size, dtype=np.int64)
    offset = 0
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        fold[members] = (np.arange(members.size) + offset) % k
        offset += members.size
    return fold


def _variants(source: HeadSource, budget: int | None) -> list[Variant]:
    n_f, n_c = source.n_features, source.n_classes
    ks = {n_f // 4, n_f // 2, n_f}
    if budget is not None:
        ks.add(min(n_f, budget // n_c))
        ks = {k for k in ks if n_c * k <= budget}
    return [Variant(k, n_f) for k in sorted(k for k in ks if k >= 1)]


def output_step(source: HeadSource, model: ModelInfo, x: NDArray[np.float64]
                ) -> tuple[float, float]:
    """(logit_step, logit shift) of the head's output. A logits model keeps its own
    output quantization. A softmax model's step spans its layer's logits on x, shifted so
    the largest logits fit under the top of the int8 range: softmax does not see a common
    shift, and a logit clipped at the bottom is one whose probability is ~0 anyway."""
    if not source.ends_in_softmax:
        return model.output_scale, 0.0
    logits = x @ source.weights.T + source.bias
    if logits.size == 0:
        return model.output_scale, 0.0
    top_logit = logits.max(axis=1)
    lo = float(np.percentile(top_logit, 0.5)) - SOFTMAX_RELEVANT_LOGITS
    hi = float(np.percentile(top_logit, 99.9))
    step = max(hi - lo, 1e-3) / SOFTMAX_SPAN_STEPS
    step = float(np.clip(step, model.output_scale / 128,
                         SOFTMAX_STEP_LIMIT * model.output_scale))
    top = (127 - model.output_zero_point - SOFTMAX_HEADROOM_STEPS) * step
    return step, top - hi


def layer_state(model: ModelInfo, source: HeadSource, weights: NDArray[np.float64],
                bias: NDArray[np.float64], step: float, shift: float,
                inv_temperature: float = 1.0, trained: int | None = None) -> FloatParams:
    """Float parameters whose head is this float layer, quantized as the model's own layer
    is (per channel or per tensor), writing logits + shift at `step` (see output_step);
    the scale stage turns the step back into logits (class scales) and applies 1/T."""
    head = quantize_head(weights, bias + shift, source.feature_scale, step,
                         per_class=source.per_channel, model_scales=source.weight_scales,
                         trained_features=trained)
    fp = FloatParams.identity(model.n_classes, "logits")
    scale, base = step_factors(step, model)
    return fp.replace(head=head, class_scale=np.full(model.n_classes, scale),
                      inv_temperature=base * inv_temperature)


def step_factors(step: float, model: ModelInfo) -> tuple[float, float]:
    """(class scale, inverse temperature at 1/T = 1) whose product is step / output scale:
    1 and 1 for a logits model; the class scales carry up to 64, 1/T the rest."""
    factor = step / model.output_scale
    scale = float(min(max(factor, 1.0), CLASS_SCALE_LIMIT))
    return scale, factor / scale


class _Builder:
    """Fitted float layers to sealed parameter sets and C-core runs."""

    def __init__(self, core: Core, model: ModelInfo, source: HeadSource,
                 options: FitOptions, step: float, shift: float) -> None:
        self.core, self.model, self.source, self.options = core, model, source, options
        self.step, self.shift = step, shift
        self.base = step_factors(step, model)[1]  # the inverse temperature at 1/T = 1

    def state(self, w: NDArray[np.float64], b: NDArray[np.float64], inv_t: float,
              trained: int) -> FloatParams:
        return layer_state(self.model, self.source, w, b, self.step, self.shift, inv_t,
                           trained)

    def logits(self, fp: FloatParams, feats: NDArray[np.int8]) -> NDArray[np.float64]:
        params, _ = quantize(self.core, self.model, fp, self.options.device)
        raw = np.zeros((feats.shape[0], self.model.n_classes), dtype=self.model.output_type)
        return run_frames(self.core, self.model, params, raw, features=feats).logit / Q16

    def scores(self, fp: FloatParams, feats: NDArray[np.int8], y: NDArray[np.int64]
               ) -> dict[str, float]:
        params, _ = quantize(self.core, self.model, fp, self.options.device)
        raw = np.zeros((feats.shape[0], self.model.n_classes), dtype=self.model.output_type)
        run = run_frames(self.core, self.model, params, raw, features=feats)
        return classification_scores(run, y, self.model.n_classes)


def _temperature(z: NDArray[np.float64], y: NDArray[np.int64], base: float, l2: float
                 ) -> float:
    """1/T for logits z the core produced at 1/T = 1 (within the core's range)."""
    lo, hi = INV_TEMPERATURE_LIMITS
    fit = fit_affine(z, y, np.ones(z.shape[1]), np.zeros(z.shape[1]), scale="shared",
                     bias=False, l2=l2, factor_bounds=[(lo / base, hi / base)],
                     offset_bounds=[])
    return float(fit.factor[0])


def _trial(b: _Builder, variant: Variant, lam: float, x: NDArray[np.float64],
           feats: NDArray[np.int8], y: NDArray[np.int64], fold: NDArray[np.int64]) -> Trial:
    layers = []
    z = np.zeros((y.size, b.model.n_classes))
    for k in range(FOLDS):
        train, test = fold != k, fold == k
        mask = variant.trainable(x[train], y[train], b.source)
        w, bias = fit_layer(x[train], y[train], b.source.weights, b.source.bias, lam, mask)
        layers.append((w, bias))
        z[test] = b.logits(b.state(w, bias, 1.0, variant.k), feats[test])
    inv_t = _temperature(z, y, b.base, b.options.l2)
    probs = []
    for k, (w, bias) in enumerate(layers):
        test = fold == k
        probs.append((test, b.scores(b.state(w, bias, inv_t, variant.k), feats[test],
                                     y[test])))
    n = y.size
    scores = {key: sum(s[key] * t.sum() for t, s in probs) / n for key in ("nll", "accuracy")}
    return Trial(variant, lam, inv_t, scores)


def min_samples(n_classes: int) -> int:
    return MIN_SAMPLES_PER_CLASS * n_classes


def time_folds(n: int) -> NDArray[np.int64]:
    """Folds of consecutive frames: neighbouring frames of a stream share most of their
    input, so a random fold would score the layer on what it was fitted on."""
    return np.minimum(np.arange(n) * FOLDS // max(n, 1), FOLDS - 1).astype(np.int64)


def fit_head(core: Core, model: ModelInfo, source: HeadSource, features: NDArray[np.int8],
             y: NDArray[np.int64], options: FitOptions,
             fold: NDArray[np.int64] | None = None) -> HeadFit:
    """The best head on the fit split (features (N, F) int8, labels (N,)); `fold` assigns
    each sample one of FOLDS cross-fitting folds (default: stratified at random)."""
    if features.shape != (y.size, source.n_features):
        raise TinyfixError(f"features {features.shape} for {y.size} labels and a layer of "
                           f"{source.n_features} features")
    x = source.real_features(features)
    step, shift = output_step(source, model, x)
    b = _Builder(core, model, source, options, step, shift)
    fold = _folds(y, FOLDS, options.seed) if fold is None else np.asarray(fold)
    variants = _variants(source, options.head_budget_bytes)
    if not variants:
        raise TinyfixError(f"a head budget of {options.head_budget_bytes} B holds no "
                           f"feature column of {source.n_classes} int8 weights")
    trials = [_trial(b, v, lam, x, features, y, fold) for v in variants for lam in LAMBDAS]
    chosen = min(trials, key=lambda t: (round(t.scores["nll"], 6), t.variant.k, -t.lam))
    mask = chosen.variant.trainable(x, y, source)
    w, bias = fit_layer(x, y, source.weights, source.bias, chosen.lam, mask)
    state = b.state(w, bias, chosen.inv_temperature, chosen.variant.k)
    return HeadFit(state, chosen, trials)
