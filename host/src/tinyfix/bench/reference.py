# SPDX-License-Identifier: Apache-2.0
"""Scenario 5: the bundled float model as a reference (`--reference-model`, issue 16).

The float gesture model runs in LiteRT's reference kernels (tinyfix.reference); the int8
model in TFLM; every TinyFix figure through the C core.

Lab rows: the quantization stage fitted on the labelled lab validation windows (with the
float model's probabilities on them), scored on the lab test windows: the int8 model's
top-1 agreement with the float model and the KL divergence to it, before and after.

Field rows, on the field test windows: the int8 model as deployed, the float model itself,
the quantization stage alone and the full labelled chain with it (both fitted on the
labelled field calibration windows), the teacher-labelled chain (the field calibration
windows' inputs, labelled by the float model: no label read), the same on inputs corrected
by the label-free input stage, and the label-free input correction alone (EM path) for
comparison.
"""

from __future__ import annotations

import time
from functools import partial

from numpy.typing import NDArray

from tinyfix import metrics
from tinyfix.bench import field_adaptation
from tinyfix.bench.context import FLOAT_MODEL, Bench
from tinyfix.bench.table import Column, Row, Table, Target
from tinyfix.core import Params
from tinyfix.fit import FitOptions, FitResult, fit_classification
from tinyfix.fit.quant_error import agreement
from tinyfix.fit.teacher import fit_teacher
from tinyfix.fit.through_core import run_frames
from tinyfix.reference import ReferenceModel, ReferenceRun

COLUMNS = [Column("agreement", "top-1 agreement with float", "percent"),
           Column("kl", "KL to float (nats)", "nats"),
           Column("accuracy", "accuracy", "percent"),
           Column("ece", "ECE", "percent")]
VIA = "TFLM + C core, fitted set; float model in LiteRT reference kernels"
IDENTITY_VIA = "TFLM + C core, identity set; float model in LiteRT reference kernels"
LABEL_FREE_VIA = ("C core input stage + TFLM + C core, label-free set; float model in LiteRT "
                  "reference kernels")


class _Reference:
    """The float model's outputs on the bench's windows, computed once per split."""

    def __init__(self) -> None:
        self.model = ReferenceModel.load(FLOAT_MODEL)
        self._runs: dict[str, ReferenceRun] = {}

    def on(self, bench: Bench, key: str) -> ReferenceRun:
        if key not in self._runs:
            self._runs[key] = self.model.run(bench.windows(key).x)
        return self._runs[key]


def _figures(bench: Bench, params: Params, key: str, ref: ReferenceRun,
             features: bool, raw: NDArray | None = None,
             feats: NDArray | None = None) -> dict[str, float]:
    """Agreement and KL with the float model, accuracy and ECE against the labels."""
    model = bench.int8.info
    if raw is None:
        raw = bench.raw(bench.int8, f"windows:{key}")
        feats = bench.features(bench.int8, f"windows:{key}") if features else None
    run = run_frames(bench.core, model, params, raw, features=feats)
    figures = metrics.classification_metrics(bench.windows(key).y, run.decision,
                                             run.confidence, model.n_classes)
    figures.update(agreement(bench.core, model, params, raw, ref, feats))
    return figures


def _fit(bench: Bench, key: str, ref: ReferenceRun, stages: tuple[str, ...] | None
         ) -> FitResult:
    data = bench.windows(key)
    return fit_classification(bench.raw(bench.int8, f"windows:{key}"), data.y, bench.int8.info,
                              FitOptions(stages=stages), bench.core,
                              features=bench.features(bench.int8, f"windows:{key}"),
                              head=bench.head, reference=ref.probs)


def _stage_row(bench: Bench, name: str, key: str, test: str, result: FitResult,
               ref: ReferenceRun, whole: bool, role: str) -> Row:
    params = result.params if whole else result.quantization_params
    if params is None:
        params = result.baseline_params()
    uses_head = bool(params.c.n_features)
    kept = result.stages_kept if whole else [s for s in result.stages_kept
                                             if s == "quantization"]
    return Row(name, "int8", f"{test.split('_')[0]} test ({len(bench.windows(test).y)})",
               f"fitted on {key} with labels ({', '.join(kept) or 'no stage kept'})",
               _figures(bench, params, test, ref, uses_head), VIA, role, tinyfix=True,
               params_crc=params.crc, stages=tuple(kept))


def _identity_row(bench: Bench, name: str, key: str, ref: ReferenceRun, role: str) -> Row:
    base = bench.int8.identity(bench.core)
    return Row(name, "int8", f"{key.split('_')[0]} test ({len(bench.windows(key).y)})",
               "top-1", _figures(bench, base, key, ref, False), IDENTITY_VIA, role)


def _float_row(bench: Bench, key: str, ref: ReferenceRun) -> Row:
    y = bench.windows(key).y
    conf = ref.probs.max(axis=1)
    figures = metrics.classification_metrics(y, ref.top_class, conf, bench.int8.info.n_classes)
    figures.update({"agreement": 1.0, "kl": 0.0})
    return Row("float model (the reference itself)", "float", f"field test ({y.size})",
               "top-1", figures, "LiteRT reference kernels", "float")


