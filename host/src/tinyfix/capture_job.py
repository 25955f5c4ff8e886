# SPDX-License-Identifier: Apache-2.0
"""`tinyfix capture`: record calibration data from the device's own sensor, guided, and
write it as a data set `fit` and `calibrate --data` read (README "Data formats").

Classification (default): x (N, *input shape) float32 in real units as the device's input
stage sees them, y, class_names, scores (the raw outputs the device computed for them),
features (its int8 feature vectors, when it has them) and window_t_ms (device time).
`--unlabeled`: the same without y. `--stream`: t_ms, x, scores, event_start_ms,
event_end_ms, event_label, class_names, background.

The session file `<out>.tfsession` keeps every kept window as it is kept; the same command
resumes it after Ctrl-C, a pulled cable or `q`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tinyfix import guided_capture as gc
from tinyfix.capture_keys import Keys, ScriptedKeys, terminal_keys
from tinyfix.capture_ui import CaptureScreen
from tinyfix.core import Core
from tinyfix.device import DEFAULT_BAUD, Device, open_device
from tinyfix.errors import TinyfixError
from tinyfix.session_store import SessionStore
from tinyfix.wire.errors import WireError
from tinyfix.wire.protocol import Cap

MODES = ("windows", "unlabeled", "stream")


@dataclass
class CaptureJob:
    port: str
    out: Path  # the data set to write (.npz)
    baud: int = DEFAULT_BAUD
    model: Path | None = None
    classes: tuple[str, ...] | None = None
    windows: str = "20"  # per class, or "name=count,..."; in all with --unlabeled
    label: str | None = None  # windows: only this class now; stream: Enter's event class
    mode: str = "windows"
    seconds: float = 60.0
    background: tuple[str, ...] | None = None  # stream: classes that are never events
    auto: bool = False  # keep every take without asking (scripts, CI)
    keys: str | None = None  # a fixed key sequence instead of the terminal (tests)
    features: bool | None = None  # None: when the device reports a feature tensor
    sim_sensor: str = "field"

    @property
    def session(self) -> Path:
        return self.out.with_suffix(".tfsession")


def _names(job: CaptureJob, device: Device) -> tuple[str, ...]:
    n = device.model.n_classes
    if job.classes is not None:
        if len(job.classes) != n:
            raise TinyfixError(f"--classes names {len(job.classes)} classes; the device's "
                               f"model has {n}")
        return job.classes
    if device.twin is not None:
        from tinyfix.demo_data import gesture_data as gd

        if len(gd.CLASS_NAMES) == n and device.twin.sensor is not None:
            return tuple(gd.CLASS_NAMES)
    return tuple(str(i) for i in range(n))


def _performer(device: Device) -> gc.Performer | None:
    """On the simulated device, its sensor performs what the operator is asked to."""
    if device.twin is None or device.twin.sensor is None:
        return None
    sensor = device.twin.sensor
    from tinyfix.demo_data import gesture_data as gd

    def perform(name: str | None) -> None:
        sensor.perform(name if name in gd.CLASS_NAMES else None)

    return perform


def _background(job: CaptureJob, names: tuple[str, ...]) -> tuple[int, ...]:
    chosen = job.background
    if chosen is None:
        from tinyfix.demo_data import gesture_data as gd

        chosen = tuple(n for n in gd.BACKGROUND_CLASSES if n in names)
    return tuple(gc.index_of(names, n) for n in chosen)


@contextlib.contextmanager
def _keys(job: CaptureJob) -> Iterator[Keys]:
    if job.keys is not None or (job.auto and job.mode == "windows") or job.mode == "unlabeled":
        yield ScriptedKeys(job.keys or "")  # no key is read: none is needed
    else:
        with terminal_keys() as keys:
            yield keys


def run_capture(job: CaptureJob, console: Console) -> Path:
    """Run the session (or resume it) and write job.out; returns its path."""
    if job.mode not in MODES:
        raise TinyfixError(f"capture mode must be one of {', '.join(MODES)}")
    if job.out.suffix != ".npz":
        raise TinyfixError(f"--out must name a .npz file, not {job.out}")
    with open_device(job.port, baud=job.baud, model=job.model, sim_sensor=job.sim_sensor,
                     sim_realtime=job.mode == "stream") as device:
        names = _names(job, device)
        core = Core()
        features = job.features if job.features is not None else device.model.n_features > 0
        sampler = gc.Sampler(device, core, features=features,
                             fresh_state=bool(device.info.caps & Cap.MODEL_RESET),
                             perform=_performer(device))
        shape = list(sampler.shape)
        dtype = np.dtype(gc.q_dtype(device))
        header = {"model_crc": f"0x{device.info.model_crc:08x}", "mode": job.mode,
                  "classes": list(names), "input_shape": shape,
                  "raw_bytes": device.model.outputs * dtype.itemsize,
                  "output_dtype": dtype.name, "features": sampler.features}
        screen = CaptureScreen(console, names)
        with SessionStore(job.session, header) as store:
            if store.windows:
                console.print(f"resuming {job.session}: {len(store.windows)} windows kept "
                              "so far")
            try:
                with _keys(job) as keys:
                    _run_mode(job, store, sampler, names, keys, screen)
            except gc.CaptureStopped as stop:
                console.print(str(stop))
            except KeyboardInterrupt:
                console.print(f"interrupted: {len(store.windows)} windows are saved in "
                              f"{job.session}; run the same command again to go on")
                raise
            except WireError as exc:
                raise TinyfixError(
                    f"lost {device.port_name} after {len(store.windows)} kept windows ({exc}); "
                    f"they are saved in {job.session}: reconnect and run the same command "
                    "again to go on") from exc
            path = write_dataset(store, job, names, _background(job, names))
            console.print(summary(store, sampler, names, job.mode))
            console.print(f"wrote {path} ({len(store.windows)} windows); the session stays "
                          f"in {job.session}")
            return path


def _run_mode(job: CaptureJob, store: SessionStore, sampler: gc.Sampler,
              names: tuple[str, ...], keys: Keys, screen: CaptureScreen) -> None:
    if job.mode == "windows":
        gc.guided(store, sampler, gc.Plan.parse(names, job.windows, job.label), keys, screen,
                  job.auto)
    elif job.mode == "unlabeled":
        gc.unlabeled(store, sampler, gc.Plan.parse(names, job.windows, None), screen)
    else:
        label = None if job.label is None else gc.index_of(names, job.label)
        gc.stream(store, sampler, names, _background(job, names), job.seconds, keys, screen,
                  label)


def write_dataset(store: SessionStore, job: CaptureJob, names: tuple[str, ...],
                  background: tuple[int, ...]) -> Path:
    kept = store.kept()
    if not kept:
        raise TinyfixError(f"no window was kept; nothing to write (session: {job.session})")
    x = np.stack([w.x for w in kept]).astype(np.float32)
    out: dict[str, np.ndarray] = {"x": x, "class_names": np.array(names),
                                  "scores": scores(store)}
    feats = [w.features for w in kept]
    if feats[0] and all(len(f) == len(feats[0]) for f in feats):
        out["features"] = np.stack([np.frombuffer(f, dtype=np.int8) for f in feats])
    t = np.array([w.t_ms for w in kept], dtype=np.int64)
    if job.mode == "stream":
        out["t_ms"] = t
        starts = [m for m in store.marks if m.start]
        ends = [m for m in store.marks if not m.start]
        pairs = [(s, next((e for e in ends if e.t_ms >= s.t_ms and e.label == s.label), None))
                 for s in starts]
        out["event_start_ms"] = np.array([s.t_ms for s, _ in pairs], dtype=np.int64)
        out["event_end_ms"] = np.array([(e or s).t_ms for s, e in pairs], dtype=np.int64)
        out["event_label"] = np.array([s.label for s, _ in pairs], dtype=np.int64)
        out["background"] = np.array([names[b] for b in background])
    else:
        out["window_t_ms"] = t
        if job.mode == "windows":
            out["y"] = np.array([w.label for w in kept], dtype=np.int64)
    job.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = job.out.with_name(job.out.name + ".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(job.out)
    return job.out


def scores(store: SessionStore) -> np.ndarray:
    """(N, outputs) raw outputs of the kept windows, as the device sent them."""
    dtype = np.dtype(store.header["output_dtype"])
    return np.stack([np.frombuffer(w.raw, dtype=dtype) for w in store.kept()])


def summary(store: SessionStore, sampler: gc.Sampler, names: tuple[str, ...],
            mode: str) -> Table:
    """Windows kept per class and how often the model's own top class names it (a low
    share: bad takes, or the drift the fit is about to correct)."""
    table = Table(title="kept windows")
    table.add_column("class")
    table.add_column("windows", justify="right")
    table.add_column("the model's top class", justify="right")
    kept = store.kept()
    top, _ = sampler.top(scores(store))
    labels = np.array([w.label for w in kept])
    rows = [(n, labels == c) for c, n in enumerate(names)] if mode == "windows" else []
    for name, mine in rows:
        if mine.any():
            table.add_row(name, str(int(mine.sum())),
                          f"{100 * np.mean(top[mine] == labels[mine]):.0f}% {name}")
    counts = np.bincount(top, minlength=len(names))
    mix = ", ".join(f"{names[c]} {counts[c]}" for c in np.flatnonzero(counts))
    table.add_row("all", str(len(kept)), mix if mode != "windows" else
                  f"{100 * np.mean(top == labels):.0f}% agree")
    return table
