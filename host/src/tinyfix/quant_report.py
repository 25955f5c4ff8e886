# SPDX-License-Identifier: Apache-2.0
"""The report's "where quantization costs you" part: the int8 model against its float model
(fit.quant_error), on screen, in report.md and as quantization.png."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from tinyfix.fit.quant_error import QuantizationError

WORST_FEATURES = 8


@dataclass(frozen=True)
class QuantizationReport:
    """The measure on the calibration inputs, and the agreement with the float model on the
    evaluation set before and after the fit ({"kl", "agreement"} each)."""

    reference: str  # the float model's file name
    measure: QuantizationError
    inputs: str = "calibration"  # which inputs were measured
    evaluation: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"reference_model": self.reference, **self.measure.as_dict(),
                "evaluation": self.evaluation}


def _pct(v: float | None) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{100 * v:.1f}%"


def table(report: QuantizationReport) -> Table:
    q = report.measure
    t = Table(title=f"where quantization costs you: int8 against {report.reference} on "
                    f"{q.n} {report.inputs} inputs ({q.domain}, float minus int8)")
    t.add_column("class")
    t.add_column("float picks", justify="right")
    t.add_column("int8 agrees", justify="right")
    t.add_column("mean error", justify="right")
    t.add_column("spread", justify="right")
    for c in q.classes:
        t.add_row(c.name, str(c.n), _pct(c.agreement), f"{c.mean:+.3f}", f"{c.sd:.3f}")
    t.add_row("all", str(q.n), _pct(q.agreement), "", f"KL {q.kl:.4f}")
    return t


def lines(report: QuantizationReport) -> list[str]:
    q = report.measure
    out = ["", "## Where quantization costs you", "",
           f"The int8 model against the float model `{report.reference}` on the {q.n} "
           f"{report.inputs} inputs: top-1 agreement {_pct(q.agreement)}, KL divergence "
           f"{q.kl:.4f} nats."]
    if q.float_accuracy is not None:
        out[-1] += (f" Against the labels the float model is right on {_pct(q.float_accuracy)}, "
                    f"the int8 model on {_pct(q.int8_accuracy)}.")
    out += ["", f"| class | float picks | int8 agrees | mean error ({q.domain}) | spread |",
            "| --- | --- | --- | --- | --- |"]
    out += [f"| {c.name} | {c.n} | {_pct(c.agreement)} | {c.mean:+.3f} | {c.sd:.3f} |"
            for c in q.classes]
    if q.features is not None:
        f = q.features
        worst = ", ".join(f"{i} ({f.rms[i]:.3g} of {f.spread[i]:.3g})"
                          for i in f.worst[:WORST_FEATURES])
        out += ["", f"Feature vector (the last layer's input, {f.rms.size} features): "
                    f"relative error {_pct(f.relative)}, mean cosine similarity "
                    f"{f.cosine:.4f}. Worst features (RMS error of spread): {worst}."]
    else:
        out += ["", f"Feature vector not compared: {q.feature_note}."]
    if report.evaluation:
        out += ["", "Agreement with the float model on the evaluation set, through the C "
                    "core. The labelled stages after the quantization stage fit confidence to "
                    "the labels, so they may move the probabilities away from the float "
                    "model's where it is itself over- or under-confident.", "",
                "| set | top-1 agreement | KL |", "| --- | --- | --- |"]
        out += [f"| {name} | {_pct(s['agreement'])} | {s['kl']:.4f} |"
                for name, s in report.evaluation.items()]
    return out


def plot(path: Path, report: QuantizationReport) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    q = report.measure
    panels = 3 if q.features is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4))
    names = [c.name for c in q.classes]
    pos = np.arange(len(names))
    axes[0].errorbar(pos, [c.mean for c in q.classes], yerr=[c.sd for c in q.classes],
                     fmt="o", color="#4c72b0", capsize=3)
    axes[0].axhline(0, color="black", lw=0.8)
    axes[0].set_xticks(pos, names, rotation=45, ha="right")
    axes[0].set_ylabel(f"float minus int8 ({q.domain})")
    axes[0].set_title("class scores: mean and spread of the error")
    axes[1].bar(pos, [0 if math.isnan(c.agreement) else c.agreement for c in q.classes],
                color="#55a868")
    axes[1].set_xticks(pos, names, rotation=45, ha="right")
    axes[1].set_ylim(0, 1.05)
    axes[1].set_ylabel("int8 picks the float model's class")
    axes[1].set_title(f"top-1 agreement per class (all: {100 * q.agreement:.1f}%)")
    if q.features is not None:
        f = q.features
        ratio = f.rms / np.maximum(f.spread, 1e-12)
        axes[2].bar(np.arange(ratio.size), ratio, color="#c44e52")
        axes[2].set_xlabel("feature")
        axes[2].set_ylabel("RMS error / feature spread")
        axes[2].set_title(f"last layer's input: relative error {100 * f.relative:.1f}%")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
