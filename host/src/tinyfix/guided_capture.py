# SPDX-License-Identifier: Apache-2.0
"""A guided capture session: calibration data made on the bench from the device's own
sensor, one labelled window at a time (`tinyfix capture`).

Each window is asked for with CAPTURE (the sensor input as the model sees it, float32 in
real units) and run through the model on the device with INFER (its raw output and, when
asked, its feature vector), so the operator sees the model's own top class for every take
before keeping it. Kept windows go to a session file (session_store) before the next is
asked for: Ctrl-C or a pulled cable loses nothing, and the same command resumes.

Modes: "windows" (per class in turn, N windows each, keys keep / drop / undo / skip /
quit), "unlabeled" (N windows of whatever the device sees, for `fit --unlabeled`) and
"stream" (consecutive windows for S seconds; keys mark event starts and ends).

On the simulated device (`--port sim`) the twin's sensor plays the operator: it performs
the class the screen asks for (in a stream, the class whose event the keys start).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from tinyfix.capture import quantize_inputs
from tinyfix.capture_keys import Keys
from tinyfix.core import Core, Params
from tinyfix.device import Device
from tinyfix.errors import TinyfixError
from tinyfix.fit.domain import detect_output_kind
from tinyfix.fit.float_params import FloatParams
from tinyfix.fit.quantize import quantize
from tinyfix.fit.through_core import Q15, run_frames
from tinyfix.session_store import NO_LABEL, SessionStore
from tinyfix.wire.protocol import Cap, DType

KEEP, DROP, UNDO, SKIP, QUIT = "\n", "d", "u", "s", "q"
# Bytes of a CAPTURE response besides its values: frame header and CRC, COBS, the
# response's fixed fields (docs/protocol.md).
CAPTURE_OVERHEAD = 32
END_EVENT = " "
# Keys that keep a take besides Enter.
KEEP_ALSO = ("k", "y")


class CaptureStopped(Exception):
    """The operator quit, or the key input ended: everything kept is in the session file."""


@dataclass(frozen=True)
class Take:
    """One window and what the model makes of it on the device."""

    x: NDArray[np.float32]
    t_ms: int
    raw: bytes
    features: bytes
    top_class: int
    confidence: float


# Makes the simulated sensor perform a class (None: its own mix); a real board has none.
Performer = Callable[[str | None], None]


class Sampler:
    """CAPTURE one sensor window, then INFER it on the device."""

    def __init__(self, device: Device, core: Core, *, features: bool = False,
                 fresh_state: bool = False, perform: Performer | None = None) -> None:
        if not device.info.caps & Cap.CAPTURE:
            raise TinyfixError(f"the device on {device.port_name} has no sensor to capture "
                               "from (it does not offer CAPTURE): build the app with a sensor "
                               "(CONFIG_APP_INPUT_SENSOR, an accel0 alias in the devicetree)")
        self.device, self.core = device, core
        self.features = features and device.model.n_features > 0
        self.fresh_state = fresh_state
        self.perform = perform
        shape = tuple(device.info.input.shape)
        self.shape = shape[1:] if len(shape) > 1 and shape[0] == 1 else shape
        self._identity: dict[str, Params] = {}
        # Float windows when one fits a frame; else the int8 window the device's input stage
        # makes (as the model sees it), dequantized here.
        n = int(np.prod(self.shape))
        model = device.model
        self.dtype = DType.FLOAT32
        if 4 * n + CAPTURE_OVERHEAD > device.info.max_frame and model.input_type == "int8":
            self.dtype = DType.INT8

    def take(self) -> Take:
        link = self.device.link
        window = next(iter(link.capture(1, self.dtype)), None)
        if window is None:
            raise TinyfixError(f"the device on {self.device.port_name} sent no sensor window")
        model = self.device.model
        values = np.frombuffer(window.data, dtype="<f4" if self.dtype == DType.FLOAT32
                               else np.int8)
        if values.size != int(np.prod(self.shape)):
            raise TinyfixError(f"a sensor window of {values.size} values; the model takes "
                               f"{list(self.shape)}")
        if self.dtype == DType.FLOAT32:
            x = values.reshape(self.shape).astype(np.float32)
            q = quantize_inputs(self.core, model, x[None])[0]
        else:  # quantizing these real values again gives back the same int8 window
            q = values.reshape(self.shape)
            x = ((q.astype(np.float64) - model.input_zero_point)
                 * model.input_scale).astype(np.float32)
        rsp = link.infer(np.ascontiguousarray(q).tobytes(), features=self.features,
                         reset_model=self.fresh_state)
        top, confidence = self.top(np.frombuffer(rsp.raw, dtype=q_dtype(self.device))[None])
        return Take(x, int(window.t_ms), bytes(rsp.raw), bytes(rsp.features), int(top[0]),
                    float(confidence[0]))

    def top(self, raw: NDArray) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """The model's own top class and its probability for raw outputs (N, outputs),
        through the C core with no correction."""
        model = self.device.model
        kind = detect_output_kind(raw, model)  # a softmax's probabilities, or logits
        if kind not in self._identity:
            identity = FloatParams.identity(model.n_classes, kind)
            self._identity[kind] = quantize(self.core, model, identity)[0]
        run = run_frames(self.core, model, self._identity[kind], raw)
        return run.top_class, run.top_prob / Q15


def q_dtype(device: Device) -> type:
    return {"int8": np.int8, "int16": np.int16, "float32": np.float32}[device.model.output_type]


@dataclass
class Plan:
    """Which classes, how many windows each (`mode` "windows"), or in all."""

    names: tuple[str, ...]
    windows: dict[int, int] = field(default_factory=dict)  # class -> windows wanted
    total: int = 0  # "unlabeled": windows wanted

    @classmethod
    def parse(cls, names: Sequence[str], windows: str, label: str | None) -> Plan:
        """`windows`: "20" (each class) or "idle=180,wave=60,..." (classes not named: 0);
        `label`: capture only this class now."""
        names = tuple(names)
        per: dict[int, int] = {}
        if "=" in windows:
            for part in windows.split(","):
                name, _, count = part.partition("=")
                per[index_of(names, name.strip())] = _count(count)
        else:
            n = _count(windows)
            per = {i: n for i in range(len(names))}
        if label is not None:
            chosen = index_of(names, label)
            per = {chosen: per.get(chosen, 0) or max(per.values(), default=0)}
        return cls(names, {c: n for c, n in per.items() if n > 0},
                   _count(windows) if "=" not in windows else sum(per.values()))


def index_of(names: Sequence[str], name: str) -> int:
    if name in names:
        return list(names).index(name)
    if name.isdigit() and int(name) < len(names):
        return int(name)
    raise TinyfixError(f"no class {name!r}; the classes are {', '.join(names)}")


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise TinyfixError(f"a window count must be a whole number, not {text!r}") from None
    if n < 0:
        raise TinyfixError(f"a window count must be >= 0, not {n}")
    return n


class Screen(Protocol):
    """What a session shows; tinyfix.capture_ui.CaptureScreen draws it with rich."""

    def prompt(self, name: str, have: int, want: int) -> None: ...
    def take(self, take: Take, label: int | None, have: int, want: int) -> None: ...
    def said(self, text: str) -> None: ...
    def tick(self, take: Take, t0_ms: int, seconds: float, active: int | None) -> None: ...


def guided(store: SessionStore, sampler: Sampler, plan: Plan, keys: Keys, screen: Screen,
           auto: bool = False) -> None:
    """Per class in turn until each has its windows: show every take, act on the key."""
    for c, want in plan.windows.items():
        name = plan.names[c]
        if store.count(c) >= want:
            continue
        screen.prompt(name, store.count(c), want)
        if sampler.perform is not None:
            sampler.perform(name)
        while store.count(c) < want:
            take = sampler.take()
            screen.take(take, c, store.count(c), want)
            key = KEEP if auto else keys.wait()
            if key == KEEP or key in KEEP_ALSO:
                store.keep(c, take.t_ms, take.x, take.raw, take.features)
            elif key == DROP:
                screen.said("dropped")
            elif key == UNDO:
                last = store.last_of(c)
                if last is None:
                    screen.said(f"nothing of {name} kept yet")
                else:
                    store.undo(last.seq)
                    screen.said(f"took back the last {name} window and dropped this one")
            elif key == SKIP:
                screen.said(f"skipped the rest of {name}")
                break
            elif key == QUIT:
                raise CaptureStopped("stopped: everything kept is saved; run the same "
                                     "command again to go on")
            else:
                screen.said(f"key {key!r}: Enter keeps, d drops, u takes back the last, "
                            "s skips the class, q quits")


def unlabeled(store: SessionStore, sampler: Sampler, plan: Plan, screen: Screen) -> None:
    """Windows of whatever the sensor sees, all kept (for `fit --unlabeled`)."""
    if sampler.perform is not None:
        sampler.perform(None)
    while len(store.windows) < plan.total:
        take = sampler.take()
        screen.take(take, None, len(store.windows), plan.total)
        store.keep(NO_LABEL, take.t_ms, take.x, take.raw, take.features)


def stream(store: SessionStore, sampler: Sampler, names: tuple[str, ...],
           background: tuple[int, ...], seconds: float, keys: Keys, screen: Screen,
           label: int | None = None) -> None:
    """Consecutive windows for `seconds` of device time. A class's number key (1 = the
    first class) starts an event of it, Space ends it; Enter starts one of `label`."""
    rest = background[0] if background else None
    active = next((m.label for m in reversed(store.marks)), None)
    if active is not None and not store.marks[-1].start:
        active = None
    if sampler.perform is not None:
        sampler.perform(names[active] if active is not None
                        else None if rest is None else names[rest])
    kept = store.kept()
    t0 = kept[0].t_ms if kept else None
    last_t, last_seen = (kept[-1].t_ms, time.monotonic()) if kept else (0, time.monotonic())
    # A resumed session may meet a restarted device whose clock began again: its windows
    # continue the stream one hop after the last kept one.
    shift = None if kept else 0
    hop = int(np.median(np.diff([w.t_ms for w in kept]))) if len(kept) > 1 else 0
    while True:
        take = sampler.take()
        if shift is None:
            shift = max(0, last_t + hop - take.t_ms)
        take = replace(take, t_ms=take.t_ms + shift)
        t0 = take.t_ms if t0 is None else t0
        store.keep(NO_LABEL, take.t_ms, take.x, take.raw, take.features)
        last_t, last_seen = take.t_ms, time.monotonic()
        screen.tick(take, t0, seconds, active)
        if take.t_ms - t0 >= seconds * 1000:
            break
        key = keys.poll(0.0)
        if key is None:
            continue
        now = last_t + int(1000 * (time.monotonic() - last_seen))
        start = _event_class(key, names, label)
        if start is not None and start not in background:
            if active is not None:
                store.mark(now, active, start=False)
            store.mark(now, start, start=True)
            active = start
            screen.said(f"event {names[start]} started at {(now - t0) / 1000:.1f} s")
            if sampler.perform is not None:
                sampler.perform(names[start])
        elif key == END_EVENT and active is not None:
            store.mark(now, active, start=False)
            screen.said(f"event {names[active]} ended at {(now - t0) / 1000:.1f} s")
            active = None
            if sampler.perform is not None:
                sampler.perform(None if rest is None else names[rest])
        elif key == QUIT:
            break
    if active is not None:
        store.mark(last_t, active, start=False)


def _event_class(key: str, names: tuple[str, ...], label: int | None) -> int | None:
    if key.isdigit() and 1 <= int(key) <= min(9, len(names)):
        return int(key) - 1
    if key == KEEP and label is not None:
        return label
    return None
