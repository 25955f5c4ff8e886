# SPDX-License-Identifier: Apache-2.0
"""Benchmark tables: rows of figures, targets met or missed, as markdown and as JSON.

A scenario returns one Table. A row says which model ran on which data with which
decision rule, its figures, and how they were computed (`via`); a TinyFix row also carries
the CRC of the sealed parameter set the C core ran, so a reader (and the tests) can tie the
figure to that set.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    fmt: str  # "percent", "f1", "nats" (4 decimals), "rate" (per hour), "count"

    def render(self, value: float | None) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "n/a"
        if self.fmt == "percent":
            return f"{100 * value:.1f}%"
        if self.fmt == "f1":
            return f"{value:.3f}"
        if self.fmt == "nats":
            return f"{value:.4f}"
        if self.fmt == "rate":
            return "inf" if math.isinf(value) else f"{value:.1f}"
        return f"{round(value)}"


@dataclass
class Row:
    """One line of a table. `role` marks the rows targets compare: "before" (the int8 model
    on field data, no correction), "tinyfix", "lab", "upper_bound"; empty for the rest."""

    name: str
    model: str
    data: str
    method: str
    figures: dict[str, float]
    via: str
    role: str = ""
    tinyfix: bool = False
    params_crc: int | None = None
    stages: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "data": self.data,
                "method": self.method, "figures": _clean(self.figures), "via": self.via,
                "role": self.role, "tinyfix": self.tinyfix,
                "params_crc": None if self.params_crc is None else f"0x{self.params_crc:08x}",
                "stages": list(self.stages)}


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    met: bool
    detail: str

    def line(self) -> str:
        return f"target {'met' if self.met else 'missed'}: {self.name} ({self.goal}): {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "goal": self.goal, "met": self.met, "detail": self.detail}


@dataclass
class Table:
    key: str
    title: str
    setup: str
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def row(self, role: str) -> Row:
        """The first row with this role."""
        for r in self.rows:
            if r.role == role:
                return r
        raise KeyError(f"{self.key}: no row with role {role!r}")

    def markdown(self) -> str:
        head = ["row", "model", "data", "decision", *(c.label for c in self.columns),
                "computed by"]
        lines = [f"### {self.title}", "", self.setup, "",
                 "| " + " | ".join(head) + " |",
                 "|" + "|".join(" --- " for _ in head) + "|"]
        for r in self.rows:
            cells = [f"**{r.name}**" if r.tinyfix else r.name, r.model, r.data, r.method,
                     *(c.render(r.figures.get(c.key)) for c in self.columns), r.via]
            lines.append("| " + " | ".join(cells) + " |")
        if self.targets:
            lines += ["", *(f"- {t.line()}" for t in self.targets)]
        if self.notes:
            lines += ["", *(f"- {n}" for n in self.notes)]
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "setup": self.setup,
                "columns": [{"key": c.key, "label": c.label, "format": c.fmt}
                            for c in self.columns],
                "rows": [r.as_dict() for r in self.rows],
                "targets": [t.as_dict() for t in self.targets],
                "notes": list(self.notes), "seconds": round(self.seconds, 1)}


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null and the string "inf"."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value


def ratio(before: float, after: float) -> float:
    """before / after, inf when after is 0 and before is not."""
    if after == 0:
        return math.inf if before > 0 else 1.0
    return before / after


def write_json(path: Path, header: dict[str, Any], tables: list[Table],
               cost: dict[str, Any] | None) -> None:
    doc = {"format": FORMAT_VERSION, **header, "scenarios": [t.as_dict() for t in tables],
           "cost": _clean(cost) if cost is not None else None}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")


def write_markdown(path: Path, header: dict[str, Any], body: str) -> None:
    lines = [
        "<!-- SPDX-License-Identifier: Apache-2.0 -->",
        "# TinyFix accuracy-repair benchmark",
        "",
        f"Produced by `{header['command']}` on {header['date']} ({header['mode']} size, "
        f"{header['host']}); the whole run took {header['seconds']:.0f} s. Rerun the same "
        "command to reproduce the tables: the data come from fixed seeds. The cost figures "
        "depend on the compilers and the tflite-micro build; `--quick` is the reduced run CI "
        "makes (`scripts/test`).",
        "",
        body,
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n")
