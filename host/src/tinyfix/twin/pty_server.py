# SPDX-License-Identifier: Apache-2.0
"""A pseudo-terminal served by a background thread: the twin's UART.

The host opens the slave side (/dev/pts/N) exactly as it opens a board's /dev/ttyACM0, so
`serial.serial_for_url(path)` exercises the real serial path. The server keeps its own
handle on the slave side, so a host may close and reopen the port while the twin runs.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty
from collections.abc import Callable

from tinyfix.errors import TinyfixError

READ_CHUNK = 4096
POLL_S = 0.05


class PtyServer:
    """Calls `handler(bytes)` for everything the host writes; `write()` answers it."""

    def __init__(self, handler: Callable[[bytes], None], name: str = "tinyfix-twin") -> None:
        self._handler = handler
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fds: list[int] = []
        self._master = -1
        self.path = ""
        self.error: BaseException | None = None

    def start(self) -> str:
        """Open the pty and start serving; returns the device path for the host."""
        if self._thread is not None:
            raise TinyfixError("the pty server is already running")
        master, slave = os.openpty()
        wake_r, wake_w = os.pipe()
        self._fds = [master, slave, wake_r, wake_w]
        try:
            tty.setraw(slave)  # no echo, no line editing, no CR/LF translation
            os.set_blocking(master, False)
            self.path = os.ttyname(slave)
        except OSError as err:
            self._close_fds()
            raise TinyfixError(f"cannot set up a pseudo-terminal: {err}") from err
        self._master = master
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, args=(wake_r,), name=self._name,
                                        daemon=True)
        self._thread.start()
        return self.path

    def write(self, data: bytes) -> None:
        """Send bytes to the host; gives up only when the server stops."""
        view = memoryview(data)
        while view and not self._stop.is_set():
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                select.select([], [self._master], [], POLL_S)
                continue
            view = view[n:]

    def stop(self) -> None:
        """Stop the thread and close every descriptor; safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            with contextlib.suppress(OSError):
                os.write(self._fds[3], b"x")
            self._thread.join()
            self._thread = None
        self._close_fds()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _close_fds(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []
        self._master = -1

    def _serve(self, wake: int) -> None:
        master = self._master
        while not self._stop.is_set():
            ready, _, _ = select.select([master, wake], [], [])
            if wake in ready or self._stop.is_set():
                return
            try:
                data = os.read(master, READ_CHUNK)
            except BlockingIOError:
                continue
            except OSError as err:  # the slave side went away for good
                self.error = err
                return
            if data:
                try:
                    self._handler(data)
                except Exception as err:
                    # A device does not die from one bad request; keep the first error.
                    if self.error is None:
                        self.error = err
