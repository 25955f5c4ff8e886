# SPDX-License-Identifier: Apache-2.0
"""The guided capture's screen: what to do next, every take with the model's own top class
and a sparkline per sensor axis (a bad take shows), and the key help. Plain lines, so the
session scrolls like a log and reads the same in a terminal, a pipe or a CI log."""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.markup import escape

from tinyfix.guided_capture import Take

BARS = "▁▂▃▄▅▆▇█"
POINTS = 12
MAX_SPARK_CHANNELS = 8
KEY_HELP = "Enter keep · d drop · u take back the last · s skip the class · q quit"
STREAM_HELP = "1-9 start an event of that class · Space end it · q stop"


def sparkline(series: NDArray, points: int = POINTS) -> str:
    """`series` resampled to `points` bars from its own minimum to its maximum."""
    v = np.asarray(series, dtype=np.float64).ravel()
    if v.size == 0:
        return ""
    edges = np.linspace(0, v.size, min(points, v.size) + 1).astype(int)
    means = np.array([v[a:b].mean() for a, b in itertools.pairwise(edges)])
    lo, hi = float(means.min()), float(means.max())
    if hi - lo < 1e-12:
        return BARS[0] * means.size
    idx = np.round((means - lo) / (hi - lo) * (len(BARS) - 1)).astype(int)
    return "".join(BARS[i] for i in idx)


def sparklines(x: NDArray) -> str:
    """One sparkline per channel (the last axis) for a few channels, else one overall."""
    arr = np.asarray(x)
    if arr.ndim >= 2 and arr.shape[-1] <= MAX_SPARK_CHANNELS:
        chans = arr.reshape(-1, arr.shape[-1])
        axes = "xyz" if chans.shape[1] == 3 else [str(i) for i in range(chans.shape[1])]
        return "  ".join(f"{a} {sparkline(chans[:, i])}" for i, a in enumerate(axes))
    return sparkline(arr)


class CaptureScreen:
    def __init__(self, console: Console, names: tuple[str, ...]) -> None:
        self.console = console
        self.names = names

    def _name(self, c: int) -> str:
        return self.names[c] if 0 <= c < len(self.names) else str(c)

    def prompt(self, name: str, have: int, want: int) -> None:
        self.console.rule(f"perform [bold]{escape(name)}[/bold]: {have}/{want} windows")
        self.console.print(f"[dim]{KEY_HELP}[/dim]")

    def take(self, take: Take, label: int | None, have: int, want: int) -> None:
        top = self._name(take.top_class)
        if label is None:
            verdict, head = "", f"window {have + 1}/{want}"
        else:
            ok = take.top_class == label
            verdict = " [green]✓[/green]" if ok else " [red]✗[/red]"
            head = f"{escape(self._name(label))} {have + 1}/{want}"
        self.console.print(f"{head}  model: [bold]{escape(top)}[/bold] "
                           f"{100 * take.confidence:3.0f}%{verdict}  {sparklines(take.x)}")

    def said(self, text: str) -> None:
        self.console.print(f"[dim]{escape(text)}[/dim]")

    def tick(self, take: Take, t0_ms: int, seconds: float, active: int | None) -> None:
        event = f"[yellow]event {escape(self._name(active))}[/yellow]" if active is not None \
            else "[dim]no event[/dim]"
        self.console.print(f"{(take.t_ms - t0_ms) / 1000:6.1f}/{seconds:.0f} s  {event}  "
                           f"model: {escape(self._name(take.top_class))} "
                           f"{100 * take.confidence:3.0f}%  {sparklines(take.x)}")
