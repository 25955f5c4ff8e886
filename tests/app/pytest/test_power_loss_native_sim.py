# SPDX-License-Identifier: Apache-2.0
"""Power loss while a parameter set is persisted, on native_sim (twister pytest harness).

The firmware is built with CONFIG_APP_TEST_POWER_CUT (app/src/power_cut.c): every flash
operation of the settings store after boot is one or more numbered steps (a byte written,
a sector erased) and --power_cut_at=N ends the process at once when step N would start.
The flash simulator keeps its content in a file (--flash=FILE, mapped shared), so what was
written before the cut is what the next boot finds.

For each starting flash image the test first measures the steps of one SET_PARAMS
persistence without a cut, then for kill points across all of them (and beyond): copy the
image, boot with the cut, send SET_PARAMS with the new set, see the process die at that
step, boot the same flash again without a cut and read the active set. It must be the old
set or the new one, byte for byte, with a valid CRC: never a mix, never the defaults when a
set was stored. The outcome must also be monotonic in N (old up to some step, new after),
and the recovered store must still take a new set.

Images: "update" (set A stored, room in the NVS sector), "update+gc" (set A stored, the
sector so full that the write of B closes it and garbage-collects the oldest one: the
settings name entry "tinyfix/params", without which the stored set is invisible, and the
name counter are copied out of it, then it is erased, then B is written) and
"first" (nothing stored yet: the old set is the build's defaults, here identity). Each
with clean cuts (the bytes before the cut written, none after) and torn ones
(--power_cut_torn: the byte being written at the cut is left half programmed).

zephyr.exe is started directly (two boots per cut, hundreds of cuts): twister's dut
fixture is not used. Run by twister only (scenario sample.tinyfix.app.power_loss).
"""

from __future__ import annotations

import contextlib
import queue
import re
import shutil
import struct
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import serial

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "host" / "src"))

from tinyfix.wire.errors import WireError  # noqa: E402
from tinyfix.wire.link import Link  # noqa: E402

PTY_LINE = re.compile(r"uart_1 connected to pseudotty: (/dev/pts/\d+)")
BOOT_PARAMS = re.compile(r"tinyfix: parameters 0x([0-9a-f]{8}) \((identity|corrected)\)")
FLASH_OP = re.compile(r"power cut: (write|erase) 0x([0-9a-f]+) (\d+) bytes (?:from|at) step (\d+)")
CUT_LINE = re.compile(r"power cut: at step (\d+), (write|erase) ")
ARMED = re.compile(r"power cut: (armed at step (\d+)|counting flash steps, no cut)")
# Logged by the firmware when the stored set is refused or the store cannot be read.
LOAD_ERRORS = re.compile(r"stored parameters (rejected|unreadable)|settings load failed")
CUT_EXIT = 42  # app/src/power_cut.c POWER_CUT_EXIT
# Parameter blob, format 2 (docs/params-format.md): n_classes at 12, inv_temperature at 24,
# class_scale[] at 28, then class_bias[]; the blob's CRC32 is its last 4 bytes.
BLOB_N_CLASSES = 12
BLOB_INV_TEMPERATURE = 24
BLOB_CLASS_SCALE = 28

# Kill points per image: every step of the write when it has at most this many (a run of
# two boots takes well under a second), else every operation's first, second, middle and
# last step plus evenly spread ones up to the budget.
BUDGET = {"update": 2000, "update+gc": 2000, "first": 2000}
# Beyond the write: the persistence is complete, the power goes afterwards.
BEYOND = (0, 1, 50)


@dataclass
class Op:
    kind: str  # "write" or "erase"
    offset: int
    length: int
    start: int  # first step

    @property
    def steps(self) -> int:
        return self.length if self.kind == "write" else 1


@dataclass
class Outcome:
    cut_at: int
    ended: str  # "old", "new", or a description of what else was found
    detail: str = ""


@dataclass
class Case:
    name: str
    image: Path
    old: bytes
    new: bytes
    ops: list[Op] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.ops[-1].start + self.ops[-1].steps if self.ops else 0