def _teacher_rows(bench: Bench, refs: _Reference, table: Table) -> None:
    test = "field_test"
    ref_test = refs.on(bench, test)
    cal = bench.windows("field_calib")
    label_free = field_adaptation.label_free_fit(bench)
    scored = field_adaptation.score_label_free(bench, label_free)

    def run_int8(x: NDArray, params: Params | None) -> tuple[NDArray, NDArray | None]:
        return bench.int8.run(bench.core, x, params)

    def teacher(x: NDArray) -> NDArray:
        return refs.model.run(x).probs

    fit = partial(fit_teacher, model=bench.int8.info, x=cal.x, teacher=teacher,
                  run_int8=run_int8, head=bench.head, options=FitOptions(), core=bench.core)
    for name, start, role in (("teacher", None, "teacher"),
                              ("teacher+inputs", label_free.sets.get("inputs"),
                               "teacher_inputs")):
        adapted = fit(name, inputs=start)
        x = bench.windows(test).x
        raw, feats = run_int8(x, adapted.params if adapted.corrects_inputs else None)
        uses_head = adapted.float_params.head is not None
        figures = _figures(bench, adapted.params, test, ref_test, uses_head, raw,
                           feats if uses_head else None)
        kept = tuple(s.name for s in adapted.stages if s.kept and s.name != "teacher labels")
        where = "corrected " if start is not None else ""
        table.rows.append(Row(
            f"int8, field + TinyFix ({name}: no label)", "int8",
            f"field test ({len(bench.windows(test).y)})",
            f"fitted to the float model's outputs on the {cal.y.size} {where}field "
            f"calibration inputs ({', '.join(kept)})", figures, VIA, role, tinyfix=True,
            params_crc=adapted.params.crc, stages=kept))
    if "inputs" in scored:
        inputs = label_free.sets["inputs"]
        raw = bench.raw(bench.int8, f"windows:{test}", inputs.params)
        table.rows.append(Row(
            "int8, field + TinyFix (label-free input correction, EM path: no label)",
            "int8", f"field test ({len(bench.windows(test).y)})",
            "input offset and gain from matched statistics",
            _figures(bench, inputs.params, test, ref_test, False, raw), LABEL_FREE_VIA,
            "label_free",
            tinyfix=True, params_crc=inputs.params.crc, stages=("inputs",)))


def run(bench: Bench) -> Table:
    started = time.monotonic()
    refs = _Reference()
    table = Table(
        "reference", "5. The float model as a reference: quantization error and teacher labels",
        "The bundled float gesture model beside its int8 model. The quantization stage is "
        "fitted to the float model's probabilities (bias, vector scaling or the last layer "
        "re-fitted on the device's features, kept only if held-out KL and agreement improve); "
        "teacher rows read no label, the float model's outputs on the field calibration "
        "inputs take their place.", COLUMNS)
    lab = _fit(bench, "lab_val", refs.on(bench, "lab_val"), None)
    ref_lab = refs.on(bench, "lab_test")
    table.rows += [
        _identity_row(bench, "int8 as deployed (lab)", "lab_test", ref_lab, "lab_before"),
        _stage_row(bench, "int8 + TinyFix (quantization stage alone, lab)", "lab_val",
                   "lab_test", lab, ref_lab, False, "lab_quantization"),
        _stage_row(bench, "int8 + TinyFix (labelled chain with the reference, lab)",
                   "lab_val", "lab_test", lab, ref_lab, True, "lab_chain"),
    ]
    field = _fit(bench, "field_calib", refs.on(bench, "field_calib"), None)
    ref_field = refs.on(bench, "field_test")
    table.rows += [
        _identity_row(bench, "int8 as deployed (field)", "field_test", ref_field, "before"),
        _float_row(bench, "field_test", ref_field),
        _stage_row(bench, "int8, field + TinyFix (quantization stage alone)", "field_calib",
                   "field_test", field, ref_field, False, "quantization"),
        _stage_row(bench, "int8, field + TinyFix (labelled chain with the reference)",
                   "field_calib", "field_test", field, ref_field, True, "labelled"),
    ]
    _teacher_rows(bench, refs, table)
    _targets(table)
    table.seconds = time.monotonic() - started
    return table


def _targets(table: Table) -> None:
    lab_b, lab_q = table.row("lab_before").figures, table.row("lab_quantization").figures
    table.targets.append(Target(
        "quantization stage, lab", "agreement with the float model not lower, KL lower",
        lab_q["agreement"] >= lab_b["agreement"] and lab_q["kl"] < lab_b["kl"],
        f"agreement {100 * lab_b['agreement']:.1f}% -> {100 * lab_q['agreement']:.1f}%, KL "
        f"{lab_b['kl']:.4f} -> {lab_q['kl']:.4f}"))
    before, teacher = table.row("before").figures, table.row("teacher_inputs").figures
    label_free = table.row("label_free").figures
    table.targets.append(Target(
        "teacher labels, field", "teacher+inputs beats the raw model and the label-free "
        "input correction (accuracy)",
        teacher["accuracy"] > max(before["accuracy"], label_free["accuracy"]),
        f"raw {100 * before['accuracy']:.1f}%, label-free inputs "
        f"{100 * label_free['accuracy']:.1f}%, teacher+inputs "
        f"{100 * teacher['accuracy']:.1f}%, labelled "
        f"{100 * table.row('labelled').figures['accuracy']:.1f}%"))
    table.notes.append(
        "agreement: the corrected decision equals the float model's top-1 (no decision "
        "disagrees); KL: mean KL(float || corrected) in nats, from the core's Q15 "
        "probabilities. The labelled chain fits confidence to the labels, so its KL to the "
        "float model grows where the float model itself is miscalibrated for the data.")
