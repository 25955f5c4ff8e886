# SPDX-License-Identifier: Apache-2.0
"""The "quantization" stage: compensate the int8 model's quantization error by matching
the float model it was converted from, not the labels.

Targets are the float model's probabilities on the same calibration inputs (its softmax;
fit.reference runs it). Candidates, each fitted on the fit split by the soft-target
cross-entropy (the KL divergence to the float model plus its entropy, a constant):
- "bias": per-class offsets with the temperature (bias-corrected temperature scaling);
- "vector": a per-class factor and offset;
- "head": the last layer re-fitted on the device's own feature vectors (fit.head), when
  the data has them.
The candidate with the lowest held-out KL is kept if, on the held-out split and through the
C core, it lowers the KL by FitOptions.min_nll_gain (and at least MIN_KL_GAIN), does not
lower the top-1 agreement with the float model, and, when there are labels, costs at most
one sample of labelled accuracy. The labelled stages then start from the compensated
state: the float model's knowledge stays wherever the labels do not ask for something else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinyfix.errors import TinyfixError
from tinyfix.fit import scaling
from tinyfix.fit.float_params import FloatParams
from tinyfix.fit.head import fit_head
from tinyfix.fit.head import min_samples as head_min_samples
from tinyfix.fit.head_source import HeadSource, within_limits
from tinyfix.fit.heldout import change, score_classification
from tinyfix.fit.quantize import quantize
from tinyfix.fit.result import StageDecision
from tinyfix.fit.targets import is_soft

if TYPE_CHECKING:
    from tinyfix.core import Params
    from tinyfix.fit.classification import _Fit

KEYS = ("kl", "agreement")
LABEL_KEYS = ("nll", "accuracy")
NO_LAYER = "the model's last layer was not given"
# Least KL drop (nats) worth a stage: the core's Q15 probabilities alone differ from the
# float model's by about this much, so smaller gains are rounding, not compensation.
MIN_KL_GAIN = 1e-3


def reference_scores(f: _Fit, params: Params) -> dict[str, float]:
    """KL divergence to the float model and top-1 agreement with it, on the held-out split
    through the C core."""
    assert f.ref_held is not None
    s = score_classification(f.core, f.model, params, f.raw_held, f.ref_held, f.feats_held)
    return {"kl": s["nll"], "agreement": s["accuracy"]}


def _candidates(f: _Fit, head: HeadSource | str | None
                ) -> tuple[list[tuple[str, FloatParams]], list[str]]:
    """Fitted candidate states, and why any were not tried."""
    assert f.ref_fit is not None
    found, notes = [], []
    for name, fitter in (("bias", scaling.fit_bias), ("vector", scaling.fit_vector)):
        need = scaling.min_samples(name, f.model.n_classes)
        if f.n_fit < need:
            notes.append(f"{name}: too few samples ({f.n_fit} < {need})")
            continue
        found.append((name, fitter(f.z_fit, f.ref_fit, f.state, f.options.l2)))
    source = within_limits(head, f.options.device.max_features)
    if f.feats_fit is None:
        notes.append("head: the data has no feature vectors")
    elif not isinstance(source, HeadSource):
        notes.append(f"head: {source or NO_LAYER}")
    elif f.n_fit < head_min_samples(f.model.n_classes):
        notes.append(f"head: too few samples ({f.n_fit})")
    else:
        try:
            fitted = fit_head(f.core, f.model, source, f.feats_fit, f.ref_fit, f.options,
                              f.raw_fit, f.state.output_kind)
            found.append((f"head ({fitted.chosen.variant.name})", fitted.state))
        except TinyfixError as exc:
            notes.append(f"head: {exc}")
    return found, notes


def quantization_stage(f: _Fit, head: HeadSource | str | None) -> StageDecision:
    if f.ref_fit is None or f.ref_held is None:
        return StageDecision("quantization", False, "not tried: no reference model given")
    labelled = not is_soft(f.y_held)
    before = {**reference_scores(f, f.params), **f.scores}
    candidates, notes = _candidates(f, head)
    tried = []
    best: tuple[str, FloatParams, Params, dict[str, float]] | None = None
    for name, state in candidates:
        params, _ = quantize(f.core, f.model, state, f.options.device)
        after = {**reference_scores(f, params), **f.score(params)}
        tried.append(f"{name}: KL {after['kl']:.4f}, agreement "
                     f"{100 * after['agreement']:.1f}%")
        gain = before["kl"] - after["kl"] >= max(before["kl"] * f.options.min_nll_gain,
                                                 MIN_KL_GAIN)
        agrees = after["agreement"] >= before["agreement"] - 1e-12
        keeps_accuracy = (not labelled or after["accuracy"]
                          >= before["accuracy"] - 1.0 / f.n_held - 1e-12)
        if gain and agrees and keeps_accuracy and (best is None or after["kl"] < best[3]["kl"]):
            best = (name, state, params, after)
    keys = (*KEYS, *LABEL_KEYS) if labelled else KEYS
    detail = "; ".join(tried + notes)
    if best is None:
        return StageDecision("quantization", False,
                             f"no candidate matches the float model better on the held-out "
                             f"split without costing agreement or accuracy (before: "
                             f"KL {before['kl']:.4f}, agreement "
                             f"{100 * before['agreement']:.1f}%; {detail})", before, before)
    name, state, params, after = best
    f.adopt(state, params, {k: v for k, v in after.items() if k not in KEYS})
    return StageDecision("quantization", True,
                         f"{name} against the float model, held-out {change(before, after, keys)}"
                         f" ({detail})", before, after)
