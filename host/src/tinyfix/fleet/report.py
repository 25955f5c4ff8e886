# SPDX-License-Identifier: Apache-2.0
"""The fleet report: fleet.json (every device's result and the fleet's figures), report.md
with a row per device, drift.png and gain.png (fleet-wide histograms), and rich tables on
screen (the fleet's figures, then the devices that need recalibration or failed).

The gain is what a device's fitted set adds to the model as it is: accuracy after minus
before on its held-out evaluation windows (labelled devices); drift is the drift monitor's
figures of each capture against the fleet's reference (fleet.drift).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from tinyfix.fleet import urls
from tinyfix.fleet.device_fit import OK
from tinyfix.fleet.drift import FleetReference
from tinyfix.fleet.recalibration import RecalibrationRule
from tinyfix.report import json_safe

Result = dict[str, Any]
SCREEN_ROWS = 20


def _pct(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.{digits}f}%"


def _points(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}"


def _accuracy(result: Result, when: str) -> float | None:
    figures = result.get(when)
    return None if not figures else figures.get("accuracy")


def gain(result: Result) -> float | None:
    before, after = _accuracy(result, "before"), _accuracy(result, "after")
    return None if before is None or after is None else after - before


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def summarize(results: Sequence[Result], reference: FleetReference | None,
              rule: RecalibrationRule, seconds: float) -> dict[str, Any]:
    ok = [r for r in results if r["status"] == OK]
    labelled = [r for r in ok if r.get("labelled")]
    gains = [gain(r) for r in labelled]
    return {
        "devices": len(results),
        "fitted": len(ok),
        "labelled": len(labelled),
        "unlabeled": len(ok) - len(labelled),
        "invalid": sum(r["status"] == "invalid" for r in results),
        "failed": sum(r["status"] == "failed" for r in results),
        "recalibrate": sorted(r["device_id"] for r in ok if r.get("recalibrate")),
        "ready_to_push": sum(bool(r.get("push")) for r in ok),
        "accuracy_before": _mean([_accuracy(r, "before") for r in labelled]),
        "accuracy_after": _mean([_accuracy(r, "after") for r in labelled]),
        "mean_gain": _mean(gains),
        "gain_not_negative": sum(g is not None and g >= 0 for g in gains),
        "reference": None if reference is None else reference.as_dict(),
        "rule": rule.as_dict(),
        "rule_text": rule.describe(),
        "seconds": seconds,
        "devices_per_s": len(results) / seconds if seconds > 0 else None,
    }


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _plots(out: str, results: Sequence[Result], rule: RecalibrationRule) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in results if r["status"] == OK and r.get("drift")]
    written = []
    drifts = [r["drift"] for r in ok if r["drift"].get("prior_tv") is not None]
    if drifts:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        panels = ((axes[0], "prior_tv", rule.max_prior_tv, "class-mix distance (total variation)"),
                  (axes[1], "conf_drop", rule.max_conf_drop,
                   "mean top-class confidence drop"))
        for ax, key, limit, label in panels:
            values = np.array([d[key] for d in drifts])
            ax.hist(values * 100, bins=30, color="#4c72b0")
            ax.axvline(limit * 100, color="#c44e52", ls="--", lw=1,
                       label=f"recalibrate above {100 * limit:.0f}")
            ax.set_xlabel(f"{label}, points")
            ax.set_ylabel("devices")
            ax.legend(fontsize=8)
        fig.suptitle(f"Drift against the fleet reference ({len(drifts)} devices)")
        fig.tight_layout()
        urls.write_bytes(urls.join(out, "drift.png"), _png(fig))
        plt.close(fig)
        written.append("drift.png")
    gains = [g for g in (gain(r) for r in ok if r.get("labelled")) if g is not None]
    if gains:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.hist(np.array(gains) * 100, bins=30, color="#55a868")
        ax.axvline(0, color="black", lw=1)
        ax.set_xlabel("accuracy gain of the fitted set (after - before), points")
        ax.set_ylabel("labelled devices")
        ax.set_title(f"Gain on held-out windows ({len(gains)} labelled devices)")
        fig.tight_layout()
        urls.write_bytes(urls.join(out, "gain.png"), _png(fig))
        plt.close(fig)
        written.append("gain.png")
    return written


def _row(r: Result) -> list[str]:
    d = r.get("drift") or {}
    if r["status"] != OK:
        return [r["device_id"], "labelled" if r.get("labelled") else "unlabeled",
                r["status"], "", "", "", "", "", "", "", (r.get("error") or "").split("\n")[0]]
    return [r["device_id"], "labelled" if r.get("labelled") else "unlabeled", r["status"],
            ", ".join(r.get("stages_kept") or []) or "none",
            _pct(_accuracy(r, "before")), _pct(_accuracy(r, "after")),
            _pct(d.get("conf_drop")), _pct(d.get("prior_tv")),
            "yes" if r.get("recalibrate") else "no",
            "yes" if r.get("push") else "held back", "; ".join(r.get("reasons") or [])]


COLUMNS = ("device", "kind", "status", "stages kept", "before", "after", "confidence drop",
           "class-mix distance", "recalibrate", "push", "why")


def markdown(summary: dict[str, Any], results: Sequence[Result], plots: Sequence[str],
             context: dict[str, Any]) -> str:
    lines = ["# TinyFix fleet report", ""]
    lines += [f"- {k}: {v}" for k, v in context.items()]
    ref = summary["reference"]
    lines += [f"- reference: {ref['samples']} labelled lab windows, the model as it is "
              f"{_pct(ref['accuracy'])} accurate" if ref else "- reference: none (no drift "
              "figures, no accuracy loss)", ""]
    lines += ["## Fleet", "", "| figure | value |", "| --- | --- |"]
    lines += [f"| devices | {summary['devices']} ({summary['labelled']} labelled, "
              f"{summary['unlabeled']} unlabeled fitted; {summary['invalid']} invalid, "
              f"{summary['failed']} failed) |",
              f"| accuracy before / after (labelled, held-out) | "
              f"{_pct(summary['accuracy_before'])} / {_pct(summary['accuracy_after'])} |",
              f"| mean gain | {_points(summary['mean_gain'])} points |",
              f"| need recalibration | {len(summary['recalibrate'])} |",
              f"| sets ready to push | {summary['ready_to_push']} (label-free sets are held "
              "back: `fleet push --label-free` sends them) |",
              f"| run time | {summary['seconds']:.1f} s |", ""]
    lines += ["## Recalibration rule", "", f"A device needs recalibration when: "
              f"{summary['rule_text']} (docs/fleet.md).", ""]
    for name in plots:
        title = "Drift" if name.startswith("drift") else "Gain"
        lines += [f"## {title}", "", f"![{title}]({name})", ""]
    lines += ["## Devices", "", "| " + " | ".join(COLUMNS) + " |",
              "| " + " | ".join("---" for _ in COLUMNS) + " |"]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in _row(r)) + " |" for r in results]
    return "\n".join(lines) + "\n"


def write_report(out: str, results: Sequence[Result], summary: dict[str, Any],
                 rule: RecalibrationRule, context: dict[str, Any]) -> list[str]:
    """fleet.json, report.md and the plots under `out`; returns the names written."""
    plots = _plots(out, results, rule)
    fleet = {"summary": summary, "context": context, "devices": list(results)}
    urls.write_text(urls.join(out, "fleet.json"), json.dumps(json_safe(fleet), indent=1) + "\n")
    urls.write_text(urls.join(out, "report.md"), markdown(summary, results, plots, context))
    return ["fleet.json", "report.md", *plots]


def print_report(console: Console, summary: dict[str, Any], results: Sequence[Result]) -> None:
    table = Table(title="fleet")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("devices", str(summary["devices"]))
    table.add_row("fitted (labelled / unlabeled)",
                  f"{summary['fitted']} ({summary['labelled']} / {summary['unlabeled']})")
    table.add_row("invalid / failed", f"{summary['invalid']} / {summary['failed']}")
    table.add_row("accuracy before -> after (labelled)",
                  f"{_pct(summary['accuracy_before'])} -> {_pct(summary['accuracy_after'])}")
    table.add_row("need recalibration", str(len(summary["recalibrate"])))
    table.add_row("sets ready to push", str(summary["ready_to_push"]))
    if summary["devices_per_s"] is not None:
        table.add_row("devices / s", f"{summary['devices_per_s']:.2f}")
    console.print(table)
    shown = [r for r in results if r["status"] != OK or r.get("recalibrate")]
    if not shown:
        return
    table = Table(title="devices that need recalibration or failed")
    for name in COLUMNS:
        table.add_column(name, overflow="fold")
    for r in shown[:SCREEN_ROWS]:
        table.add_row(*_row(r))
    console.print(table)
    if len(shown) > SCREEN_ROWS:
        console.print(f"... and {len(shown) - SCREEN_ROWS} more in report.md")