class Sim:
    """One run of zephyr.exe on a flash file, its console read by a thread."""

    def __init__(self, exe: Path, flash: Path, cut_at: int | None = None, torn: bool = False):
        args = [str(exe), f"--flash={flash}"]
        if cut_at is not None:
            args.append(f"--power_cut_at={cut_at}")
        if torn:
            args.append("--power_cut_torn")
        self.proc = subprocess.Popen(args, cwd=flash.parent, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, errors="replace", bufsize=1)
        self.log: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._eof = False
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()
        self.link: Link | None = None

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _next(self, timeout: float) -> str | None:
        if self._eof:
            return None
        line = self._lines.get(timeout=timeout)
        if line is None:
            self._eof = True
        else:
            self.log.append(line)
        return line

    def expect(self, regex: re.Pattern, timeout: float = 20.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._next(max(left, 0.001))
            except queue.Empty:
                line = None
                if left > 0:
                    continue
            if line is None:
                raise AssertionError(f"no {regex.pattern!r} from zephyr.exe "
                                     f"(exit {self.proc.poll()}):\n" + "\n".join(self.log[-30:]))
            m = regex.search(line)
            if m:
                return m

    def drain(self) -> list[str]:
        """Lines printed so far and not read yet."""
        got = []
        while True:
            try:
                line = self._next(0.0)
            except queue.Empty:
                return got
            if line is None:
                return got
            got.append(line)

    def boot(self) -> tuple[int, str]:
        """Waits for the link's pty and the boot parameter line; opens the link."""
        pty = self.expect(PTY_LINE).group(1)
        self.expect(ARMED)
        m = self.expect(BOOT_PARAMS)
        port = serial.Serial(pty, timeout=0.02)
        port.reset_input_buffer()
        self.link = Link(port, name=pty)
        return int(m.group(1), 16), m.group(2)

    def wait_exit(self, timeout: float = 10.0) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._pump.join(timeout=5)
        self.drain()
        return rc

    def close(self) -> None:
        if self.link is not None:
            with contextlib.suppress(OSError):
                self.link.close()
            self.link = None
        if self.proc.poll() is None:
            self.proc.kill()  # a power cut at a moment the store is idle
        self.proc.wait(timeout=10)
        self._pump.join(timeout=5)


def crc_ok(blob: bytes) -> bool:
    return len(blob) > 4 and zlib.crc32(blob[:-4]) & 0xFFFFFFFF == struct.unpack("<I",
                                                                                 blob[-4:])[0]


def with_biases(identity: bytes, biases: list[int]) -> bytes:
    blob = bytearray(identity)
    n = struct.unpack_from("<H", blob, BLOB_N_CLASSES)[0]
    assert len(biases) >= n
    for c in range(n):
        struct.pack_into("<i", blob, BLOB_CLASS_SCALE + 4 * n + 4 * c, biases[c])
    blob[-4:] = struct.pack("<I", zlib.crc32(bytes(blob[:-4])) & 0xFFFFFFFF)
    return bytes(blob)


def persist(sim: Sim, blob: bytes) -> list[Op]:
    """SET_PARAMS with persistence, no cut; the flash operations it made."""
    assert sim.link is not None
    sim.drain()
    rsp = sim.link.set_params(blob)
    assert rsp.status == 0 and rsp.persisted, rsp
    assert rsp.params_crc == struct.unpack("<I", blob[-4:])[0]
    sim.link.info()  # one more round trip: the operations' lines were printed before
    time.sleep(0.05)
    ops = []
    for line in sim.drain():
        m = FLASH_OP.search(line)
        if m:
            ops.append(Op(m.group(1), int(m.group(2), 16), int(m.group(3)), int(m.group(4))))
    return ops


def run_store(exe: Path, image: Path, blobs: list[bytes], until=None) -> list[list[Op]]:
    """Boots on image, persists each blob in turn (stops after the first whose operations
    satisfy until), powers off; the operations per blob."""
    sim = Sim(exe, image)
    done = []
    try:
        sim.boot()
        sim.link.info()
        for blob in blobs:
            done.append(persist(sim, blob))
            if until is not None and until(done[-1]):
                break
        return done
    finally:
        sim.close()


def collects_garbage(ops: list[Op]) -> bool:
    """A write that erases a sector holding entries and copies the live ones out of it:
    besides the sector's closing entry, the done marker and the new entry, copy writes."""
    return any(o.kind == "erase" for o in ops) and sum(o.kind == "write" for o in ops) > 5


def kill_points(ops: list[Op], total: int, budget: int) -> list[int]:
    if total <= budget:
        points = set(range(total))
    else:
        points = {0, total - 1}
        for op in ops:
            s, n = op.start, op.steps
            points |= {s, s + 1, s + n // 2, s + n - 1} if n > 1 else {s}
        points = {p for p in points if 0 <= p < total}
        spare = max(budget - len(points), 0)
        points |= {round(i * (total - 1) / max(spare - 1, 1)) for i in range(spare)}
    return sorted(points) + [total + b for b in BEYOND]


def cut_and_check(exe: Path, case: Case, n: int, spare: bytes, work: Path,
                  torn: bool) -> Outcome:
    flash = work / f"{case.name}-{n}.bin"
    shutil.copyfile(case.image, flash)
    try:
        sim = Sim(exe, flash, cut_at=n, torn=torn)
        try:
            sim.boot()
            sim.link.info()
            # The process may die in the middle of the request: no long waits, no re-sends.
            sim.link.timeouts = {t: 2.0 for t in sim.link.timeouts}
            sim.link.retries = 0
            try:
                rsp = sim.link.set_params(case.new)
                answered = rsp.status == 0 and rsp.persisted
            except (WireError, OSError):
                answered = False
            if n < case.total:
                assert not answered, f"cut at {n} of {case.total}: SET_PARAMS was answered"
                rc = sim.wait_exit()
                assert rc == CUT_EXIT, f"cut at {n}: exit {rc}\n" + "\n".join(sim.log[-20:])
                cut = [m for m in map(CUT_LINE.search, sim.log) if m]
                assert cut and int(cut[0].group(1)) == n, "\n".join(sim.log[-20:])
            else:
                assert answered, f"no cut at {n} of {case.total}: SET_PARAMS failed"
        finally:
            sim.close()

        sim = Sim(exe, flash)
        try:
            crc, kind = sim.boot()
            info = sim.link.info()
            active = sim.link.get_params()
            sim.drain()
            errors = [line for line in sim.log if LOAD_ERRORS.search(line)]
            if active == case.old:
                ended = "old"
            elif active == case.new:
                ended = "new"
            elif not crc_ok(active):
                ended = "a mix (its CRC is wrong)"
            elif kind == "identity":
                ended = "the defaults (identity)"
            else:
                ended = "another set"
            detail = (f"boot crc 0x{crc:08x} ({kind}), INFO 0x{info.params_crc:08x}, "
                      f"blob crc {'valid' if crc_ok(active) else 'INVALID'}, "
                      f"{len(active)} bytes; {'; '.join(errors) or 'no load error'}")
            if ended in ("old", "new"):
                want = struct.unpack("<I", active[-4:])[0]
                if crc != want or info.params_crc != want or not crc_ok(active) or errors:
                    ended = f"{ended}, inconsistent"
                # The store recovered: it takes another set.
                rsp = sim.link.set_params(spare)
                if not (rsp.status == 0 and rsp.persisted):
                    ended = f"{ended}, store no longer persists"
            return Outcome(n, ended, detail)
        finally:
            sim.close()
    finally:
        flash.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def exe(request) -> Path:
    path = Path(request.config.option.build_dir) / "zephyr" / "zephyr.exe"
    assert path.is_file(), f"{path}: no native_sim build"
    return path


@pytest.fixture(scope="module")
def cases(exe: Path, tmp_path_factory) -> dict[str, Case]:
    work = tmp_path_factory.mktemp("power_loss")
    empty = work / "empty.bin"  # created and erased by the flash simulator
    sim = Sim(exe, empty)
    try:
        _, kind = sim.boot()
        assert kind == "identity", "this build's defaults are expected to be identity"
        identity = sim.link.get_params()
    finally:
        sim.close()
    assert crc_ok(identity)
    n = struct.unpack_from("<H", identity, BLOB_N_CLASSES)[0]
    # The layout above: identity has temperature and scales 1.0 (Q16.16), biases 0.
    assert struct.unpack_from(f"<{1 + 2 * n}i", identity, BLOB_INV_TEMPERATURE) == (
        (65536,) * (1 + n) + (0,) * n)
    set_a = with_biases(identity, [(c + 1) * 16384 for c in range(n)])
    set_b = with_biases(identity, [-(c + 1) * 16384 for c in range(n)])
    set_c = with_biases(identity, [(c + 5) * 65536 for c in range(n)])
    assert len({identity, set_a, set_b, set_c}) == 4

    first = work / "first.bin"
    shutil.copyfile(empty, first)
    update = work / "update.bin"
    shutil.copyfile(empty, update)
    run_store(exe, update, [set_a])

    # The write that garbage-collects a used NVS sector (it holds the settings name entries,
    # which gc must move): persist B, A, B, ... on a copy until one does.
    probe = work / "probe.bin"
    shutil.copyfile(update, probe)
    trial = [set_b if i % 2 == 0 else set_a for i in range(400)]
    per_write = run_store(exe, probe, trial, until=collects_garbage)
    probe.unlink()
    g = len(per_write) - 1
    assert collects_garbage(per_write[g]), f"{len(trial)} persistences never collected garbage"
    # g writes before it, the last of them A, none equal to the one before (NVS skips those).
    seq = [set_a if (g - 1 - i) % 2 == 0 else set_b for i in range(g)]
    if seq and seq[0] == set_a:
        seq[0] = set_c
    gc = work / "gc.bin"
    shutil.copyfile(update, gc)
    run_store(exe, gc, seq)

    found = {
        "update": Case("update", update, set_a, set_b),
        "update+gc": Case("update+gc", gc, set_a, set_b),
        "first": Case("first", first, identity, set_a),
    }
    for case in found.values():
        probe = work / f"measure-{case.name}.bin"
        shutil.copyfile(case.image, probe)
        case.ops = run_store(exe, probe, [case.new])[0]
        probe.unlink()
        assert case.ops and case.ops[0].start == 0, case.name
        # The steps are contiguous: nothing of the write escaped the count.
        for a, b in zip(case.ops, case.ops[1:], strict=False):
            assert b.start == a.start + a.steps, (case.name, a, b)
    assert not any(o.kind == "erase" for o in found["update"].ops)
    assert collects_garbage(found["update+gc"].ops)
    found["spare"] = set_c  # type: ignore[assignment]
    return found


def describe(ops: list[Op]) -> str:
    writes = [o for o in ops if o.kind == "write"]
    erases = [o for o in ops if o.kind == "erase"]
    return (f"{len(writes)} flash writes of {sum(o.length for o in writes)} bytes "
            f"({', '.join(str(o.length) for o in writes)}), {len(erases)} sector erases")


@pytest.mark.parametrize("torn", [False, True], ids=["clean", "torn"])
@pytest.mark.parametrize("name", ["update", "update+gc", "first"])
def test_power_cut_during_persistence_leaves_the_old_or_the_new_set(name, torn, cases, exe,
                                                                    tmp_path):
    case: Case = cases[name]
    spare: bytes = cases["spare"]  # type: ignore[assignment]
    points = kill_points(case.ops, case.total, BUDGET[name])
    outcomes = [cut_and_check(exe, case, n, spare, tmp_path, torn) for n in points]

    old = [o.cut_at for o in outcomes if o.ended == "old"]
    new = [o.cut_at for o in outcomes if o.ended == "new"]
    bad = [o for o in outcomes if o.ended not in ("old", "new")]
    switch = min(new) if new else None
    kind = "torn" if torn else "clean"
    print(f"\npower loss [{name}, {kind} cuts]: one persistence = {case.total} steps, "
          f"{describe(case.ops)}; "
          f"{len(outcomes)} cuts at steps 0..{points[-1]}: {len(old)} ended on the old set, "
          f"{len(new)} on the new one, {len(bad)} on anything else; "
          f"the new set from step {switch}")
    assert not bad, "\n".join(f"cut at {o.cut_at}: {o.ended}: {o.detail}" for o in bad[:10])
    # Monotonic: once a cut leaves the new set, every later cut does.
    assert switch is not None and max(old) < switch, (old, new)
    # Nothing written: the old set. The whole write done: the new set.
    assert 0 in old and case.total in new
    # The new set appears only once its last byte is on flash: the NVS entry (data, then
    # its allocation table entry with CRC8) completes it, so not before the final write.
    assert switch >= case.ops[-1].start, (switch, case.ops[-1])
