# SPDX-License-Identifier: Apache-2.0
"""The guided capture's session file: every kept sensor window, with the model's raw output
and features and its label, is on disk before the next one is asked for; an undo or an
event mark is a record too. A rerun of the same command resumes the session.

An append_log.AppendLog whose header names the model, the mode and the sizes, with records
    kind u8 = 1 (window): u32 seq, i16 label (-1: none), u32 device t_ms, input window
        bytes (float32 in real units), raw output bytes, feature bytes;
    kind u8 = 2 (undo): u32 seq of the window taken back;
    kind u8 = 3 (event start), 4 (event end): u32 device t_ms, i16 label.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tinyfix.append_log import AppendLog, CaptureFileError

_KIND = struct.Struct("<B")
_WINDOW = struct.Struct("<BIhI")
_UNDO = struct.Struct("<BI")
_MARK = struct.Struct("<BIh")
WINDOW, UNDO, START, END = 1, 2, 3, 4
NO_LABEL = -1


@dataclass(frozen=True)
class Kept:
    seq: int
    label: int
    t_ms: int
    x: NDArray[np.float32]
    raw: bytes
    features: bytes


@dataclass(frozen=True)
class Mark:
    t_ms: int
    label: int
    start: bool


class SessionStore:
    """`header` must carry "input_shape" (list) and "raw_bytes"; it also names the model
    CRC and the mode, so a file from another session is refused."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self.shape = tuple(int(d) for d in header["input_shape"])
        self._x_bytes = 4 * int(np.prod(self.shape))
        self._raw_bytes = int(header["raw_bytes"])
        self._log = AppendLog(path, header, _KIND.size)
        self.windows: dict[int, Kept] = {}
        self.marks: list[Mark] = []
        self._next = 0
        for payload in self._log.payloads:
            self._apply(payload)

    def _apply(self, payload: bytes) -> None:
        kind = payload[0]
        if kind == WINDOW and len(payload) >= _WINDOW.size + self._x_bytes + self._raw_bytes:
            _, seq, label, t_ms = _WINDOW.unpack_from(payload)
            rest = payload[_WINDOW.size:]
            x = np.frombuffer(rest[:self._x_bytes], dtype="<f4").reshape(self.shape).copy()
            raw = rest[self._x_bytes:self._x_bytes + self._raw_bytes]
            self.windows[seq] = Kept(seq, label, t_ms, x, raw,
                                     rest[self._x_bytes + self._raw_bytes:])
            self._next = max(self._next, seq + 1)
        elif kind == UNDO and len(payload) == _UNDO.size:
            self.windows.pop(_UNDO.unpack(payload)[1], None)
        elif kind in (START, END) and len(payload) == _MARK.size:
            _, t_ms, label = _MARK.unpack(payload)
            self.marks.append(Mark(t_ms, label, kind == START))
        else:
            raise CaptureFileError(f"{self.path}: a record of kind {kind} and "
                                   f"{len(payload)} bytes is not a session record")

    def _append(self, payload: bytes) -> None:
        self._log.append(payload)
        self._apply(payload)

    def keep(self, label: int, t_ms: int, x: NDArray, raw: bytes, features: bytes) -> Kept:
        x32 = np.ascontiguousarray(x, dtype="<f4")
        if x32.shape != self.shape:
            raise CaptureFileError(f"a window of shape {x32.shape}, the session's is "
                                   f"{self.shape}")
        seq = self._next
        self._append(_WINDOW.pack(WINDOW, seq, label, t_ms & 0xFFFFFFFF) + x32.tobytes()
                     + bytes(raw) + bytes(features))
        return self.windows[seq]

    def undo(self, seq: int) -> None:
        self._append(_UNDO.pack(UNDO, seq))

    def mark(self, t_ms: int, label: int, start: bool) -> None:
        self._append(_MARK.pack(START if start else END, t_ms & 0xFFFFFFFF, label))

    def kept(self) -> list[Kept]:
        return [self.windows[s] for s in sorted(self.windows)]

    def count(self, label: int) -> int:
        return sum(1 for w in self.windows.values() if w.label == label)

    def last_of(self, label: int) -> Kept | None:
        mine = [w for w in self.windows.values() if w.label == label]
        return max(mine, key=lambda w: w.seq) if mine else None

    def close(self) -> None:
        self._log.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
