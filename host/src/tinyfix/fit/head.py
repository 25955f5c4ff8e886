# SPDX-License-Identifier: Apache-2.0
"""Re-fit the model's last layer (the core's head stage) from the device's own features.

Variants, each within the head budget (bytes of the parameter set's head; default
default_budget()): the whole layer re-fitted, or a residual on the model's own logits from
the k most useful features (several k). On the fit split of the calibration data, for every
variant and every regularisation strength lam on a grid, a layer is fitted on two folds and
run *through the C core* on the third (stratified 3-fold cross-fitting); a temperature is
fitted on the pooled out-of-fold logits the core produced. The variant and lam with the
lowest out-of-fold NLL win; the layer is then re-fitted on the whole fit split with that lam
and temperature. Whether it is kept is decided by the caller on the held-out split, against
the output-only stages.

A whole layer writes its logits in the model output's quantization. For a logits model
that is the model's own output scale, so lam = inf gives back the model's layer bit for bit.
A model that ends in SOFTMAX has a probability output scale, far too fine for logits: the
head then writes logits at a coarser step (and shifted to the middle of the int8 range,
which softmax does not see), and the scale stage multiplies that step back. A residual adds
to the logits the core already derives from the model's output (the log of a probability),
so it needs neither. A binary model's one row is class 1's logit against class 0's 0: the
fit works on the two class logits and stores their difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tinyfix.core import Core, ModelInfo
from tinyfix.errors import TinyfixError
from tinyfix.fit.domain import scaling_inputs
from tinyfix.fit.float_params import FloatParams
from tinyfix.fit.head_lr import feature_usefulness, fit_layer
from tinyfix.fit.head_params import HeadParams, head_bytes, quantize_head, quantize_residual
from tinyfix.fit.head_source import HeadSource
from tinyfix.fit.heldout import classification_scores
from tinyfix.fit.nll import fit_affine
from tinyfix.fit.options import FitOptions
from tinyfix.fit.quantize import Q16, quantize
from tinyfix.fit.scaling import CLASS_SCALE_LIMIT, INV_TEMPERATURE_LIMITS
from tinyfix.fit.targets import hard_labels
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
# Default budget: a quarter of the model's own layer, and never below this (a small layer
# is cheaper to re-fit whole than to patch).
MIN_DEFAULT_BUDGET = 1024
RESIDUAL_SHARES = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1)
MAX_RESIDUAL_VARIANTS = 4


def default_budget(source: HeadSource) -> int:
    """Bytes a head may take when the user does not say: a quarter of the model's own last
    layer, at least MIN_DEFAULT_BUDGET."""
    return max(MIN_DEFAULT_BUDGET, source.own_bytes // 4)


@dataclass(frozen=True)
class Variant:
    """A whole layer (k = n_features, residual False) or a residual on k features."""

    k: int
    n_features: int
    residual: bool

    @property
    def name(self) -> str:
        return f"residual on {self.k} features" if self.residual else "whole layer"

    def bytes(self, rows: int) -> int:
        return head_bytes(rows, self.n_features, self.k if self.residual else None)


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
    budget: int

    @property
    def head(self) -> HeadParams:
        assert self.state.head is not None
        return self.state.head

    def describe(self) -> str:
        c = self.chosen
        lam = "inf (the model's own layer)" if math.isinf(c.lam) else f"{c.lam:g}"
        best_of = {}
        for t in self.trials:
            name = t.variant.name
            if name not in best_of or t.scores["nll"] < best_of[name].scores["nll"]:
                best_of[name] = t
        others = "; ".join(f"{n} {t.scores['nll']:.3f}" for n, t in best_of.items())
        head = self.head
        return (f"{c.variant.name}, lam {lam}, 1/T {c.inv_temperature:.3f} "
                f"(out-of-fold NLL {c.scores['nll']:.3f}; best per variant: {others}); "
                f"{head.describe()}: flash {head.flash_bytes} B (the parameter set), RAM "
                f"{head.flash_bytes} B per copy of the set the firmware holds, within a "
                f"budget of {self.budget} B")


def _folds(y: NDArray, k: int, seed: int) -> NDArray[np.int64]:
    """Fold index of every sample, each class (a soft target's most likely) spread evenly
    over the folds."""
    y = hard_labels(y)
    rng = np.random.default_rng(seed)
    fold = np.empty(y.size, dtype=np.int64)
    offset = 0
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        fold[members] = (np.arange(members.size) + offset) % k
        offset += members.size
    return fold


def variants(source: HeadSource, budget: int, max_weights: int | None = None
             ) -> list[Variant]:
    """Every head shape within `budget` bytes (and the device's weight capacity)."""
    n_f, rows = source.n_features, source.n_rows
    room = max_weights if max_weights is not None else rows * n_f
    out = []
    if source.whole_layer_ok and head_bytes(rows, n_f, None) <= budget and rows * n_f <= room:
        out.append(Variant(n_f, n_f, False))
    largest = min(n_f, room // rows, (budget - (n_f + 7) // 8) // rows - 12)
    ks = {max(1, int(n_f * share)) for share in RESIDUAL_SHARES} | {largest}
    ks = {k for k in ks if 1 <= k <= largest}
    for k in sorted(ks)[-MAX_RESIDUAL_VARIANTS:]:
        out.append(Variant(k, n_f, True))
    return out


def output_step(source: HeadSource, model: ModelInfo, x: NDArray[np.float64]
                ) -> tuple[float, float]:
    """(logit_step, logit shift) of a whole layer's output. A logits model keeps its own
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
                inv_temperature: float = 1.0) -> FloatParams:
    """Float parameters whose head is this float layer (rows, F), quantized as the model's
    own layer is (per channel or per tensor), writing logits + shift at `step` (see
    output_step); the scale stage turns the step back into logits (class scales) and
    applies 1/T."""
    head = quantize_head(weights, bias + shift, source.feature_scale, step,
                         per_class=source.per_channel, model_scales=source.weight_scales)
    fp = FloatParams.identity(model.n_classes, "logits")
    scale, base = step_factors(step, model)
    return fp.replace(head=head, class_scale=np.full(model.n_classes, scale),
                      inv_temperature=base * inv_temperature)


def residual_state(model: ModelInfo, source: HeadSource, output_kind: str,
                   weights: NDArray[np.float64], bias: NDArray[np.float64],
                   columns: NDArray[np.int64], inv_temperature: float = 1.0) -> FloatParams:
    """Float parameters whose head adds weights (rows, k) x[columns] + bias to the model's
    own logits."""
    head = quantize_residual(weights, bias, source.feature_scale, columns, source.n_features)
    fp = FloatParams.identity(model.n_classes, output_kind)
    return fp.replace(head=head, inv_temperature=inv_temperature)


def step_factors(step: float, model: ModelInfo) -> tuple[float, float]:
    """(class scale, inverse temperature at 1/T = 1) whose product is step / output scale:
    1 and 1 for a logits model; the class scales carry up to 64, 1/T the rest."""
    factor = step / model.output_scale
    scale = float(min(max(factor, 1.0), CLASS_SCALE_LIMIT))
    return scale, factor / scale


@dataclass
class _Data:
    """One split's data as each variant needs it."""

    x: NDArray[np.float64]  # real features (N, F)
    feats: NDArray[np.int8]  # the device's int8 features
    raw: NDArray  # the device's raw outputs
    z: NDArray[np.float64]  # the model's own class logits as the core derives them
    y: NDArray  # labels (N,) or soft targets (N, C)

    def part(self, mask: NDArray[np.bool_]) -> _Data:
        return _Data(self.x[mask], self.feats[mask], self.raw[mask], self.z[mask], self.y[mask])


class _Builder:
    """Fitted float layers to sealed parameter sets and C-core runs."""

    def __init__(self, core: Core, model: ModelInfo, source: HeadSource,
                 options: FitOptions, output_kind: str, step: float, shift: float) -> None:
        self.core, self.model, self.source, self.options = core, model, source, options
        self.output_kind = output_kind
        self.step, self.shift = step, shift
        self.base = step_factors(step, model)[1]  # a whole layer's 1/T at 1/T = 1

    def fit(self, v: Variant, lam: float, d: _Data
            ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64] | None]:
        """Row weights and biases of the variant fitted on d (and the residual's columns)."""
        src = self.source
        if not v.residual:
            w0, b0 = src.class_layer()
            w, b = fit_layer(d.x, d.y, w0, b0, lam)
            w_rows, b_rows = src.to_rows(w, b)
            return w_rows, b_rows, None
        rank = np.argsort(-feature_usefulness(d.x, d.y, d.z), kind="stable")
        cols = np.sort(rank[:v.k])
        zeros_w = np.zeros((self.model.n_classes, v.k))
        w, b = fit_layer(d.x[:, cols], d.y, zeros_w, np.zeros(self.model.n_classes), lam,
                         offset=d.z)
        w_rows, b_rows = src.to_rows(w, b)
        return w_rows, b_rows, cols

    def state(self, v: Variant, fitted: tuple, inv_t: float) -> FloatParams:
        w, b, cols = fitted
        if cols is None:
            return layer_state(self.model, self.source, w, b, self.step, self.shift, inv_t)
        return residual_state(self.model, self.source, self.output_kind, w, b, cols, inv_t)

    def base_inv_t(self, v: Variant) -> float:
        return 1.0 if v.residual else self.base

    def run(self, fp: FloatParams, d: _Data):  # -> CoreRun
        params, _ = quantize(self.core, self.model, fp, self.options.device)
        raw = d.raw
        if not (fp.head is not None and fp.head.is_residual):
            raw = np.zeros_like(d.raw)  # a whole layer replaces the model's output
        return run_frames(self.core, self.model, params, raw, features=d.feats)


def _temperature(z: NDArray[np.float64], y: NDArray, base: float, l2: float
                 ) -> float:
    """1/T for logits z the core produced at 1/T = 1 (within the core's range)."""
    lo, hi = INV_TEMPERATURE_LIMITS
    fit = fit_affine(z, y, np.ones(z.shape[1]), np.zeros(z.shape[1]), scale="shared",
                     bias=False, l2=l2, factor_bounds=[(lo / base, hi / base)],
                     offset_bounds=[])
    return float(fit.factor[0])


def _trial(b: _Builder, variant: Variant, lam: float, d: _Data,
           fold: NDArray[np.int64]) -> Trial:
    fitted = []
    n = len(d.y)
    z = np.zeros((n, b.model.n_classes))
    for k in range(FOLDS):
        train, test = fold != k, fold == k
        layer = b.fit(variant, lam, d.part(train))
        fitted.append(layer)
        z[test] = b.run(b.state(variant, layer, 1.0), d.part(test)).logit / Q16
    inv_t = _temperature(z, d.y, b.base_inv_t(variant), b.options.l2)
    totals = {"nll": 0.0, "accuracy": 0.0}
    for k, layer in enumerate(fitted):
        test = fold == k
        part = d.part(test)
        scores = classification_scores(b.run(b.state(variant, layer, inv_t), part), part.y,
                                       b.model.n_classes)
        for key in totals:
            totals[key] += scores[key] * test.sum()
    return Trial(variant, lam, inv_t, {key: v / n for key, v in totals.items()})


def min_samples(n_classes: int) -> int:
    return MIN_SAMPLES_PER_CLASS * n_classes


def time_folds(n: int) -> NDArray[np.int64]:
    """Folds of consecutive frames: neighbouring frames of a stream share most of their
    input, so a random fold would score the layer on what it was fitted on."""
    return np.minimum(np.arange(n) * FOLDS // max(n, 1), FOLDS - 1).astype(np.int64)


def fit_head(core: Core, model: ModelInfo, source: HeadSource, features: NDArray[np.int8],
             y: NDArray, options: FitOptions, raw: NDArray,
             output_kind: str = "logits", fold: NDArray[np.int64] | None = None) -> HeadFit:
    """The best head on the fit split: features (N, F) int8, labels (N,), the device's raw
    outputs (N, outputs) and their kind; `fold` assigns each sample one of FOLDS
    cross-fitting folds (default: stratified at random)."""
    if features.shape != (len(y), source.n_features):
        raise TinyfixError(f"features {features.shape} for {len(y)} labels and a layer of "
                           f"{source.n_features} features")
    budget = options.head_budget_bytes or default_budget(source)
    found = variants(source, budget, options.device.max_head_weights)
    if not found:
        smallest = head_bytes(source.n_rows, source.n_features, 1)
        raise TinyfixError(f"a head budget of {budget} B holds no head of this layer "
                           f"({source.n_rows} rows x {source.n_features} features: at least "
                           f"{smallest} B for a residual on one feature)")
    x = source.real_features(features)
    step, shift = output_step(source, model, x)
    b = _Builder(core, model, source, options, output_kind, step, shift)
    data = _Data(x, features, raw, scaling_inputs(raw, model, output_kind), y)
    fold = _folds(y, FOLDS, options.seed) if fold is None else np.asarray(fold)
    trials = [_trial(b, v, lam, data, fold) for v in found for lam in LAMBDAS]
    chosen = min(trials, key=lambda t: (round(t.scores["nll"], 6), t.variant.bytes(
        source.n_rows), -t.lam))
    layer = b.fit(chosen.variant, chosen.lam, data)
    return HeadFit(b.state(chosen.variant, layer, chosen.inv_temperature), chosen, trials,
                   budget)
