# SPDX-License-Identifier: Apache-2.0
"""`tinyfix fleet simulate`: a fleet of simulated devices, for the benchmark, CI and trying
the fleet commands without one.

Every device is the twin's field sensor (demo_data.gesture_data.field_profile) with its
own drift seed, its offset, temperature coefficient, gain error and mounting rotation
scaled by a per-device drift factor drawn from [0, max_drift] (1: the datasheet-like
tolerances of one field device; 2: twice as far off, an aged or stressed part), and its own
class mix (a Dirichlet draw around the lab's uniform mix). Its windows are captured as the
twin captures them: inputs quantized by the C core's input stage and run by the real TFLM
kernels, raw outputs and feature vectors kept in a capture file, with a manifest.

Fast because the expensive part, rendering the hand's motion, is done once: a pool of
motions per class is shared by the devices, and each device reads the windows it draws
from the pool through its own sensor (gesture_data.sense_windows). One model instance runs
every device of a process. With a Dask client the devices are simulated in chunks on its
workers.

Written: fleet.yaml, model.tflite, reference.json + reference.tfcap (a labelled lab
capture: calibrated bench sensor, uniform class mix), devices/<id>.json + <id>.tfcap, and
for unlabeled devices truth/<id>.npy (their true labels, for benchmarks only: no fit reads
them).
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tinyfix.capture import fingerprint, quantize_inputs
from tinyfix.demo_data import gesture_data as gd
from tinyfix.errors import TinyfixError
from tinyfix.fleet import capture_io, urls
from tinyfix.fleet.device_fit import core
from tinyfix.fleet.manifest import DeviceManifest, write_fleet

if TYPE_CHECKING:
    from distributed import Client

POOL_PER_CLASS = 384
MIX_CONCENTRATION = 150.0  # Dirichlet concentration of a device's class mix around the lab's
REFERENCE_SAMPLES = 600
FIRMWARE = "0.1.0-sim"
CHUNK = 25  # devices a Dask task simulates


@dataclass(frozen=True)
class SimulationSpec:
    devices: int
    out: str
    labelled_fraction: float = 0.25
    samples: int = 300
    seed: int = 0
    max_drift: float = 2.0
    reference_samples: int = REFERENCE_SAMPLES


@dataclass(frozen=True)
class SimDevice:
    """Everything that makes one simulated device (picklable: a Dask task's input)."""

    device_id: str
    index: int
    labelled: bool
    drift: float
    profile_seed: int
    class_mix: tuple[float, ...]

    def profile(self) -> gd.SensorProfile:
        """field_profile(profile_seed) with its drift scaled by `drift`."""
        p = gd.field_profile(self.profile_seed)
        s = self.drift
        return dataclasses.replace(
            p, name=f"{p.name} x{s:.2f}",
            offset_mps2=tuple(s * v for v in p.offset_mps2),  # type: ignore[arg-type]
            tempco_mps2_per_c=tuple(s * v for v in p.tempco_mps2_per_c),  # type: ignore[arg-type]
            gain=tuple(1.0 + s * (g - 1.0) for g in p.gain),  # type: ignore[arg-type]
            mount_deg=tuple(s * v for v in p.mount_deg))  # type: ignore[arg-type]

    def metadata(self) -> dict[str, Any]:
        p = self.profile()
        return {"drift": round(self.drift, 4), "profile_seed": self.profile_seed,
                "class_mix": [round(m, 4) for m in self.class_mix],
                "offset_mps2": [round(v, 4) for v in p.offset_mps2],
                "gain": [round(v, 4) for v in p.gain]}


def plan(spec: SimulationSpec) -> list[SimDevice]:
    """The devices of a simulation: deterministic for its seed."""
    if spec.devices < 1:
        raise TinyfixError(f"--devices must be at least 1, got {spec.devices}")
    if not 0.0 <= spec.labelled_fraction <= 1.0:
        raise TinyfixError(f"--labelled-fraction must be in [0, 1], got "
                           f"{spec.labelled_fraction}")
    rng = np.random.default_rng([spec.seed, 0xF1EE7])
    n = spec.devices
    labelled = np.zeros(n, dtype=bool)
    labelled[rng.permutation(n)[:round(spec.labelled_fraction * n)]] = True
    drift = rng.uniform(0.0, spec.max_drift, n)
    seeds = rng.integers(1, 2**31 - 1, n)
    lab_mix = np.array([gd.LAB_CLASS_MIX[c] for c in gd.CLASS_NAMES])
    mixes = rng.dirichlet(MIX_CONCENTRATION * lab_mix, n)
    width = len(str(n - 1))
    return [SimDevice(f"sim-{i:0{width}d}", i, bool(labelled[i]), float(drift[i]),
                      int(seeds[i]), tuple(float(m) for m in mixes[i])) for i in range(n)]


@lru_cache(maxsize=1)
def motion_pool(seed: int, per_class: int = POOL_PER_CLASS
                ) -> dict[str, tuple[NDArray, NDArray]]:
    """The shared motions, per class: (fine time grid, true specific force)."""
    return {name: gd.render_motions(name, per_class, seed * 1000 + k)
            for k, name in enumerate(gd.CLASS_NAMES)}


@lru_cache(maxsize=1)
def _runner() -> Any:
    from tinyfix.twin import TflmRunner

    graph = _graph()
    return TflmRunner(graph)


@lru_cache(maxsize=1)
def _graph() -> Any:
    from tinyfix.twin import ModelGraph, default_model

    return ModelGraph.load(default_model())


def _windows(profile: gd.SensorProfile, mix: NDArray, n: int, seed: int, pool_seed: int
             ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """n windows of a sensor at a class mix, drawn from the pool, in a shuffled order."""
    rng = np.random.default_rng(seed)
    pool = motion_pool(pool_seed)
    counts = rng.multinomial(n, mix)
    xs, ys = [], []
    for k, (name, count) in enumerate(zip(gd.CLASS_NAMES, counts, strict=True)):
        if count == 0:
            continue
        fine_t, force = pool[name]
        pick = rng.integers(0, force.shape[0], count)
        xs.append(gd.sense_windows(profile, fine_t[pick], force[pick],
                                   int(rng.integers(2**31))))
        ys.append(np.full(count, k, dtype=np.int64))
    order = rng.permutation(n)
    return np.concatenate(xs)[order], np.concatenate(ys)[order]


def _capture(x: NDArray, y: NDArray, stored_labels: NDArray) -> bytes:
    """The capture file of the twin's answers to these windows."""
    graph = _graph()
    info = graph.model_info(core())
    q = quantize_inputs(core(), info, x)
    raw, feats = _runner().run(q)
    return capture_io.encode(raw, stored_labels, feats, info.model_crc, fingerprint(q, y))


def _write_device(device: SimDevice, x: NDArray, y: NDArray, out: str, crc: int) -> None:
    labels = y if device.labelled else np.full(len(y), capture_io.NO_LABEL)
    name = f"{device.device_id}.tfcap"
    urls.write_bytes(urls.join(out, "devices", name), _capture(x, y, labels))
    meta = device.metadata()
    if not device.labelled:
        buf = io.BytesIO()
        np.save(buf, y.astype(np.int16))
        urls.write_bytes(urls.join(out, "truth", f"{device.device_id}.npy"), buf.getvalue())
        meta["truth"] = f"../truth/{device.device_id}.npy"
    manifest = DeviceManifest(device.device_id, crc, FIRMWARE, device.labelled, name,
                              simulated=meta)
    urls.write_text(urls.join(out, "devices", f"{device.device_id}.json"),
                    json.dumps(manifest.as_dict(capture=name), indent=2) + "\n")


def simulate_devices(devices: list[SimDevice], spec: SimulationSpec) -> int:
    """Simulate and write these devices (a Dask task, or in this process)."""
    crc = _graph().crc
    for device in devices:
        x, y = _windows(device.profile(), np.asarray(device.class_mix), spec.samples,
                        spec.seed * 1_000_003 + device.index + 1, spec.seed)
        _write_device(device, x, y, spec.out, crc)
    return len(devices)


def _reference(spec: SimulationSpec, crc: int) -> None:
    lab_mix = np.array([gd.LAB_CLASS_MIX[c] for c in gd.CLASS_NAMES])
    x, y = _windows(gd.lab_profile(), lab_mix, spec.reference_samples,
                    spec.seed * 1_000_003, spec.seed)
    urls.write_bytes(urls.join(spec.out, "reference.tfcap"), _capture(x, y, y))
    manifest = DeviceManifest("reference", crc, FIRMWARE, True, "reference.tfcap",
                              simulated={"profile": "lab"})
    urls.write_text(urls.join(spec.out, "reference.json"),
                    json.dumps(manifest.as_dict(capture="reference.tfcap"), indent=2) + "\n")


def _chunks(devices: list[SimDevice], size: int) -> Iterator[list[SimDevice]]:
    for start in range(0, len(devices), size):
        yield devices[start:start + size]


def simulate_fleet(spec: SimulationSpec, console: Console, client: Client | None = None
                   ) -> list[SimDevice]:
    """Write the simulated fleet under spec.out; with a Dask client its workers do it."""
    from tinyfix.twin import default_model

    spec = dataclasses.replace(spec, out=urls.absolute(spec.out))
    devices = plan(spec)
    graph = _graph()
    urls.write_bytes(urls.join(spec.out, "model.tflite"), default_model().read_bytes())
    _reference(spec, graph.crc)
    columns = (TextColumn("[bold]simulate"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("simulate", total=len(devices))
        if client is None:
            for chunk in _chunks(devices, 1):
                bar.update(task, advance=simulate_devices(chunk, spec))
        else:
            from distributed import as_completed

            # Chunks small enough that every worker gets several, large enough that the
            # scheduler's per-task cost does not show.
            workers = max(1, len(client.scheduler_info()["workers"]))
            size = max(1, min(CHUNK, len(devices) // (4 * workers)))
            futures = client.map(simulate_devices, list(_chunks(devices, size)), spec=spec,
                                 pure=False)
            for future in as_completed(futures):
                bar.update(task, advance=future.result())
    write_fleet(spec.out, model="model.tflite", model_crc=graph.crc,
                reference="reference.json", classes=gd.CLASS_NAMES)
    n_lab = sum(d.labelled for d in devices)
    console.print(f"simulated {len(devices)} devices ({n_lab} labelled, "
                  f"{len(devices) - n_lab} unlabeled, {spec.samples} windows each) in "
                  f"{spec.out}")
    return devices
