# SPDX-License-Identifier: Apache-2.0
"""COBS exactly as tinyfix_wire.c does it (no trailing 0x01 after a final full block)."""

from __future__ import annotations

from tinyfix.wire.errors import FrameError
from tinyfix.wire.protocol import Status

_FULL = 254


def encode(data: bytes) -> bytes:
    """COBS-encode `data`; the result contains no 0x00 and no delimiters."""
    out = bytearray()
    runs = bytes(data).split(b"\x00")
    last = len(runs) - 1
    for i, run in enumerate(runs):
        full, rest = divmod(len(run), _FULL)
        for k in range(full):
            out.append(0xFF)
            out += run[k * _FULL : (k + 1) * _FULL]
        # A run ending the data exactly on a full block needs no closing block.
        if rest or i < last or not run:
            out.append(rest + 1)
            out += run[full * _FULL :]
    return bytes(out)


def decode_partial(data: bytes) -> tuple[bytes, bool]:
    """Decode as far as possible: (bytes decoded, True if the block structure was complete).

    The partial output is byte for byte what the C receiver has stored when it meets the
    same error, so both report the same header.
    """
    out = bytearray()
    i = 0
    n = len(data)
    prev = 0
    while i < n:
        code = data[i]
        if code == 0:
            return bytes(out), False
        if i > 0 and prev != 0xFF:
            out.append(0)
        block = data[i + 1 : i + code]
        out += block
        if len(block) < code - 1 or 0 in block:
            return bytes(out), False
        i += code
        prev = code
    return bytes(out), True


def decode(data: bytes) -> bytes:
    """Decode one COBS sequence (without delimiters); FrameError if it is malformed."""
    out, complete = decode_partial(data)
    if not complete:
        raise FrameError(Status.ERR_FRAMING, "COBS error: a block is cut short or holds 0x00")
    return out
