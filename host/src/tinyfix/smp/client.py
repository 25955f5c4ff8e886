# SPDX-License-Identifier: Apache-2.0
"""A blocking handle on one device's TinyFix MCUmgr group, over smpclient.

    with open_device("udp://127.0.0.1:1337") as dev:
        dev.info(); dev.push_params(blob); dev.stats(); dev.capture(100)

smpclient is asynchronous; the handle keeps one event loop and one connection for its life.
Chunked transfers follow image upload: each write's answer says where the next chunk goes,
so a lost answer costs one repeat and no chunk is applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from smp import error as smperror
from smpclient import SMPClient
from smpclient.exceptions import SMPUploadError
from smpclient.generics import error, success
from smpclient.transport.udp import SMPUDPTransport

from tinyfix.smp import group
from tinyfix.smp.errors import SmpGroupError, SmpTransportError, describe_rc
from tinyfix.smp.url import SmpAddress, parse

# Bytes of a parameter chunk per write: fits the smallest default MCUmgr buffer (384 bytes
# of CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE) with the header and the other keys.
PARAMS_CHUNK = 256


@dataclass(frozen=True)
class CaptureRecord:
    t_ms: int
    raw: bytes
    features: bytes


class _UdpTransport(SMPUDPTransport):
    """smpclient's UDP transport on a port other than 1337 (several devices on one host)."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self._port = port

    async def connect(self, address: str, timeout_s: float, port: int = 0) -> None:
        await super().connect(address, timeout_s, port or self._port)


def _transport(addr: SmpAddress) -> Any:
    if addr.scheme == "udp":
        return _UdpTransport(addr.port)
    if addr.scheme == "serial":
        from smpclient.transport.serial import SMPSerialTransport

        return SMPSerialTransport(baudrate=addr.baudrate)
    from smpclient.transport.ble import SMPBLETransport

    return SMPBLETransport()


