# SPDX-License-Identifier: Apache-2.0
"""The before/after report: a rich table on screen, and report.md, report.json, PNG plots
and predictions.npz in the output folder. Every figure comes from a fit's Evaluation, which
ran the parameters through the C core."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from tinyfix import metrics, quant_report
from tinyfix.fit import Evaluation, FitResult
from tinyfix.fit.det_curve import DetCurve
from tinyfix.fit.stream_select import OperatingPoint

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
    if result.quantization is not None:
        console.print(quant_report.table(result.quantization))
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


DET_STYLES = {"raw top-1": ("#999999", "o"), "RecognizeCommands defaults": ("#4c72b0", "s")}


def _plot_det(path: Path, det: dict[str, Sequence[DetCurve]],
              point: OperatingPoint | None) -> None:
    """One panel per stream: false-reject rate against false accepts per hour (log axis),
    each detector's own point marked, the fit's prediction with its interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(det), figsize=(6 * len(det), 4.2), squeeze=False)
    for ax, (where, curves) in zip(axes[0], det.items(), strict=True):
        for curve in curves:
            color, marker = DET_STYLES.get(curve.name, ("#c44e52", "^"))
            fa = np.maximum(np.asarray(curve.fa_per_hour), 0.1)  # 0 FA/h on a log axis
            ax.scatter(fa, curve.false_reject_rate, color=color, s=6, alpha=0.4)
            front_fa, front_frr = curve.front()
            ax.step(np.maximum(front_fa, 0.1), front_frr, where="post", color=color, lw=1.2,
                    label=curve.name)
            if curve.marked is not None:
                ax.scatter([fa[curve.marked]], [curve.false_reject_rate[curve.marked]],
                           color=color, marker=marker, s=50, zorder=3)
        if point is not None and where == "calibration":
            x = max(point.per_hour, 0.1)
            ax.errorbar([x], [point.false_reject_rate],
                        xerr=[[x - max(point.low, 0.1)], [max(point.high, 0.1) - x]],
                        color="black", capsize=4, fmt="none",
                        label=f"chosen, {100 * point.confidence:.0f}% interval")
        if point is not None:
            ax.axvline(point.target_fa_per_hour, color="black", ls=":", lw=1, label="target")
        ax.set_xscale("log")
        ax.set_xlabel("false accepts per hour (0 drawn at 0.1)")
        ax.set_ylabel("false-reject rate")
        ax.set_title(f"DET, {where} stream")
        ax.legend(fontsize=8)
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


def json_safe(value: Any) -> Any:
    """JSON has no NaN: figures that could not be computed become null."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _det_lines(det: dict[str, Sequence[DetCurve]]) -> list[str]:
    """Each detector's own point and its best false-reject rate at a few FA/h levels."""
    levels = (2.0, 10.0, 36.0)
    lines = ["", "## DET curves", "", "| stream | detector | its point: FA/h, false rejects | "
             + " | ".join(f"false rejects at <= {x:g} FA/h" for x in levels) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in levels) + " |"]
    for where, curves in det.items():
        for c in curves:
            own = ("n/a" if c.marked is None else
                   f"{c.fa_per_hour[c.marked]:.1f}, {100 * c.false_reject_rate[c.marked]:.1f}%")
            lines.append(f"| {where} | {c.name} | {own} | "
                         + " | ".join(f"{100 * c.frr_at(x):.1f}%" for x in levels) + " |")
    return lines


def write_report(out: Path, result: FitResult, evaluation: Evaluation, *,
                 class_names: Sequence[str], context: dict[str, Any],
                 det: dict[str, Sequence[DetCurve]] | None = None) -> list[Path]:
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
    report_of_stream = result.stream_report
    point = None if report_of_stream is None else report_of_stream.point
    if det:
        path = out / "det.png"
        _plot_det(path, det, point)
        plots.append(("DET curves (false rejects against false accepts per hour)", path.name))
    if result.quantization is not None:
        path = out / "quantization.png"
        quant_report.plot(path, result.quantization)
        plots.append(("Quantization error against the float model", path.name))
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
    if point is not None:
        report["operating_point"] = point.as_dict()
    if result.quantization is not None:
        report["quantization"] = result.quantization.as_dict()
    if det:
        report["det"] = {where: {c.name: c.as_dict() for c in curves}
                         for where, curves in det.items()}
    (out / "report.json").write_text(json.dumps(json_safe(report), indent=2) + "\n")
    written.append(out / "report.json")

    np.savez(out / "predictions.npz", **evaluation.predictions)
    written.append(out / "predictions.npz")

    lines = [f"# TinyFix report: {result.task}", ""]
    lines += [f"- {k}: {v}" for k, v in context.items()]
    crcs = f"0x{result.params.crc:08x} (model 0x{result.model.model_crc:08x})"
    held = (f"{result.n_fit} frames, every time block held out once" if point is not None
            else f"{result.n_fit} fitted, {result.n_heldout} held out")
    lines += [f"- parameter set CRC: {crcs}", f"- calibration samples: {held}", ""]
    lines += ["## Before / after (evaluation set, through the C core)", "",
              "| figure | before | after |", "| --- | --- | --- |"]
    for key, label, pattern in FIGURES:
        if key in evaluation.before or key in evaluation.after:
            lines.append(f"| {label} | {_fmt(evaluation.before.get(key), pattern)} | "
                         f"{_fmt(evaluation.after.get(key), pattern)} |")
    if point is not None:
        lines += ["", "## Operating point (cross-validated on the calibration stream)", "",
                  point.describe()]
    if det:
        lines += _det_lines(det)
    if result.quantization is not None:
        lines += quant_report.lines(result.quantization)
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
