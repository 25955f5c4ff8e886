# SPDX-License-Identifier: Apache-2.0
"""The before/after report: a rich table on screen, and report.md, report.json, PNG plots
and predictions.npz in the output folder. Every figure comes from a fit's Evaluation, which
ran the parameters through the C core."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from tinyfix import metrics
from tinyfix.fit import Evaluation, FitResult

FIGURES = [
    ("accuracy", "accuracy", "{:.1%}"),
    ("macro_f1", "macro-F1", "{:.3f}"),
    ("ece", "ECE", "{:.1%}"),
    ("false_accepts_per_hour", "false accepts / h", "{:.1f}"),
    ("false_reject_rate", "false-reject rate", "{:.1%}"),
    ("false_alarms_per_hour", "false alarms / h", "{:.1f}"),
    ("false_alarm_rate", "false-alarm rate (windows)", "{:.1%}"),
    ("detection_rate", "detection rate", "{:.1%}"),
    ("roc_auc", "ROC AUC of the score", "{:.3f}"),
]


@dataclass(frozen=True)
class CurvePoint:
    """One operating point of a streaming detector (for the FAR/FRR plot)."""

    false_accepts_per_hour: float
    false_reject_rate: float
    chosen: bool = False


def _fmt(value: float | None, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return pattern.format(value)


def summary_table(evaluation: Evaluation, title: str = "before / after (evaluation set)") -> Table:
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    for key, label, pattern in FIGURES:
        if key in evaluation.before or key in evaluation.after:
            table.add_row(label, _fmt(evaluation.before.get(key), pattern),
                          _fmt(evaluation.after.get(key), pattern))
    return table


def stages_table(result: FitResult) -> Table:
    table = Table(title="stages (decided on a held-out split of the calibration data)")
    table.add_column("stage")
    table.add_column("kept")
    table.add_column("why")
    for stage in result.stages:
        table.add_row(stage.name, "yes" if stage.kept else "no", stage.reason)
    return table


def print_summary(console: Console, result: FitResult, evaluation: Evaluation) -> None:
    console.print(stages_table(result))
    console.print(summary_table(evaluation))


def _plot_reliability(path: Path, before: metrics.ReliabilityDiagram,
                      after: metrics.ReliabilityDiagram) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
    for ax, diagram, name in ((axes[0], before, "before"), (axes[1], after, "after")):
        centers = (diagram.edges[:-1] + diagram.edges[1:]) / 2
        width = diagram.edges[1] - diagram.edges[0]
        acc = np.nan_to_num(diagram.accuracy)
        ax.bar(centers, acc, width=width * 0.9, color="#4c72b0", label="accuracy")
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        ax.set_title(f"{name}: ECE {diagram.ece:.1%}")
        ax.set_xlabel("top-class confidence")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("accuracy in bin")
    axes[0].legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_confusion(path: Path, before: np.ndarray, after: np.ndarray,
                    class_names: Sequence[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, cm, name in ((axes[0], before, "before"), (axes[1], after, "after")):
        rows = cm.sum(axis=1, keepdims=True)
        share = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for (i, j), count in np.ndenumerate(cm):
            ax.text(j, i, str(count), ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black", fontsize=8)
        cols = list(class_names) + (["none"] if cm.shape[1] > len(class_names) else [])
        ax.set_xticks(range(cm.shape[1]), cols, rotation=45, ha="right")
        ax.set_yticks(range(cm.shape[0]), list(class_names))
        ax.set_xlabel("decision")
        ax.set_ylabel("true class")
        ax.set_title(name)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_curve(path: Path, curve: Sequence[CurvePoint], before: dict[str, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    far = [p.false_accepts_per_hour for p in curve]
    frr = [p.false_reject_rate for p in curve]
    ax.scatter(far, frr, s=8, color="#999999", label="voting settings tried")
    for p in curve:
        if p.chosen:
            ax.scatter([p.false_accepts_per_hour], [p.false_reject_rate], s=60, color="#c44e52",
                       label="chosen")
    if "false_accepts_per_hour" in before:
        ax.scatter([before["false_accepts_per_hour"]], [before["false_reject_rate"]], s=60,
                   marker="x", color="black", label="before")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("false accepts per hour")
    ax.set_ylabel("false-reject rate")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_histogram(path: Path, hist: metrics.ScoreHistogram) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    centers = (hist.edges[:-1] + hist.edges[1:]) / 2
    width = hist.edges[1] - hist.edges[0]
    ax.bar(centers, hist.normal, width=width * 0.9, alpha=0.6, color="#4c72b0",
           label="normal windows")
    ax.bar(centers, hist.anomalous, width=width * 0.9, alpha=0.6, color="#c44e52",
           label="anomalous windows")
    if np.isfinite(hist.threshold):
        ax.axvline(hist.threshold, color="black", ls="--", lw=1,
                   label="fixed threshold (before)")
    ax.set_xlabel("reconstruction error (MSE in squared input steps)")
    ax.set_ylabel("windows")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _clean(value: Any) -> Any:
    """JSON has no NaN: figures that could not be computed become null."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_report(out: Path, result: FitResult, evaluation: Evaluation, *,
                 class_names: Sequence[str], context: dict[str, Any],
                 curve: Sequence[CurvePoint] = ()) -> list[Path]:
    """Write report.md, report.json, plots and predictions.npz; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    plots: list[tuple[str, str]] = []
    if evaluation.reliability_before is not None and evaluation.reliability_after is not None:
        path = out / "reliability.png"
        _plot_reliability(path, evaluation.reliability_before, evaluation.reliability_after)
        plots.append(("Reliability diagram", path.name))
    if evaluation.confusion_before is not None and evaluation.confusion_after is not None:
        path = out / "confusion.png"
        _plot_confusion(path, evaluation.confusion_before, evaluation.confusion_after,
                        class_names)
        plots.append(("Confusion matrix", path.name))
    if evaluation.histogram is not None:
        path = out / "scores.png"
        _plot_histogram(path, evaluation.histogram)
        plots.append(("Anomaly scores", path.name))
    if curve:
        path = out / "far_frr.png"
        _plot_curve(path, curve, evaluation.before)
        plots.append(("False accepts vs false rejects", path.name))
    written += [out / name for _, name in plots]

    report = {
        "task": result.task,
        "before": evaluation.before,
        "after": evaluation.after,
        "stages_kept": result.stages_kept,
        "stages": [s.as_dict() for s in result.stages],
        "params_crc": f"0x{result.params.crc:08x}",
        "model_crc": f"0x{result.model.model_crc:08x}",
        "n_fit": result.n_fit,
        "n_heldout": result.n_heldout,
        "clipped": [str(c) for c in result.clipped],
        **context,
    }
    (out / "report.json").write_text(json.dumps(_clean(report), indent=2) + "\n")
    written.append(out / "report.json")

    np.savez(out / "predictions.npz", **evaluation.predictions)
    written.append(out / "predictions.npz")

    lines = [f"# TinyFix report: {result.task}", ""]
    lines += [f"- {k}: {v}" for k, v in context.items()]
    crcs = f"0x{result.params.crc:08x} (model 0x{result.model.model_crc:08x})"
    lines += [f"- parameter set CRC: {crcs}",
              f"- calibration samples: {result.n_fit} fitted, {result.n_heldout} held out", ""]
    lines += ["## Before / after (evaluation set, through the C core)", "",
              "| figure | before | after |", "| --- | --- | --- |"]
    for key, label, pattern in FIGURES:
        if key in evaluation.before or key in evaluation.after:
            lines.append(f"| {label} | {_fmt(evaluation.before.get(key), pattern)} | "
                         f"{_fmt(evaluation.after.get(key), pattern)} |")
    lines += ["", "## Stages", "", "| stage | kept | why |", "| --- | --- | --- |"]
    lines += [f"| {s.name} | {'yes' if s.kept else 'no'} | {s.reason} |" for s in result.stages]
    if result.clipped:
        lines += ["", "Parameters clipped to the device's ranges: "
                  + "; ".join(str(c) for c in result.clipped)]
    for title, name in plots:
        lines += ["", f"## {title}", "", f"![{title}]({name})"]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    written.append(out / "report.md")
    return written
