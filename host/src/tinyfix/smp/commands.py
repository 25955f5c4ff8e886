# SPDX-License-Identifier: Apache-2.0
"""`tinyfix info|push|monitor|capture --smp URL`: the lab commands over MCUmgr.

The capture writes the unlabeled capture format (`scores`, `features`, `window_t_ms` and the
model CRC) that `tinyfix fit --unlabeled` and `tinyfix fleet fit` take.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from tinyfix.errors import TinyfixError
from tinyfix.smp.client import CaptureRecord, SmpDevice, open_device

# TfLiteType numbering (INFO "type") to numpy.
DTYPES = {9: np.int8, 3: np.uint8, 7: np.int16, 1: np.float32, 2: np.int32}


def _tensor(t: dict[str, Any] | None) -> str:
    if not t:
        return "-"
    dims = "x".join(str(d) for d in t["dims"])
    dtype = np.dtype(DTYPES.get(t["type"], np.uint8)).name
    return f"[{dims}] {dtype}, scale {t['scale']:.6g}, zero point {t['zp']}"


def info_table(info: dict[str, Any], url: str) -> Table:
    table = Table(title=f"device at {url} (MCUmgr)", show_header=False)
    kinds = {0: "classifier", 1: "binary", 2: "autoencoder"}
    rows = [
        ("model CRC", f"0x{info['model_crc']:08x}"),
        ("kind", f"{kinds.get(info['kind'], info['kind'])}, {info['classes']} classes"),
        ("input", _tensor(info.get("in"))),
        ("output", _tensor(info.get("out"))),
        ("features", _tensor(info.get("feat"))),
        ("parameters", f"0x{info['params_crc']:08x} (format {info['params_format']}, up to "
                       f"{info['max_params']} bytes)"),
        ("capture", f"up to {info['capture_max']} windows" if info["capture_max"] else "no"),
        ("firmware", f"{info['fw']} on {info['board']}"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table


def stats_table(stats: dict[str, Any]) -> Table:
    table = Table(title="STATS", show_header=False)
    for key in ("uptime_ms", "inferences", "params_crc", "drift_flags", "monitor_frames",
                "captured"):
        value = stats[key]
        table.add_row(key, f"0x{value:08x}" if key == "params_crc" else str(value))
    table.add_row("mean confidence", f"{stats['mean_conf'] / 32768:.3f}")
    table.add_row("prior shift (TV)", f"{stats['prior_tv'] / 32768:.3f}")
    table.add_row("input shift (sigmas)", f"{stats['input_z_q8'] / 256:.2f}")
    return table


def info(url: str, console: Console, model_crc: int | None = None) -> dict[str, Any]:
    with open_device(url) as dev:
        found = dev.info()
        console.print(info_table(found, url))
        console.print(stats_table(dev.stats()))
    if model_crc is not None and found["model_crc"] != model_crc:
        raise TinyfixError(f"the device runs model 0x{found['model_crc']:08x}, not the given "
                           f"model (0x{model_crc:08x})")
    return found


def push(url: str, blob: bytes, console: Console, persist: bool = True) -> dict[str, Any]:
    with open_device(url) as dev:
        result = dev.push_params(blob, persist=persist)
    console.print(f"PARAMS over MCUmgr: device now runs 0x{result['crc']:08x}"
                  f"{' (persisted)' if result['persisted'] else ' (not persisted)'}")
    return result


def monitor(url: str, console: Console, interval: float, count: int | None) -> None:
    with open_device(url) as dev:
        polls = 0
        while count is None or polls < count:
            console.print(stats_table(dev.stats()))
            polls += 1
            if count is None or polls < count:
                time.sleep(interval)


def capture_windows(dev: SmpDevice, found: dict[str, Any], windows: int, features: bool,
                    progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """The device's next `windows` windows: {"scores", "window_t_ms"[, "features"]}.

    `found` is the device's INFO (its CAPTURE must exist). One capture holds capture_max
    windows with features: more are taken in several.
    """
    per = max(1, min(windows, found["capture_max"] if features else windows))
    records: list[CaptureRecord] = []
    while len(records) < windows:
        base = len(records)
        records += dev.capture(min(per, windows - base), features=features,
                               progress=None if progress is None else (
                                   lambda done, _n, base=base: progress(base + done)))
    dtype = DTYPES.get(found["out"]["type"], np.int8)
    data: dict[str, np.ndarray] = {
        "scores": np.stack([np.frombuffer(r.raw, dtype=dtype) for r in records]),
        "window_t_ms": np.array([r.t_ms for r in records], dtype=np.int64),
    }
    if features and records[0].features:
        data["features"] = np.stack([np.frombuffer(r.features, dtype=np.int8)
                                     for r in records])
    return data


def capture(url: str, windows: int, out: Path, console: Console,
            features: bool | None = None) -> Path:
    """Record the device's next `windows` windows (raw outputs, features) into `out`."""
    with open_device(url) as dev:
        found = dev.info()
        if found["capture_max"] == 0:
            raise TinyfixError(f"{url}: this build has no CAPTURE (no local input)")
        want_features = features if features is not None else found["features"] > 0
        with Progress(TextColumn("capture"), BarColumn(), MofNCompleteColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("capture", total=windows)
            data = capture_windows(dev, found, windows, want_features,
                                   lambda done: bar.update(task, completed=done))
    data["model_crc"] = np.array(found["model_crc"], dtype=np.uint32)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **data)
    console.print(f"{len(data['scores'])} windows from {url} in {out} (unlabeled: "
                  f"tinyfix fit --unlabeled {out})")
    return out
