# SPDX-License-Identifier: Apache-2.0
"""Append-only capture file: every sample the device answers is on disk before the next
request goes out, so a pulled cable or Ctrl-C loses nothing and a rerun resumes.

`<name>.tfcap` is an append_log.AppendLog (header: model CRC, data fingerprint,
output/feature sizes) whose records are
    u32 sample index, i16 label, u32 invoke cycles, u32 tinyfix cycles,
    raw output bytes, feature bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyfix.append_log import MAGIC, AppendLog, CaptureFileError

__all__ = ["MAGIC", "CaptureFileError", "CaptureRecord", "CaptureStore"]

_RECORD_HEAD = struct.Struct("<IhII")


@dataclass(frozen=True)
class CaptureRecord:
    index: int
    label: int
    invoke_cycles: int
    fix_cycles: int
    raw: bytes
    features: bytes


class CaptureStore:
    """Open (or create) a capture file bound to `header`; `done` holds captured indices.

    `header` must carry "raw_bytes" (size of one raw output tensor) and whatever identifies
    the run (model CRC, data fingerprint): a file with another header is refused.
    """

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self._log = AppendLog(path, header, _RECORD_HEAD.size)
        raw_bytes = int(header["raw_bytes"])
        self.records: dict[int, CaptureRecord] = {}
        for payload in self._log.payloads:
            index, label, inv, fix = _RECORD_HEAD.unpack_from(payload)
            rest = payload[_RECORD_HEAD.size:]
            self.records[index] = CaptureRecord(index, label, inv, fix, rest[:raw_bytes],
                                                rest[raw_bytes:])

    def append(self, record: CaptureRecord) -> None:
        self._log.append(_RECORD_HEAD.pack(record.index, record.label, record.invoke_cycles,
                                           record.fix_cycles) + record.raw + record.features)
        self.records[record.index] = record

    @property
    def done(self) -> set[int]:
        return set(self.records)

    def close(self) -> None:
        self._log.close()

    def __enter__(self) -> CaptureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
