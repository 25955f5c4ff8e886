# SPDX-License-Identifier: Apache-2.0
"""Append-only capture file: every sample the device answers is on disk before the next
request goes out, so a pulled cable or Ctrl-C loses nothing and a rerun resumes.

Layout of `<name>.tfcap`:
    magic "TFCAP1\\n", u32 header length, header (JSON: model CRC, data fingerprint,
    output/feature sizes), then records: u32 payload length, payload, u32 CRC32(payload).
    payload = u32 sample index, i16 label, u32 invoke cycles, u32 tinyfix cycles,
              raw output bytes, feature bytes.
A torn last record (the process died while writing it) is dropped on open; any other
damage is an error, never silently skipped.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from tinyfix.errors import TinyfixError

MAGIC = b"TFCAP1\n"
_RECORD_HEAD = struct.Struct("<IhII")


class CaptureFileError(TinyfixError):
    """The capture file is damaged or belongs to another model or data set."""


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
        self.records: dict[int, CaptureRecord] = {}
        self._file: BinaryIO
        if path.exists() and path.stat().st_size > 0:
            self._open_existing()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("wb")
            blob = json.dumps(header, sort_keys=True).encode()
            self._file.write(MAGIC + struct.pack("<I", len(blob)) + blob)
            self._sync()

    def _open_existing(self) -> None:
        with self.path.open("rb") as f:
            data = f.read()
        if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
            raise CaptureFileError(f"{self.path}: not a TinyFix capture file")
        (hlen,) = struct.unpack_from("<I", data, len(MAGIC))
        pos = len(MAGIC) + 4 + hlen
        try:
            stored = json.loads(data[len(MAGIC) + 4:pos])
        except ValueError as exc:
            raise CaptureFileError(f"{self.path}: damaged header ({exc})") from exc
        if stored != self.header:
            diff = sorted(k for k in set(stored) | set(self.header)
                          if stored.get(k) != self.header.get(k))
            raise CaptureFileError(
                f"{self.path} was captured with other settings ({', '.join(diff)} differ); "
                "use another --out folder or delete the file to start over")
        good_end = pos
        for record, end in _parse_records(data, pos, self.path, int(self.header["raw_bytes"])):
            self.records[record.index] = record
            good_end = end
        self._file = self.path.open("r+b")
        self._file.truncate(good_end)  # drop a torn tail record
        self._file.seek(good_end)

    def append(self, record: CaptureRecord) -> None:
        payload = _RECORD_HEAD.pack(record.index, record.label, record.invoke_cycles,
                                    record.fix_cycles) + record.raw + record.features
        self._file.write(struct.pack("<I", len(payload)) + payload +
                         struct.pack("<I", zlib.crc32(payload)))
        self._sync()
        self.records[record.index] = record

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    @property
    def done(self) -> set[int]:
        return set(self.records)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CaptureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse_records(data: bytes, pos: int, path: Path,
                   raw_bytes: int) -> Iterator[tuple[CaptureRecord, int]]:
    while pos < len(data):
        if pos + 4 > len(data):
            return  # torn length field
        (n,) = struct.unpack_from("<I", data, pos)
        end = pos + 4 + n + 4
        if end > len(data):
            return  # torn record
        payload = data[pos + 4:pos + 4 + n]
        (crc,) = struct.unpack_from("<I", data, pos + 4 + n)
        if zlib.crc32(payload) != crc or n < _RECORD_HEAD.size:
            if end == len(data):
                return  # last record half-written before a crash
            raise CaptureFileError(f"{path}: record at byte {pos} is damaged")
        index, label, inv, fix = _RECORD_HEAD.unpack_from(payload)
        rest = payload[_RECORD_HEAD.size:]
        yield CaptureRecord(index, label, inv, fix, rest[:raw_bytes], rest[raw_bytes:]), end
        pos = end

