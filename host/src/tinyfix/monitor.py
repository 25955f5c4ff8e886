# SPDX-License-Identifier: Apache-2.0
"""`tinyfix monitor`: the device's drift monitor, live. Polls STATS and shows the running
figures against the references stored with the active parameter set; optionally drives the
device with generated windows (lab or drifted field sensor) so drift can be watched happen."""

from __future__ import annotations

import time
from collections.abc import Iterator

from rich.console import Console
from rich.live import Live
from rich.table import Table

from tinyfix.capture import quantize_inputs
from tinyfix.core import Core, Params
from tinyfix.device import Device
from tinyfix.wire.messages import StatsResponse

FLAG_NAMES = {0x02: "confidence dropped", 0x04: "class mix moved", 0x08: "input moved"}


def _windows(device: Device, profile: str, seed: int) -> Iterator[bytes]:
    """Endless quantized demo windows from the lab or a drifted field sensor."""
    from tinyfix.demo_data import gesture_data as gd

    core = Core()
    while True:
        data = gd.generate_classification(profile, n=64, seed=seed)
        seed += 1
        for x in quantize_inputs(core, device.model, data["x"]):
            yield x.tobytes()


def _table(stats: StatsResponse, params: Params | None) -> Table:
    table = Table(title=f"drift monitor, parameter set 0x{stats.params_crc:08x}")
    table.add_column("figure")
    table.add_column("now", justify="right")
    table.add_column("reference", justify="right")
    m = params.c.monitor if params is not None and params.crc == stats.params_crc else None
    table.add_row("frames seen", str(stats.monitor_frames),
                  f"advice after {m.min_frames}" if m is not None else "")
    table.add_row("mean top-class confidence", f"{stats.mean_conf / 32768:.1%}",
                  f"{m.ref_conf / 32768:.1%} - {m.conf_drop / 32768:.1%}" if m is not None
                  else "")
    table.add_row("class mix distance", f"{stats.prior_tv / 32768:.1%}",
                  f"< {m.prior_tv / 32768:.1%}" if m is not None else "")
    table.add_row("input mean shift", f"{stats.input_z_q8 / 256:.1f} sigma",
                  f"< {m.input_z_q8 / 256:.1f} sigma" if m is not None and m.input_z_q8 else "")
    moved = [name for bit, name in FLAG_NAMES.items() if stats.drift_flags & bit]
    verdict = ("[bold red]recalibration advised: " + ", ".join(moved)
               if stats.drift_flags & 0x01 else "[green]no drift")
    table.add_row("verdict", verdict, "")
    return table


def watch(device: Device, console: Console, *, params: Params | None = None,
          drive: str | None = None, interval: float = 0.5, count: int | None = None,
          per_poll: int = 32, seed: int = 0) -> StatsResponse:
    """Poll until Ctrl-C (or `count` polls); returns the last STATS."""
    if params is not None:
        device.link.set_params(params.encode(), persist=False)
    windows = _windows(device, drive, seed) if drive else None
    stats = device.link.device_stats()
    polls = 0
    with Live(_table(stats, params), console=console, refresh_per_second=4) as live:
        while count is None or polls < count:
            started = time.monotonic()
            if windows is not None:
                for _ in range(per_poll):
                    device.link.infer(next(windows))
            stats = device.link.device_stats()
            live.update(_table(stats, params))
            polls += 1
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    return stats

