# SPDX-License-Identifier: Apache-2.0
"""The soak (issue 14, `scripts/bench --soak`): mixed traffic against the simulated device
through a noisy line for minutes, with a fixed seed. INFER, CAPTURE, STATS, GET_PARAMS and
SET_PARAMS (persisted), INFERs that reset the run-time state, and reboots of the device.

Every answer is checked: an INFER's raw outputs and decision against what the same device
gave on a clean line for that input and parameter set, STATS and GET_PARAMS against the set
the host last pushed, CAPTURE for the number and shape of its windows; after a reboot the
device must run the set last persisted. Memory is sampled all along: the host's RSS, and
the twin's (a separate process, so the two are told apart) over each of its lives.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import serial

from tinyfix.twin.noisy_line import LineFaults, NoisyLine
from tinyfix.wire.protocol import DType

FAULTS = LineFaults(bit_flips=1e-3, drops=1e-4, duplicates=1e-4)
SEED = 14
POOL = 32  # distinct inputs; each INFER picks one
REBOOT_EVERY_S = 150.0
MIX = (("infer", 50), ("infer_reset", 10), ("capture", 10), ("stats", 10),
       ("get_params", 8), ("set_params", 7), ("info", 5))


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class SoakTally:
    ops: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    windows_asked: int = 0
    windows_got: int = 0
    reboots: int = 0
    host_rss: list[tuple[float, float]] = field(default_factory=list)
    twin_rss: list[list[tuple[float, float]]] = field(default_factory=list)
    link: Counter[str] = field(default_factory=Counter)
    injected: int = 0
    bytes: int = 0

    def check(self, ok: bool, what: str) -> None:
        if not ok and len(self.wrong) < 50:
            self.wrong.append(what)
        elif not ok:
            self.wrong.append("...")


class SimDevice:
    """The twin as its own process (`python -m tinyfix.twin`), persisting to a file."""

    def __init__(self, folder: Path) -> None:
        self.persist = folder / "params.bin"
        self.proc: subprocess.Popen[str] | None = None
        self.port = ""

    def boot(self) -> str:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tinyfix.twin", "--drift", "field", "--seed", str(SEED),
             "--persist", str(self.persist)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        self.port = self.proc.stdout.readline().strip()
        if not self.port.startswith("/dev/"):
            raise RuntimeError(f"the simulated device did not start: {self.port!r}")
        return self.port

    def kill(self) -> None:
        """Power off: no clean shutdown."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


@contextlib.contextmanager
def noisy_link(port: str, faults: LineFaults, seed: int, tally: SoakTally) -> Iterator[Any]:
    from tinyfix.wire import Link

    with NoisyLine(port, faults, seed=seed) as line:
        ser = serial.serial_for_url(line.url, timeout=0.05)
        link = Link(ser, timeout=2.0)
        try:
            link.info()
            yield link
        finally:
            ser.close()
            for key, value in vars(link.stats).items():
                tally.link[key] += value
            for counts in (line.to_host.counts, line.to_device.counts):
                tally.injected += counts.flipped + counts.dropped + counts.duplicated
                tally.bytes += counts.bytes


def parameter_sets(link: Any) -> list[bytes]:
    """The identity set and two corrected ones for the device's model."""
    from tinyfix.core import Core, Params
    from tinyfix.device import model_info_from

    core = Core("fixed")
    model = model_info_from(link.info())
    sets = [Params.identity(core, model).seal().encode()]
    for k in (1, 2):
        p = Params.identity(core, model)
        p.c.inv_temperature = (2 + k) * 65536 // 2
        for c in range(model.n_classes):
            p.c.class_bias[c] = ((c * k) % 5 - 2) * 65536 // 4
        sets.append(p.seal().encode())
    return sets


def reference_outputs(link: Any, sets: list[bytes], pool: list[bytes]) -> dict[tuple[int, int],
                                                                             tuple[bytes, int]]:
    """What the device answers on a clean line, per (set, input)."""
    expected = {}
    for s, blob in enumerate(sets):
        link.set_params(blob, persist=False)
        for i, x in enumerate(pool):
            rsp = link.infer(x, reset=True)
            expected[s, i] = (rsp.raw, rsp.decision)
    return expected


def run(seconds: float, out: Callable[[str], None] = print) -> dict[str, Any]:
    rng = random.Random(SEED)
    tally = SoakTally()
    with tempfile.TemporaryDirectory() as tmp:
        device = SimDevice(Path(tmp))
        try:
            port = device.boot()
            with noisy_link(port, LineFaults(), 0, SoakTally()) as clean:
                n_in = clean.device.input.n_elements
                pool = [np.random.default_rng(i).integers(-128, 128, n_in, dtype=np.int8)
                        .tobytes() for i in range(POOL)]
                sets = parameter_sets(clean)
                expected = reference_outputs(clean, sets, pool)
                clean.set_params(sets[0], persist=True)
            active = 0
            started = time.monotonic()
            next_report = started + 60
            tally.twin_rss.append([])
            life = 0
            while time.monotonic() - started < seconds:
                life += 1
                with noisy_link(port, FAULTS, life, tally) as link:
                    booted = link.device_stats().params_crc
                    tally.check(booted == _crc(sets[active]),
                                f"after boot {life}: runs 0x{booted:08x}, pushed set {active}")
                    reboot_at = min(time.monotonic() + REBOOT_EVERY_S, started + seconds)
                    while time.monotonic() < reboot_at:
                        op = rng.choices([m for m, _ in MIX], [w for _, w in MIX])[0]
                        tally.ops[op] += 1
                        active = _one(op, link, rng, pool, sets, expected, active, tally)
                        now = time.monotonic()
                        if tally.ops.total() % 200 == 0:
                            tally.host_rss.append((now - started, rss_mb()))
                            tally.twin_rss[-1].append((now - started, rss_mb(device.pid)))
                        if now >= next_report:
                            next_report += 60
                            out(f"soak: {now - started:.0f} s, {tally.ops.total()} requests, "
                                f"{len(tally.wrong)} wrong, host {rss_mb():.0f} MB, twin "
                                f"{rss_mb(device.pid):.0f} MB")
                if time.monotonic() - started < seconds:
                    device.kill()
                    tally.reboots += 1
                    port = device.boot()
                    tally.twin_rss.append([])
            elapsed = time.monotonic() - started
        finally:
            device.kill()
    return _figures(tally, elapsed)


