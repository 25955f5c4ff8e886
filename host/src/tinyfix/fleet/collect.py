# SPDX-License-Identifier: Apache-2.0
"""`tinyfix fleet collect`: capture every device over SMP into a fleet folder.

Each device records its next N windows (MCUmgr CAPTURE: raw outputs and features of the
windows it classifies on its own, no labels); the records become the device's capture
file and manifest exactly as `fleet simulate` writes them, plus its SMP address, so
`fleet fit` and `fleet push` take a collected fleet and a simulated one alike. A device
that cannot be reached, runs another model or stops mid-capture is reported and skipped;
the ones already written stay, and a rerun collects only the devices still missing.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

from tinyfix.errors import TinyfixError
from tinyfix.fleet import capture_io, urls
from tinyfix.fleet.manifest import DEVICE_ID, FLEET_FILE, FLEET_FORMAT, DeviceManifest
from tinyfix.fleet.push import SmpApi, Targets
from tinyfix.smp.commands import capture_windows


@dataclass
class CollectJob:
    out: str  # the fleet folder (path or fsspec URL)
    device_ids: list[str]
    targets: Targets
    windows: int
    model: Path  # the .tflite the devices run, copied into the fleet
    reference: str | None = None  # a labelled lab capture's manifest (fleet.yaml reference)
    again: bool = False  # capture devices already in the folder again


def _capture_one(smp: SmpApi, url: str, windows: int, model_crc: int) -> tuple[bytes, str]:
    """One device's capture file and firmware version."""
    with smp.open_device(url) as dev:
        info = dev.info()
        if int(info["model_crc"]) != model_crc:
            raise TinyfixError(f"runs model 0x{int(info['model_crc']):08x}, not the fleet's "
                               f"0x{model_crc:08x}")
        if not info["capture_max"]:
            raise TinyfixError("its build has no CAPTURE")
        features = int(info["features"]) > 0
        data = capture_windows(dev, info, windows, features)
    raw, feats = data["scores"], data.get("features")
    labels = np.full(len(raw), capture_io.NO_LABEL)
    origin = f"smp {url} {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
    return capture_io.encode(raw, labels, feats, model_crc, origin), str(info["fw"])


def collect_fleet(job: CollectJob, smp: SmpApi, console: Console) -> Counter[str]:
    from tinyfix.twin import ModelGraph

    if job.windows < 10:
        raise TinyfixError(f"--windows must be at least 10, got {job.windows}")
    bad = [d for d in job.device_ids if not DEVICE_ID.match(d)]
    if bad:
        raise TinyfixError(f"device ids must be letters, digits and _.:@+-: {bad[:3]}")
    graph = ModelGraph.load(job.model)
    out = urls.absolute(job.out)
    urls.write_bytes(urls.join(out, "model.tflite"), job.model.read_bytes())
    fleet: dict[str, Any] = {"format": FLEET_FORMAT, "model": "model.tflite",
                             "model_crc": f"0x{graph.crc:08x}", "devices": "devices/*.json"}
    if job.reference is not None:
        fleet["reference"] = job.reference
    urls.write_text(urls.join(out, FLEET_FILE), yaml.safe_dump(fleet, sort_keys=False))

    counts: Counter[str] = Counter()
    problems: list[tuple[str, str]] = []
    for device_id in job.device_ids:
        manifest_url = urls.join(out, "devices", f"{device_id}.json")
        if not job.again and urls.exists(manifest_url):
            counts["kept"] += 1
            continue
        url = job.targets.url(device_id)
        if url is None:
            problems.append((device_id, "no SMP address in the map"))
            counts["failed"] += 1
            continue
        console.print(f"{device_id}: capturing {job.windows} windows from {url}")
        try:
            data, firmware = _capture_one(smp, url, job.windows, graph.crc)
        except (TinyfixError, smp.transport_error, smp.group_error) as err:
            problems.append((device_id, str(err)))
            counts["failed"] += 1
            continue
        name = f"{device_id}.tfcap"
        urls.write_bytes(urls.join(out, "devices", name), data)
        # The manifest last: a device with a manifest has its whole capture.
        manifest = DeviceManifest(device_id, graph.crc, firmware, False, name, smp=url)
        urls.write_text(manifest_url, json.dumps(manifest.as_dict(capture=name), indent=2)
                        + "\n")
        counts["collected"] += 1
    _print(console, counts, problems, out)
    return counts


def _print(console: Console, counts: Counter[str], problems: list[tuple[str, str]],
           out: str) -> None:
    table = Table(title=f"fleet collect into {out}")
    for key in ("collected", "kept", "failed"):
        table.add_column(key, justify="right")
    table.add_row(*(str(counts[k]) for k in ("collected", "kept", "failed")))
    console.print(table)
    for device_id, why in problems:
        console.print(f"[red]{device_id}[/]: {why}")
