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

from tinyfix import append_log
from tinyfix.append_log import MAGIC, AppendLog, CaptureFileError

__all__ = ["MAGIC", "CaptureFileError", "CaptureRecord", "CaptureStore", "from_bytes",
           "to_bytes"]

_RECORD_HEAD = struct.Struct("<IhII")


@dataclass(frozen=True)
class CaptureRecord:
    index: int
    label: int
    invoke_cycles: int
    fix_cycles: int
    raw: bytes
    features: bytes


def _record(payload: bytes, raw_bytes: int) -> CaptureRecord:
    index, label, inv, fix = _RECORD_HEAD.unpack_from(payload)
    rest = payload[_RECORD_HEAD.size:]
    return CaptureRecord(index, label, inv, fix, rest[:raw_bytes], rest[raw_bytes:])


def _payload(record: CaptureRecord) -> bytes:
    return (_RECORD_HEAD.pack(record.index, record.label, record.invoke_cycles,
                              record.fix_cycles) + record.raw + record.features)


def to_bytes(header: dict[str, Any], records: list[CaptureRecord]) -> bytes:
    """A whole capture file as bytes (what CaptureStore writes record by record), for a
    store written once, e.g. through fsspec."""
    return append_log.encode(header, [_payload(r) for r in records])


def from_bytes(data: bytes, source: str) -> tuple[dict[str, Any], dict[int, CaptureRecord]]:
    """(header, records by sample index) of a capture file read into memory; `source`
    names it in errors (CaptureFileError).

    A file read whole can tell a torn tail from damage: a torn last record is shorter than
    a whole one, so more unread bytes than one record after the last good one mean a
    damaged record (e.g. a length field) in the middle, an error rather than a silent
    cut."""
    header, payloads = append_log.decode(data, source, _RECORD_HEAD.size)
    try:
        raw_bytes = int(header["raw_bytes"])
    except (KeyError, TypeError, ValueError):
        raise CaptureFileError(f"{source}: the header has no raw_bytes") from None
    (hlen,) = struct.unpack_from("<I", data, len(MAGIC))
    read = len(MAGIC) + 4 + hlen + sum(8 + len(p) for p in payloads)
    whole = 8 + max((len(p) for p in payloads), default=_RECORD_HEAD.size + raw_bytes)
    if len(data) - read >= whole:
        raise CaptureFileError(f"{source}: record {len(payloads)} (at byte {read}) is "
                               f"damaged; {len(data) - read} bytes after it cannot be read")
    records = {}
    for payload in payloads:
        record = _record(payload, raw_bytes)
        records[record.index] = record
    return header, records


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
            record = _record(payload, raw_bytes)
            self.records[record.index] = record

    def append(self, record: CaptureRecord) -> None:
        self._log.append(_payload(record))
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
