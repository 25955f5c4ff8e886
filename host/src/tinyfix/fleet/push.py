# SPDX-License-Identifier: Apache-2.0
"""`tinyfix fleet push`: send every fitted device its parameter set over SMP (MCUmgr),
resumable (fleet.push_log): a device already logged as running the set is skipped, a
refused set is logged with the device's code and not sent again unless asked. Sets the fit
marked not for push (label-free prior sets, fleet.device_fit) are held back unless asked.

For each device: INFO first (a device of another model is not sent anything; one already
running the set is logged as such), then the set, and the CRC the device reports back must
be the set's. The SMP client is injected (SmpApi): by default tinyfix.smp.client, tests
pass a fake.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from tinyfix import params_io
from tinyfix.core import Core
from tinyfix.errors import TinyfixError
from tinyfix.fleet import urls
from tinyfix.fleet.device_fit import OK
from tinyfix.fleet.manifest import ManifestError, parse_crc
from tinyfix.fleet.push_log import PushEntry, PushLog


class PushIncomplete(TinyfixError):
    """Some devices were not updated; the log says which and why."""

    exit_code = 3


@dataclass(frozen=True)
class SmpApi:
    """What fleet push needs of an SMP client: `open_device(url)` is a context manager
    yielding a device with .info() -> dict (model_crc, params_crc, ...) and
    .push_params(blob) -> dict (crc, persisted); a refusal raises `group_error` (with .rc
    and .text), an unreachable device `transport_error`."""

    open_device: Callable[[str], contextlib.AbstractContextManager[Any]]
    group_error: type[BaseException]
    transport_error: type[BaseException]


def default_smp() -> SmpApi:
    try:
        from tinyfix.smp.client import open_device
        from tinyfix.smp.errors import SmpGroupError, SmpTransportError
    except ImportError as exc:
        raise TinyfixError(f"fleet push needs the SMP client (tinyfix.smp): {exc}") from None
    return SmpApi(open_device, SmpGroupError, SmpTransportError)


@dataclass(frozen=True)
class Targets:
    """Each device's SMP URL: from a map (device id -> URL) or a template such as
    "udp://{device_id}.fleet.local:1337"."""

    mapping: dict[str, str] | None = None
    template: str | None = None

    @classmethod
    def from_map(cls, path: Path) -> Targets:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise TinyfixError(f"{path}: cannot read the SMP map ({exc})") from None
        if not isinstance(data, dict):
            raise TinyfixError(f"{path}: expected a mapping of device id to SMP URL")
        return cls(mapping={str(k): str(v) for k, v in data.items()})

    def url(self, device_id: str) -> str | None:
        if self.mapping is not None:
            return self.mapping.get(device_id)
        assert self.template is not None
        try:
            return self.template.format(device_id=device_id)
        except (KeyError, IndexError, ValueError) as exc:
            raise TinyfixError(f"--smp {self.template!r}: only {{device_id}} can be filled "
                               f"in ({exc})") from None


@dataclass
class PushJob:
    fits: str  # a fleet fit's --out
    targets: Targets
    log: Path
    retry_refused: bool = False
    label_free: bool = False  # also push sets marked not for push (label-free prior sets)


def _fitted(fits: str) -> list[dict[str, Any]]:
    data = json.loads(urls.read_text(urls.join(fits, "fleet.json")))
    return [d for d in data["devices"] if d["status"] == OK]


def _crc(info: dict[str, Any], key: str) -> int | None:
    try:
        return parse_crc(info[key], key)
    except (KeyError, ManifestError):
        return None


def push_one(device: dict[str, Any], url: str, blob: bytes, crc: int, model_crc: int,
             smp: SmpApi) -> PushEntry:
    """One device: INFO, then the set if it needs it; the event to log."""
    hexcrc = f"0x{crc:08x}"
    base = {"device_id": device["device_id"], "params_crc": hexcrc, "url": url}
    try:
        with smp.open_device(url) as dev:
            info = dev.info()
            running, active = _crc(info, "model_crc"), _crc(info, "params_crc")
            if running != model_crc:
                shown = "unknown" if running is None else f"0x{running:08x}"
                return PushEntry(**base, event="wrong model",
                                 text=f"runs model {shown}, the set is for 0x{model_crc:08x}")
            if active == crc:
                return PushEntry(**base, event="active", device_crc=hexcrc)
            answer = dev.push_params(blob)
    except smp.group_error as exc:
        return PushEntry(**base, event="refused", rc=int(getattr(exc, "rc", -1)),
                         text=str(getattr(exc, "text", "") or exc))
    except smp.transport_error as exc:
        return PushEntry(**base, event="unreachable", text=str(exc))
    got = _crc(answer, "crc")
    shown = "none" if got is None else f"0x{got:08x}"
    persisted = bool(answer.get("persisted")) if "persisted" in answer else None
    if got != crc:
        return PushEntry(**base, event="mismatch", device_crc=shown, persisted=persisted,
                         text=f"the device reports {shown} after the push")
    return PushEntry(**base, event="pushed", device_crc=shown, persisted=persisted)


def push_fleet(job: PushJob, smp: SmpApi, console: Console) -> Counter[str]:
    """Push every fitted device that still needs its set; returns counts by outcome."""
    devices = _fitted(job.fits)
    core = Core()
    counts: Counter[str] = Counter()
    columns = (TextColumn("[bold]fleet push"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[last]}"))
    with PushLog(job.log) as log, Progress(*columns, console=console) as bar:
        task = bar.add_task("push", total=len(devices), last="")
        for device in devices:
            outcome = _push_logged(device, job, smp, core, log)
            counts[outcome] += 1
            bar.update(task, advance=1, last=f"{device['device_id']}: {outcome}")
    _print(console, counts, job.log)
    settled = ("pushed", "active", "skipped", "held back")
    not_done = sum(n for k, n in counts.items() if k not in settled)
    if not_done:
        wanted = len(devices) - counts["held back"]
        raise PushIncomplete(f"{not_done} of {wanted} devices were not updated (see "
                             f"{job.log}); run the same command again to retry the "
                             "unreachable ones")
    return counts


def _push_logged(device: dict[str, Any], job: PushJob, smp: SmpApi, core: Core,
                 log: PushLog) -> str:
    device_id = device["device_id"]
    if not device.get("push", True) and not job.label_free:
        return "held back"
    crc = parse_crc(device["params_crc"], f"{device_id}: params_crc")
    hexcrc = f"0x{crc:08x}"
    if log.done(device_id, hexcrc):
        return "skipped"
    last = log.last(device_id, hexcrc)
    if last is not None and last.event == "refused" and not job.retry_refused:
        return "refused before"
    url = job.targets.url(device_id)
    if url is None:
        return "no address"
    source = urls.join(job.fits, device["params"])
    params = params_io.params_from_yaml(urls.read_text(source), core, source=source)
    if params.crc != crc:
        raise TinyfixError(f"{source}: parameter set 0x{params.crc:08x}, fleet.json says "
                           f"{hexcrc}")
    entry = log.append(push_one(device, url, params.encode(), crc, int(params.c.model_crc),
                                smp))
    return entry.event


def _print(console: Console, counts: Counter[str], log: Path) -> None:
    table = Table(title=f"fleet push (log: {log})")
    table.add_column("outcome")
    table.add_column("devices", justify="right")
    for name, n in sorted(counts.items()):
        table.add_row(name, str(n))
    console.print(table)