class SmpDevice:
    """One connected device. Methods raise SmpGroupError (refused) or SmpTransportError."""

    def __init__(self, url: str, timeout_s: float = 2.5, retries: int = 3) -> None:
        self.address = parse(url)
        self._loop = asyncio.new_event_loop()
        self._retries = retries
        self._client = SMPClient(_transport(self.address), self.address.target, timeout_s)
        try:
            self._run(self._client.connect())
        except (OSError, TimeoutError, asyncio.TimeoutError) as err:
            self._loop.close()
            raise SmpTransportError(f"{self.address}: cannot connect ({err})") from err

    def close(self) -> None:
        if self._loop.is_closed():
            return
        with contextlib.suppress(Exception):  # closing a dead link is not an error
            self._run(self._client.disconnect())
        self._loop.close()

    def _run(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    def request(self, make: Callable[[], Any]) -> Any:
        """Send a request (a fresh one per attempt: each has its own sequence number)."""
        last: BaseException | None = None
        for _ in range(self._retries + 1):
            try:
                rsp = self._run(self._client.request(make()))
            except (TimeoutError, asyncio.TimeoutError, OSError) as err:
                last = err
                continue
            if success(rsp):
                return rsp
            if error(rsp):
                raise _refusal(rsp)
            raise SmpTransportError(f"{self.address}: unexpected answer {rsp!r}")
        raise SmpTransportError(f"{self.address}: no answer after {self._retries + 1} "
                                f"attempts ({last!r})")

    # The group's commands.

    def info(self) -> dict[str, Any]:
        rsp = self.request(group.InfoRead)
        return rsp.model_dump(by_alias=True, exclude={"header", "version", "sequence",
                                                      "smp_data"})

    def stats(self) -> dict[str, Any]:
        rsp = self.request(group.StatsRead)
        return rsp.model_dump(exclude={"header", "version", "sequence", "smp_data"})

    def reset_adaptation(self) -> int:
        return int(self.request(group.AdaptReset).params_crc)

    def get_params(self) -> tuple[bytes, int]:
        """The active parameter blob and its CRC, read in chunks."""
        blob = bytearray()
        total, crc = None, 0
        while total is None or len(blob) < total:
            at = len(blob)
            rsp = self.request(lambda at=at: group.ParamsRead(off=at))
            if rsp.off != len(blob):
                raise SmpTransportError(f"{self.address}: chunk at {rsp.off}, "
                                        f"asked for {len(blob)}")
            if total is not None and (rsp.len != total or rsp.crc != crc):
                # The set changed under the read: start again.
                blob.clear()
            total, crc = rsp.len, rsp.crc
            if not rsp.data and len(blob) < total:
                raise SmpTransportError(f"{self.address}: empty chunk at {len(blob)}")
            blob += rsp.data
        return bytes(blob), crc

    def push_params(self, blob: bytes, persist: bool = True) -> dict[str, Any]:
        """Upload a set; the device checks it whole, applies it and stores it.

        Returns {"crc", "persisted"}; SmpGroupError when the device refuses it.
        """
        off = 0
        stalls = 0
        while True:
            chunk = blob[off:off + PARAMS_CHUNK]
            rsp = self.request(lambda off=off, chunk=chunk: group.ParamsWrite(
                off=off, data=chunk, len=len(blob) if off == 0 else None,
                persist=None if persist else False))
            if rsp.crc is not None:
                return {"crc": int(rsp.crc), "persisted": bool(rsp.persisted)}
            # The device says where the next chunk goes (a repeat changes nothing there).
            stalls = stalls + 1 if rsp.off <= off else 0
            if stalls > self._retries or rsp.off > len(blob):
                raise SmpTransportError(f"{self.address}: upload stuck at {rsp.off} of "
                                        f"{len(blob)} bytes")
            off = rsp.off

    def capture(self, n: int, features: bool = True, poll_s: float = 0.2,
                timeout_s: float | None = None,
                progress: Callable[[int, int], None] | None = None) -> list[CaptureRecord]:
        """Have the device record its next n windows, then read them back in chunks."""
        start = self.request(lambda: group.CaptureStart(n=n, features=features))
        record, with_features = int(start.record), bool(start.features)
        info = self.info()
        n_raw = record - 4 - (int(info["features"]) if with_features else 0)
        data = bytearray()
        loop_time = self._loop.time
        deadline = None if timeout_s is None else loop_time() + timeout_s
        while len(data) < n * record:
            at = len(data)
            rsp = self.request(lambda at=at: group.CaptureRead(off=at))
            if rsp.n != n or rsp.record != record:
                raise SmpTransportError(f"{self.address}: another capture replaced this one")
            data += rsp.data
            if progress is not None:
                progress(min(rsp.done, n), n)
            if not rsp.data:
                if deadline is not None and loop_time() > deadline:
                    raise SmpTransportError(f"{self.address}: capture stalled at {rsp.done} "
                                            f"of {n} windows")
                self._run(asyncio.sleep(poll_s))
        records = []
        for i in range(n):
            rec = bytes(data[i * record:(i + 1) * record])
            records.append(CaptureRecord(int.from_bytes(rec[:4], "little"),
                                         rec[4:4 + n_raw], rec[4 + n_raw:]))
        return records


    # MCUmgr's image and OS groups, for delivering a rebuilt image (tinyfix.smp.image).

    def image_states(self) -> list[Any]:
        """The device's image slots as MCUboot reports them (slot, hash, active, ...)."""
        from smpclient.requests.image_management import ImageStatesRead

        return list(self.request(ImageStatesRead).images)

    def upload_image(self, image: bytes,
                     progress: Callable[[int, int], None] | None = None) -> None:
        """Upload a signed image to the secondary slot, resuming after a lost answer.

        A restarted upload with the same SHA-256 continues where the device stopped
        (MCUmgr's image upload keeps its session), so no chunk is written twice.
        """
        async def upload() -> None:
            async for off in self._client.upload(image):
                if progress is not None:
                    progress(off, len(image))

        for attempt in range(self._retries + 1):
            try:
                self._run(upload())
                return
            except (TimeoutError, asyncio.TimeoutError, OSError) as err:
                if attempt == self._retries:
                    raise SmpTransportError(f"{self.address}: image upload stopped "
                                            f"({err!r})") from err
            except SMPUploadError as err:
                raise SmpTransportError(f"{self.address}: image upload refused: {err}") from err

    def test_image(self, image_hash: bytes) -> None:
        """Have MCUboot boot the uploaded image once, on the next reset (not confirmed)."""
        from smpclient.requests.image_management import ImageStatesWrite

        self.request(lambda: ImageStatesWrite(hash=image_hash, confirm=False))

    def confirm_running_image(self) -> None:
        """Keep the image that runs now: MCUboot no longer reverts it."""
        from smpclient.requests.image_management import ImageStatesWrite

        self.request(lambda: ImageStatesWrite(confirm=True))

    def reset(self) -> None:
        """Restart the device (it answers first, then resets)."""
        from smpclient.requests.os_management import ResetWrite

        self.request(ResetWrite)


def _refusal(rsp: Any) -> SmpGroupError:
    if isinstance(rsp, smperror.ErrorV2):
        rc, grp = int(rsp.err.rc), int(rsp.err.group)
        text = describe_rc(rc) if grp == group.GROUP_ID else f"MCUmgr group {grp} error {rc}"
        return SmpGroupError(rc, text, grp)
    rc = int(rsp.rc)
    try:
        name = smperror.MGMT_ERR(rc).name
    except ValueError:
        name = f"MGMT error {rc}"
    return SmpGroupError(rc, f"MCUmgr: {name}", None)


@contextmanager
def open_device(url: str, timeout_s: float = 2.5) -> Iterator[SmpDevice]:
    """A connected SmpDevice for `url`, closed on exit."""
    dev = SmpDevice(url, timeout_s)
    try:
        yield dev
    finally:
        dev.close()
