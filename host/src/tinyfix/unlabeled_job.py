# SPDX-License-Identifier: Apache-2.0
"""`tinyfix fit --unlabeled D`: adapt to field data nobody labelled, offline.

D holds field captures: model inputs `x` (real values, channels last) or recorded raw
outputs `scores`; labels in D, if any, are never read. The model runs in the simulated
device's TFLM kernels. Labelled lab data (`--reference-data`, x and y) calibrate the
outputs and give the input statistics to match; without them only the prior shift under an
assumed training mix is possible. With `--eval` (labelled field data) every set is scored
through the C core beside the raw model, so a user sees what labels would add.

With `--reference-model` (the float model the int8 one came from), its probabilities on
D's inputs label them (fit.teacher): the "teacher" set, and "teacher+inputs" on inputs
corrected by the input stage; the report adds where quantization costs on D.

Which set is written (params.yaml, overlay, conf): `--unlabeled-set`, by default
"teacher+inputs" (else "teacher") with a reference model, else the input correction when D
has inputs, else the prior shift. A prior estimated without labels
assumes each class's inputs look as in the lab; sensor drift breaks that, and on the demo's
drifted device the prior shift alone costs accuracy while the input correction gains it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from tinyfix import params_io, quant_report
from tinyfix.calibrate import run_reference
from tinyfix.capture import quantize_inputs
from tinyfix.core import Core, Params
from tinyfix.datasets import open_npz
from tinyfix.errors import TinyfixError
from tinyfix.fit import FitOptions
from tinyfix.fit.head_source import head_source
from tinyfix.fit.quant_error import measure
from tinyfix.fit.teacher import fit_teacher
from tinyfix.fit.unlabeled import LabReference, UnlabeledFit, fit_unlabeled
from tinyfix.quant_report import QuantizationReport
from tinyfix.reference import ReferenceModel
from tinyfix.report import json_safe
from tinyfix.twin import ModelGraph, TflmRunner, default_model

SETS = ("auto", "prior", "inputs", "both", "teacher", "teacher+inputs")
_INPUTS = "model inputs in the unlabeled data and labelled lab inputs (--reference-data)"
NEEDS = {"prior": "the unlabeled data", "inputs": _INPUTS, "both": _INPUTS,
         "teacher": "--reference-model and model inputs in the unlabeled data",
         "teacher+inputs": f"--reference-model and {_INPUTS}"}
FIGURES = (("accuracy", "{:.1%}"), ("macro_f1", "{:.3f}"), ("ece", "{:.1%}"))


@dataclass
class UnlabeledJob:
    unlabeled: Path
    out: Path
    model: Path | None = None
    reference: Path | None = None
    eval: Path | None = None
    which: str = "auto"
    # The float .tflite the int8 model came from: its outputs label the field inputs
    # (fit.teacher), beside the label-free sets.
    reference_model: Path | None = None


def _inputs(data: dict[str, NDArray], path: Path) -> tuple[NDArray | None, NDArray | None]:
    x, scores = data.get("x"), data.get("scores")
    if x is None and scores is None:
        raise TinyfixError(f"{path}: needs `x` (model inputs) or `scores` (raw outputs)")
    return x, scores


class _Model:
    """The model in the twin's TFLM kernels, inputs quantized by the C core's input stage."""

    def __init__(self, path: Path | None, core: Core) -> None:
        self.graph = ModelGraph.load(path or default_model())
        self.core = core
        self.info = self.graph.model_info(core)
        self._runner: TflmRunner | None = None

    def run(self, x: NDArray, params: Params | None) -> NDArray:
        return self.run_features(x, params)[0]

    def run_features(self, x: NDArray, params: Params | None
                     ) -> tuple[NDArray, NDArray | None]:
        if self._runner is None:
            self._runner = TflmRunner(self.graph)
        return self._runner.run(quantize_inputs(self.core, self.info, x, params))

    def raw(self, x: NDArray | None, scores: NDArray | None) -> NDArray:
        if scores is not None:
            return scores
        assert x is not None
        return self.run(x, None)


def _names(n: int, *sources: dict[str, NDArray] | None) -> tuple[str, ...]:
    for data in sources:
        if data is not None and "class_names" in data and len(data["class_names"]) == n:
            return tuple(str(s) for s in data["class_names"])
    return tuple(str(i) for i in range(n))


def _table(rows: dict[str, dict[str, float]], title: str) -> Table:
    table = Table(title=title)
    table.add_column("set")
    for key, _ in FIGURES:
        table.add_column(key.replace("_", "-"), justify="right")
    for name, scores in rows.items():
        table.add_row(name, *(fmt.format(scores[key]) for key, fmt in FIGURES))
    return table


def _chosen(fit: UnlabeledFit, which: str) -> str:
    if which == "auto":
        for name in ("teacher+inputs", "teacher", "inputs"):
            if name in fit.sets:
                return name
        return "prior"
    if which not in fit.sets:
        raise TinyfixError(f"no {which!r} set: it needs {NEEDS[which]}")
    return which


def _teacher_sets(job: UnlabeledJob, model: _Model, fit: UnlabeledFit, x: NDArray | None,
                  names: tuple[str, ...], console: Console) -> QuantizationReport | None:
    """The teacher-labelled sets (fit.teacher), and the quantization error on the field
    inputs; None without --reference-model."""
    if job.reference_model is None:
        return None
    if x is None:
        raise TinyfixError(f"--reference-model runs the float model on the inputs: "
                           f"{job.unlabeled} must hold model inputs (x), not recorded scores")
    reference = ReferenceModel.load(job.reference_model)
    reference.check_graph(model.graph)
    options = FitOptions()
    head = head_source(model.graph, model.info, options.device.max_features)

    ref_run = run_reference(reference, x, console, "field")

    def teacher(inputs: NDArray) -> NDArray:
        if inputs is x:
            return ref_run.probs
        return run_reference(reference, inputs, console, "corrected field").probs

    for name, start in (("teacher", None), ("teacher+inputs", fit.sets.get("inputs"))):
        if name == "teacher+inputs" and start is None:
            continue
        fit.sets[name] = fit_teacher(name, model.info, x, teacher, model.run_features, head,
                                     options, fit.core, start)
    raw, feats = model.run_features(x, None)
    graph_feature = model.graph.feature
    note = reference.features_match(model.info.n_features)
    measured = measure(fit.core, model.info, fit.output_kind, raw, ref_run,
                       names, None, feats,
                       0.0 if graph_feature is None else graph_feature.scale,
                       0 if graph_feature is None else graph_feature.zero_point, note)
    return QuantizationReport(reference.name, measured, inputs="unlabeled field")


def _report(fit: UnlabeledFit, chosen: str, rows: dict[str, dict[str, float]] | None,
            job: UnlabeledJob) -> str:
    lines = ["# TinyFix label-free adaptation", "",
             f"Unlabeled field data: `{job.unlabeled}`; lab reference: "
             f"`{job.reference or 'none'}`; written set: **{chosen}**.", ""]
    for name, adapted in fit.sets.items():
        lines += [f"## {name}", "", "| step | reason |", "| --- | --- |"]
        lines += [f"| {s.name} | {s.reason} |" for s in adapted.stages]
        lines.append("")
    if rows:
        lines += [f"## Evaluation on `{job.eval}` (labels used only here)", "",
                  "| set | accuracy | macro-F1 | ECE |", "| --- | --- | --- | --- |"]
        lines += [f"| {n} | " + " | ".join(fmt.format(r[k]) for k, fmt in FIGURES) + " |"
                  for n, r in rows.items()]
        lines.append("")
    return "\n".join(lines)


def run_unlabeled(job: UnlabeledJob, console: Console) -> UnlabeledFit:
    if job.which not in SETS:
        raise TinyfixError(f"--unlabeled-set must be one of {', '.join(SETS)}")
    core = Core()
    model = _Model(job.model, core)
    data = open_npz(job.unlabeled)
    x, scores = _inputs(data, job.unlabeled)
    lab = LabReference()
    ref_data = None
    if job.reference is not None:
        ref_data = open_npz(job.reference)
        rx, rscores = _inputs(ref_data, job.reference)
        ry = ref_data.get("y")
        lab = LabReference(None if ry is None else np.asarray(ry, dtype=np.int64), rx, rscores)
    fit = fit_unlabeled(model.info, model.raw(x, scores), field_x=x, lab=lab,
                        run_model=model.run, core=core, options=FitOptions())
    quantization = _teacher_sets(job, model, fit, x, _names(model.info.n_classes, ref_data, data),
                                 console)
    if quantization is not None:
        console.print(quant_report.table(quantization))
    chosen = _chosen(fit, job.which)
    rows = None
    eval_data = None
    if job.eval is not None:
        eval_data = open_npz(job.eval)
        ex, escores = _inputs(eval_data, job.eval)
        if "y" not in eval_data:
            raise TinyfixError(f"{job.eval}: evaluation data needs labels `y`")
        rows = fit.evaluate(model.raw(ex, escores), eval_data["y"], ex, model.run,
                            model.run_features)
        console.print(_table(rows, f"label-free sets on {job.eval} (through the C core)"))
    names = _names(model.info.n_classes, ref_data, eval_data, data)
    files = params_io.write_outputs(job.out, fit.sets[chosen].params, names)
    report = {name: [s.as_dict() for s in a.stages] for name, a in fit.sets.items()}
    summary = {"written": chosen, "sets": report, "evaluation": rows}
    text = _report(fit, chosen, rows, job)
    if quantization is not None:
        summary["quantization"] = quantization.as_dict()
        text += "\n".join(quant_report.lines(quantization)) + "\n"
        quant_report.plot(job.out / "quantization.png", quantization)
        files.append(job.out / "quantization.png")
    (job.out / "unlabeled.json").write_text(json.dumps(json_safe(summary), indent=2) + "\n")
    (job.out / "unlabeled.md").write_text(text)
    files += [job.out / "unlabeled.json", job.out / "unlabeled.md"]
    for name, adapted in fit.sets.items():
        console.print(f"[bold]{name}[/bold]: " + "; ".join(s.reason for s in adapted.stages))
    console.print(f"wrote the {chosen!r} set: {', '.join(p.name for p in files)} to {job.out}")
    return fit
