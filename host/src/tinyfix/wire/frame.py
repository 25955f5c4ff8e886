# SPDX-License-Identifier: Apache-2.0
"""Frames: header + payload + CRC32, COBS-encoded between 0x00 delimiters.

`FrameDecoder` is the host's twin of the C receiver (tinyfix_wire_rx_feed): the same
outcome, counter and header for every byte stream, which the tests check side by side.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from tinyfix.wire import cobs
from tinyfix.wire.errors import FrameError
from tinyfix.wire.protocol import (
    CRC_LEN,
    HDR_LEN,
    MAX_FRAME_LIMIT,
    OVERHEAD,
    VERSION,
    Flag,
    Status,
    cobs_max,
)

_HDR = struct.Struct("<BBHB")
_CRC = struct.Struct("<I")


@dataclass(frozen=True)
class Header:
    version: int
    type: int
    seq: int
    flags: int


@dataclass(frozen=True)
class Frame:
    """A valid frame. `crc` is its trailer (0 until the frame has been through the wire)."""

    type: int
    seq: int
    flags: int = 0
    payload: bytes = b""
    version: int = VERSION
    crc: int = 0

    @property
    def is_response(self) -> bool:
        return bool(self.flags & Flag.RESPONSE)

    def body(self) -> bytes:
        """Header + payload + CRC, before COBS."""
        head = _HDR.pack(self.version, self.type, self.seq, self.flags) + bytes(self.payload)
        return head + _CRC.pack(zlib.crc32(head))

    def encode(self) -> bytes:
        """The bytes to send: 0x00, COBS(body), 0x00."""
        return encode_frame(self.type, self.seq, self.flags, self.payload, version=self.version)


@dataclass(frozen=True)
class BadFrame:
    """A dropped frame: `status` says why; `header` is set if its 5 header bytes decoded."""

    status: int
    header: Header | None


def encode_frame(
    msg_type: int, seq: int, flags: int = 0, payload: bytes = b"", *, version: int = VERSION
) -> bytes:
    """Build the wire bytes of one frame, identical to tinyfix_wire_frame_build()."""
    if len(payload) > MAX_FRAME_LIMIT - OVERHEAD:
        raise FrameError(Status.ERR_TOO_LONG, f"payload of {len(payload)} bytes cannot be framed")
    head = _HDR.pack(version, msg_type, seq & 0xFFFF, flags) + bytes(payload)
    body = head + _CRC.pack(zlib.crc32(head))
    return b"\x00" + cobs.encode(body) + b"\x00"


def _header(body: bytes) -> Header | None:
    if len(body) < HDR_LEN:
        return None
    return Header(*_HDR.unpack_from(body))


def parse_body(body: bytes) -> Frame:
    """Check a decoded body's length and CRC; FrameError if either is wrong."""
    if len(body) < OVERHEAD:
        raise FrameError(Status.ERR_FRAMING, f"frame of {len(body)} bytes is too short")
    (crc,) = _CRC.unpack_from(body, len(body) - CRC_LEN)
    if zlib.crc32(body[:-CRC_LEN]) != crc:
        raise FrameError(Status.ERR_CRC, "frame CRC mismatch")
    version, msg_type, seq, flags = _HDR.unpack_from(body)
    return Frame(msg_type, seq, flags, bytes(body[HDR_LEN:-CRC_LEN]), version, crc)


def decode_frame(wire: bytes) -> Frame:
    """Decode exactly one frame (delimiters optional); FrameError if it is not valid."""
    return parse_body(cobs.decode(bytes(wire).strip(b"\x00")))


class FrameDecoder:
    """Incremental receiver: feed any chunk of bytes, get the frames and bad frames in it."""

    def __init__(self, max_frame: int = MAX_FRAME_LIMIT) -> None:
        if not OVERHEAD <= max_frame <= MAX_FRAME_LIMIT:
            raise ValueError(f"max_frame must be in {OVERHEAD}..{MAX_FRAME_LIMIT}")
        self.max_frame = max_frame
        # Past this many encoded bytes the body is certainly longer than max_frame.
        self._raw_limit = cobs_max(max_frame) + 2
        self._raw = bytearray()
        self._overflow = False
        self.frames_ok = 0
        self.crc_errors = 0
        self.framing_errors = 0

    @property
    def partial(self) -> bool:
        """Whether bytes of an unfinished frame are buffered."""
        return bool(self._raw) or self._overflow

    def reset(self) -> None:
        """Drop a partial frame; counters are kept."""
        self._raw.clear()
        self._overflow = False

    def feed(self, data: bytes) -> list[Frame | BadFrame]:
        events: list[Frame | BadFrame] = []
        data = bytes(data)
        start = 0
        while True:
            end = data.find(0, start)
            if not self._overflow:
                self._raw += data[start : len(data) if end < 0 else end]
                if len(self._raw) > self._raw_limit:
                    self._overflow = True
                    del self._raw[16:]  # enough to decode the header from
            if end < 0:
                return events
            event = self._finish()
            if event is not None:
                events.append(event)
            self.reset()
            start = end + 1

    def _finish(self) -> Frame | BadFrame | None:
        if not self._raw and not self._overflow:
            return None
        body, complete = cobs.decode_partial(bytes(self._raw))
        if self._overflow or len(body) > self.max_frame:
            self.framing_errors += 1
            return BadFrame(Status.ERR_TOO_LONG, _header(body))
        if not complete:
            self.framing_errors += 1
            return BadFrame(Status.ERR_FRAMING, _header(body))
        try:
            frame = parse_body(body)
        except FrameError as err:
            if err.status == Status.ERR_CRC:
                self.crc_errors += 1
            else:
                self.framing_errors += 1
            return BadFrame(err.status, _header(body))
        self.frames_ok += 1
        return frame
