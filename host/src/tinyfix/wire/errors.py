# SPDX-License-Identifier: Apache-2.0
"""Exceptions of the wire layer; each says what failed in words a user can act on."""

from __future__ import annotations

from tinyfix.errors import TinyfixError


class WireError(TinyfixError):
    """Base of every link and protocol failure."""


class FrameError(WireError):
    """A frame failed to decode (COBS, length or CRC); `status` is the ERR_* code."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class PayloadError(WireError):
    """A message payload does not match its layout in docs/protocol.md."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class FrameTooLarge(WireError):
    """A request would exceed the largest frame the device accepts."""


class LinkIOError(WireError):
    """Reading from or writing to the port failed."""


class LinkTimeout(WireError):
    """No valid answer after every attempt."""

    def __init__(self, detail: str, *, msg_type: int, seq: int, attempts: int) -> None:
        super().__init__(detail)
        self.msg_type = msg_type
        self.seq = seq
        self.attempts = attempts


class ProtocolVersionError(WireError):
    """The device speaks another protocol version."""

    def __init__(self, device_version: int, host_version: int) -> None:
        super().__init__(
            f"the device speaks wire protocol v{device_version}, this host speaks "
            f"v{host_version}; update the firmware or the host tool so they match"
        )
        self.device_version = device_version
        self.host_version = host_version


class DeviceError(WireError):
    """The device answered ERROR, or a response carried a non-zero status."""

    def __init__(self, detail: str, *, status: int, msg_type: int = 0, seq: int = 0) -> None:
        super().__init__(detail)
        self.status = status
        self.msg_type = msg_type
        self.seq = seq


class ParamsRejected(DeviceError):
    """SET_PARAMS was refused; the device keeps `active_crc`."""

    def __init__(self, detail: str, *, status: int, active_crc: int, seq: int = 0) -> None:
        super().__init__(detail, status=status, msg_type=0x05, seq=seq)
        self.active_crc = active_crc
