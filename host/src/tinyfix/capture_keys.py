# SPDX-License-Identifier: Apache-2.0
"""Single key presses for the guided capture: from the terminal (cbreak mode, no Enter
needed), from a pipe (one character at a time, e.g. a script), or from a fixed sequence
(tests, `--keys`).

    with terminal_keys() as keys:
        key = keys.wait()          # blocks for one key
        key = keys.poll(0.1)       # a key, or None after 0.1 s
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
from collections.abc import Iterator
from typing import Protocol

ENTER = "\n"


class Keys(Protocol):
    def wait(self) -> str:
        """The next key; "q" when the input has ended."""
        ...

    def poll(self, timeout: float) -> str | None:
        """The next key if one arrives within `timeout` seconds, else None."""
        ...


class ScriptedKeys:
    """Keys from a fixed sequence; "q" once it is used up. In a stream, `poll` hands out one
    key per call, "." meaning "no key this time"."""

    def __init__(self, sequence: str) -> None:
        self._keys = list(sequence)

    def wait(self) -> str:
        while self._keys:
            key = self._keys.pop(0)
            if key != ".":
                return _normal(key)
        return "q"

    def poll(self, timeout: float) -> str | None:
        if not self._keys:
            return None
        key = self._keys.pop(0)
        return None if key == "." else _normal(key)

    @property
    def used_up(self) -> bool:
        return not self._keys


class StreamKeys:
    """Keys from a file descriptor: a terminal in cbreak mode, or a pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._ended = False

    def _read(self) -> str:
        data = os.read(self.fd, 1)
        if not data:
            self._ended = True
            return "q"
        return _normal(data.decode(errors="replace"))

    def wait(self) -> str:
        if self._ended:
            return "q"
        return self._read()

    def poll(self, timeout: float) -> str | None:
        if self._ended:
            return None
        ready, _, _ = select.select([self.fd], [], [], timeout)
        return self._read() if ready else None


def _normal(key: str) -> str:
    return ENTER if key in ("\r", "\n") else key.lower()


@contextlib.contextmanager
def terminal_keys() -> Iterator[Keys]:
    """Keys from stdin; a terminal is put in cbreak mode (keys arrive without Enter and are
    not echoed) and restored on exit, also after Ctrl-C."""
    fd = sys.stdin.fileno()
    if not os.isatty(fd):
        yield StreamKeys(fd)
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield StreamKeys(fd)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
