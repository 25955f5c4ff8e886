# SPDX-License-Identifier: Apache-2.0
"""`--smp` addresses: serial:///dev/ttyACM0[?baud=115200], udp://host[:port], ble://NAME."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from tinyfix.errors import TinyfixError

UDP_PORT = 1337  # MCUmgr's CONFIG_MCUMGR_TRANSPORT_UDP_PORT default


@dataclass(frozen=True)
class SmpAddress:
    scheme: str  # serial | udp | ble
    target: str  # device path, host, or BLE name/address
    port: int = UDP_PORT
    baudrate: int = 115200

    def __str__(self) -> str:
        if self.scheme == "udp":
            return f"udp://{self.target}:{self.port}"
        return f"{self.scheme}://{self.target}"


def parse(url: str) -> SmpAddress:
    """Parse an SMP address; a clear error names the accepted forms."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if parts.scheme == "serial" and (parts.path or parts.netloc):
        baud = int(query.get("baud", ["115200"])[0])
        return SmpAddress("serial", parts.netloc + parts.path, baudrate=baud)
    if parts.scheme == "udp" and parts.hostname:
        return SmpAddress("udp", parts.hostname, port=parts.port or UDP_PORT)
    if parts.scheme == "ble" and (parts.netloc or parts.path):
        return SmpAddress("ble", parts.netloc or parts.path.lstrip("/"))
    raise TinyfixError(
        f"--smp {url!r}: use serial:///dev/ttyACM0[?baud=N], udp://HOST[:PORT] or ble://NAME")