def _crc(blob: bytes) -> int:
    return int.from_bytes(blob[-4:], "little")


def _one(op: str, link: Any, rng: random.Random, pool: list[bytes], sets: list[bytes],
         expected: dict[tuple[int, int], tuple[bytes, int]], active: int,
         tally: SoakTally) -> int:
    if op in ("infer", "infer_reset"):
        i = rng.randrange(len(pool))
        # Every INFER starts from a fresh state, so its answer depends on input and set only.
        rsp = link.infer(pool[i], reset=True, reset_model=op == "infer_reset")
        tally.check((rsp.raw, rsp.decision) == expected[active, i],
                    f"INFER of input {i} under set {active}")
    elif op == "capture":
        k = rng.choice((1, 1, 2, 4))
        windows = list(link.capture(k, DType.FLOAT32))
        tally.windows_asked += k
        tally.windows_got += len(windows)
        n_in = link.device.input.n_elements
        tally.check(len(windows) == k and all(
            w.n_values == n_in and np.isfinite(np.frombuffer(w.data, np.float32)).all()
            for w in windows), f"CAPTURE of {k}")
    elif op == "stats":
        crc = link.device_stats().params_crc
        tally.check(crc == _crc(sets[active]), f"STATS says 0x{crc:08x}, set {active} pushed")
    elif op == "get_params":
        tally.check(link.get_params() == sets[active], f"GET_PARAMS is not set {active}")
    elif op == "set_params":
        active = rng.choice([s for s in range(len(sets)) if s != active])
        rsp = link.set_params(sets[active], persist=True)
        tally.check(rsp.params_crc == _crc(sets[active]), f"SET_PARAMS of set {active}")
    elif op == "info":
        tally.check(link.info().params_crc == _crc(sets[active]), "INFO params CRC")
    return active


def _growth(samples: list[tuple[float, float]]) -> float:
    """RSS at the end minus the median of the first quarter, MB (after warm-up)."""
    if len(samples) < 4:
        return float("nan")
    first = float(np.median([m for _, m in samples[: len(samples) // 4]]))
    return samples[-1][1] - first


def _figures(t: SoakTally, elapsed: float) -> dict[str, Any]:
    lives = [life for life in t.twin_rss if len(life) >= 4]
    return {
        "seconds": round(elapsed, 1), "faults": FAULTS.describe(), "seed": SEED,
        "requests": t.ops.total(), "by_type": dict(t.ops), "reboots": t.reboots,
        "wrong_results": len(t.wrong), "wrong": t.wrong[:10],
        "windows_asked": t.windows_asked, "windows_got": t.windows_got,
        "lost_samples": t.windows_asked - t.windows_got,
        "faults_injected": t.injected, "bytes": t.bytes,
        "link": dict(t.link),
        "host_rss_mb": [round(t.host_rss[0][1], 1), round(t.host_rss[-1][1], 1)]
        if t.host_rss else [],
        "host_rss_growth_mb": round(_growth(t.host_rss), 2),
        "twin_rss_growth_mb": [round(_growth(life), 2) for life in lives],
        "twin_rss_mb": [round(life[-1][1], 1) for life in lives],
    }


def markdown(f: dict[str, Any]) -> str:
    link = f["link"]
    by_type = ", ".join(f"{k} {v}" for k, v in f["by_type"].items())
    lines = [
        f"## Soak: {f['seconds'] / 60:.1f} minutes of mixed traffic over a noisy line", "",
        f"Seed {f['seed']}, line {f['faults']} in both directions; "
        f"{f['faults_injected']} faults in {f['bytes']} bytes.", "",
        "| figure | value |", "| --- | ---: |",
        f"| requests | {f['requests']} ({by_type}) |",
        f"| device reboots | {f['reboots']} |",
        f"| wrong results | {f['wrong_results']} |",
        f"| CAPTURE windows asked / delivered | {f['windows_asked']} / {f['windows_got']} |",
        f"| re-sent at once / timeouts / windows made up | {link.get('garbled', 0)} / "
        f"{link.get('timeouts', 0)} / {link.get('lost_windows', 0)} |",
        f"| host RSS start -> end (MB) | {' -> '.join(map(str, f['host_rss_mb']))} "
        f"(growth {f['host_rss_growth_mb']} MB after warm-up) |",
        f"| twin RSS per life, end (MB) | {', '.join(map(str, f['twin_rss_mb']))} |",
        f"| twin RSS growth per life (MB) | {', '.join(map(str, f['twin_rss_growth_mb']))} |",
        "",
    ]
    lines += [f"- wrong: {w}" for w in f["wrong"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - `scripts/bench --soak` is the entry point
    figures = run(float(os.environ.get("SOAK_SECONDS", "30")))
    print(markdown(figures))
