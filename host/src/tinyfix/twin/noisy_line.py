# SPDX-License-Identifier: Apache-2.0
"""A fault-injecting line between the host and a device: a TCP proxy in front of a serial
port (the twin's pty, or a board) that flips bits, drops and duplicates bytes at set rates.

    proxy = NoisyLine(twin.port, LineFaults(bit_flips=1e-3), seed=7)
    url = proxy.start()          # socket://127.0.0.1:PORT, for --port or open_device()

The faults are drawn from a seeded generator per direction, so a run is repeatable up to the
way the bytes happen to be chunked. Used by the noisy-line benchmark, the soak and the tests;
`python -m tinyfix.twin --noise` serves one in front of the simulated device.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import tty
from dataclasses import dataclass, field

import numpy as np

from tinyfix.errors import TinyfixError

CHUNK = 4096
POLL_S = 0.05


@dataclass(frozen=True)
class LineFaults:
    """Per-byte probabilities, applied independently to each direction."""

    bit_flips: float = 0.0  # one bit of the byte inverted
    drops: float = 0.0  # the byte never arrives
    duplicates: float = 0.0  # the byte arrives twice

    def __post_init__(self) -> None:
        for name in ("bit_flips", "drops", "duplicates"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability, got {value}")

    @property
    def clean(self) -> bool:
        return self.bit_flips == self.drops == self.duplicates == 0.0

    def describe(self) -> str:
        parts = [f"{label} {value:g}/byte" for label, value in
                 (("bit flips", self.bit_flips), ("drops", self.drops),
                  ("duplicates", self.duplicates)) if value]
        return ", ".join(parts) or "clean"


@dataclass
class FaultCounts:
    bytes: int = 0
    flipped: int = 0
    dropped: int = 0
    duplicated: int = 0


@dataclass
class Corrupter:
    """Applies LineFaults to a byte stream, counting what it did."""

    faults: LineFaults
    rng: np.random.Generator
    counts: FaultCounts = field(default_factory=FaultCounts)

    def __call__(self, data: bytes) -> bytes:
        self.counts.bytes += len(data)
        if self.faults.clean or not data:
            return data
        buf = np.frombuffer(data, dtype=np.uint8).copy()
        n = len(buf)
        flips = np.flatnonzero(self.rng.random(n) < self.faults.bit_flips)
        if len(flips):
            buf[flips] ^= (1 << self.rng.integers(0, 8, len(flips))).astype(np.uint8)
        drop = self.rng.random(n) < self.faults.drops
        dup = self.rng.random(n) < self.faults.duplicates
        self.counts.flipped += len(flips)
        self.counts.dropped += int(drop.sum())
        self.counts.duplicated += int((dup & ~drop).sum())
        repeats = np.where(drop, 0, np.where(dup, 2, 1))
        return np.repeat(buf, repeats).tobytes()


class NoisyLine:
    """Serves one TCP client at a time and relays it to `device_path` through Corrupters.

    Args:
        device_path: a serial device or pty path the proxy opens raw (the twin's port).
        faults: what happens to the bytes; `to_device` overrides it for host-to-device.
        seed: seeds both directions' generators.
    """

    def __init__(self, device_path: str, faults: LineFaults, *, seed: int = 0,
                 to_device: LineFaults | None = None) -> None:
        self.device_path = device_path
        rng = np.random.default_rng(seed)
        self.to_host = Corrupter(faults, np.random.default_rng(rng.integers(2**63)))
        self.to_device = Corrupter(to_device or faults,
                                   np.random.default_rng(rng.integers(2**63)))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._device = -1
        self.url = ""
        self.error: BaseException | None = None

    def start(self) -> str:
        if self._thread is not None:
            raise TinyfixError("the noisy line is already running")
        try:
            self._device = os.open(self.device_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            with contextlib.suppress(OSError):  # a plain file or socket is not a tty
                tty.setraw(self._device)
        except OSError as err:
            raise TinyfixError(f"noisy line: cannot open {self.device_path}: {err}") from err
        listener = socket.create_server(("127.0.0.1", 0))
        listener.setblocking(False)
        self._listener = listener
        self.url = f"socket://127.0.0.1:{listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, name="noisy-line", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._device >= 0:
            os.close(self._device)
            self._device = -1

    def __enter__(self) -> NoisyLine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        assert self._listener is not None
        client: socket.socket | None = None
        try:
            while not self._stop.is_set():
                watch = [self._listener, self._device] + ([client] if client else [])
                ready, _, _ = select.select(watch, [], [], POLL_S)
                if self._listener in ready:
                    new, _ = self._listener.accept()
                    new.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    if client is not None:
                        client.close()  # a reconnecting host replaces the old one
                    client = new
                if self._device in ready:
                    data = _read_fd(self._device)
                    if data and client is not None:
                        with contextlib.suppress(OSError):
                            client.sendall(self.to_host(data))
                if client is not None and client in ready:
                    try:
                        data = client.recv(CHUNK)
                    except OSError:
                        data = b""
                    if not data:
                        client.close()
                        client = None
                        continue
                    _write_fd(self._device, self.to_device(data), self._stop)
        except BaseException as err:  # reported to whoever reads .error
            self.error = err
        finally:
            if client is not None:
                client.close()


def _read_fd(fd: int) -> bytes:
    try:
        return os.read(fd, CHUNK)
    except (BlockingIOError, InterruptedError):
        return b""
    except OSError:  # a pty without a reader on the other side reports EIO
        return b""


def _write_fd(fd: int, data: bytes, stop: threading.Event) -> None:
    view = memoryview(data)
    while view and not stop.is_set():
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [], POLL_S)
