# SPDX-License-Identifier: Apache-2.0
"""An append-only file of checksummed records bound to a JSON header: every record is on
disk (fsync) before the caller goes on, so a pulled cable, Ctrl-C or a crash loses nothing
and a rerun resumes. The capture file (capture_store) and the guided session file
(session_store) are both such logs.

Layout: magic "TFCAP1\\n", u32 header length, header (JSON, sorted keys), then records:
u32 payload length, payload, u32 CRC32(payload). A torn last record (the process died
while writing it) is dropped on open; any other damage is an error, never silently skipped.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from tinyfix.errors import TinyfixError

MAGIC = b"TFCAP1\n"


class CaptureFileError(TinyfixError):
    """The file is damaged or belongs to another model, data set or session."""


class AppendLog:
    """Open (or create) the log at `path` bound to `header`; a file with another header is
    refused, naming the keys that differ. `payloads` are the records found on open."""

    def __init__(self, path: Path, header: dict[str, Any], min_payload: int = 0) -> None:
        self.path = path
        self.header = header
        self.payloads: list[bytes] = []
        self._file: BinaryIO
        if path.exists() and path.stat().st_size > 0:
            self._open_existing(min_payload)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("wb")
            blob = json.dumps(header, sort_keys=True).encode()
            self._file.write(MAGIC + struct.pack("<I", len(blob)) + blob)
            self._sync()

    def _open_existing(self, min_payload: int) -> None:
        data = self.path.read_bytes()
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
        for payload, end in _payloads(data, pos, self.path, min_payload):
            self.payloads.append(payload)
            good_end = end
        self._file = self.path.open("r+b")
        self._file.truncate(good_end)  # drop a torn tail record
        self._file.seek(good_end)

    def append(self, payload: bytes) -> None:
        self._file.write(struct.pack("<I", len(payload)) + payload +
                         struct.pack("<I", zlib.crc32(payload)))
        self._sync()

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def encode(header: dict[str, Any], payloads: list[bytes]) -> bytes:
    """A whole log as bytes, laid out as AppendLog writes it (for stores that cannot
    append, such as object storage: the file is written once)."""
    blob = json.dumps(header, sort_keys=True).encode()
    parts = [MAGIC, struct.pack("<I", len(blob)), blob]
    for payload in payloads:
        parts += [struct.pack("<I", len(payload)), payload,
                  struct.pack("<I", zlib.crc32(payload))]
    return b"".join(parts)


def decode(data: bytes, source: str, min_payload: int = 0
           ) -> tuple[dict[str, Any], list[bytes]]:
    """(header, payloads) of a whole log read into memory; a torn last record is dropped
    as on open, any other damage is a CaptureFileError naming `source`."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise CaptureFileError(f"{source}: not a TinyFix capture file")
    (hlen,) = struct.unpack_from("<I", data, len(MAGIC))
    pos = len(MAGIC) + 4 + hlen
    try:
        header = json.loads(data[len(MAGIC) + 4:pos])
    except ValueError as exc:
        raise CaptureFileError(f"{source}: damaged header ({exc})") from exc
    if not isinstance(header, dict):
        raise CaptureFileError(f"{source}: damaged header (not a JSON object)")
    payloads = [p for p, _ in _payloads(data, pos, Path(source), min_payload)]
    return header, payloads


def _payloads(data: bytes, pos: int, path: Path, min_payload: int
              ) -> Iterator[tuple[bytes, int]]:
    while pos < len(data):
        if pos + 4 > len(data):
            return  # torn length field
        (n,) = struct.unpack_from("<I", data, pos)
        end = pos + 4 + n + 4
        if end > len(data):
            return  # torn record
        payload = data[pos + 4:pos + 4 + n]
        (crc,) = struct.unpack_from("<I", data, pos + 4 + n)
        if zlib.crc32(payload) != crc or n < min_payload:
            if end == len(data):
                return  # last record half-written before a crash
            raise CaptureFileError(f"{path}: record at byte {pos} is damaged")
        yield payload, end
        pos = end
