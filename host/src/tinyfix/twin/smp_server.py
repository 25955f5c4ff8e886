# SPDX-License-Identifier: Apache-2.0
"""The twin's MCUmgr face: SMP over UDP, executed by the firmware's own group code.

The TinyFix group's requests go to modules/tinyfix/src/smp/tinyfix_smp.c (through cffi, on
the twin's device link, under its lock), so the host client is tested against the C that
runs on the device. The server itself is only SMP's framing: one datagram, one request, as
Zephyr's UDP transport does; it also answers MCUmgr's parameters read (smpclient asks for it
on connect) and echo. CAPTURE records the windows the twin classifies on its own while a
capture wants them, as the firmware's local inference loop does.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import cbor2
from smp import header as smpheader

from tinyfix.smp.group import GROUP_ID
from tinyfix.wire.protocol import DType

if TYPE_CHECKING:
    from tinyfix.twin.twin import Twin

log = logging.getLogger(__name__)

BUF_SIZE = 1024  # CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE of the native_sim build
BUF_COUNT = 4
CHUNK_MAX = 256
CAPTURE_BYTES = 64 * 1024
MGMT_ERR_ENOTSUP = 8
OS_GROUP, OS_ECHO, OS_MCUMGR_PARAMS = 0, 0, 6


class SmpServer:
    """Serve `twin`'s TinyFix group on UDP 127.0.0.1:`port` (0: any free port)."""

    def __init__(self, twin: Twin, port: int = 0, host: str = "127.0.0.1") -> None:
        self.twin = twin
        disp = twin.dispatcher
        self._ffi, self._lib, self._lock = disp._ffi, disp._lib, disp._lock
        self._smp = self._ffi.new("struct tinyfix_smp *")
        self._capture = self._ffi.new("uint8_t[]", CAPTURE_BYTES)
        has_capture = twin.sensor is not None
        err = self._lib.tinyfix_smp_init(self._smp, disp.link,
                                         self._capture if has_capture else self._ffi.NULL,
                                         CAPTURE_BYTES if has_capture else 0, CHUNK_MAX)
        if err != 0:
            raise RuntimeError(f"tinyfix_smp_init failed ({err})")
        self._rsp = self._ffi.new("uint8_t[]", BUF_SIZE)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, port))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads = [threading.Thread(target=self._serve, daemon=True,
                                          name=f"tinyfix-twin-smp-{self.port}"),
                         threading.Thread(target=self._local_inference, daemon=True,
                                          name=f"tinyfix-twin-local-{self.port}")]
        self.error: BaseException | None = None
        # Other MCUmgr groups a test adds (a simulated MCUboot's image group): group id ->
        # handler(command, write, payload) returning the CBOR body, or None for "not mine".
        self.extra_groups: dict[int, Callable[[int, bool, bytes], bytes | None]] = {}
        self._offline_until = 0.0

    def go_offline(self, seconds: float) -> None:
        """Answer nothing for a while, as a device does while it resets and boots."""
        self._offline_until = time.monotonic() + seconds

    @property
    def url(self) -> str:
        return f"udp://127.0.0.1:{self.port}"

    def start(self) -> str:
        for t in self._threads:
            t.start()
        return self.url

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=2)
        self._sock.close()

    def handle(self, request: bytes) -> bytes | None:
        """One SMP request datagram in, its response out (None: not an SMP request)."""
        if len(request) < smpheader.Header.SIZE:
            return None
        hdr = smpheader.Header.loads(request[:smpheader.Header.SIZE])
        payload = request[smpheader.Header.SIZE:smpheader.Header.SIZE + hdr.length]
        if hdr.op not in (smpheader.OP.READ, smpheader.OP.WRITE) or len(payload) != hdr.length:
            return None
        write = hdr.op == smpheader.OP.WRITE
        group, cmd = int(hdr.group_id), int(hdr.command_id)
        extra = self.extra_groups.get(group)
        body = extra(cmd, write, payload) if extra is not None else None
        if body is None:
            body = self._builtin(group, cmd, write, payload)
        rsp = smpheader.Header(
            op=smpheader.OP.WRITE_RSP if write else smpheader.OP.READ_RSP,
            version=hdr.version, flags=hdr.flags, length=len(body), group_id=hdr.group_id,
            sequence=hdr.sequence, command_id=hdr.command_id)
        return bytes(rsp) + body

    def _builtin(self, group: int, cmd: int, write: bool, payload: bytes) -> bytes:
        """The TinyFix group, and the OS group's MCUmgr parameters and echo."""
        if group == GROUP_ID:
            return self._group(cmd, write, payload)
        if group == OS_GROUP and cmd == OS_MCUMGR_PARAMS:
            return cbor2.dumps({"buf_size": BUF_SIZE, "buf_count": BUF_COUNT})
        if group == OS_GROUP and cmd == OS_ECHO:
            return cbor2.dumps({"r": cbor2.loads(payload).get("d", "")})
        return cbor2.dumps({"rc": MGMT_ERR_ENOTSUP})

    def _group(self, cmd: int, write: bool, payload: bytes) -> bytes:
        with self._lock:
            n = self._lib.tinyfix_smp_handle_buf(self._smp, GROUP_ID, cmd, write, payload,
                                                 len(payload), self._rsp, BUF_SIZE)
            body = bytes(self._ffi.buffer(self._rsp, n)) if n >= 0 else None
            wanted = bool(self._lib.tinyfix_smp_capture_wanted(self._smp))
        if wanted:
            self._wake.set()
        return body if body is not None else cbor2.dumps({"rc": -n})

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                request, peer = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError as err:
                if not self._stop.is_set():
                    self.error = err
                return
            if time.monotonic() < self._offline_until:
                continue
            try:
                response = self.handle(request)
            except Exception as err:
                log.warning("twin SMP: request dropped: %s", err)
                continue
            if response is not None:
                self._sock.sendto(response, peer)

    def _local_inference(self) -> None:
        # The firmware's main loop: classify sensor windows, offer each to a capture.
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            while not self._stop.is_set():
                with self._lock:
                    if not self._lib.tinyfix_smp_capture_wanted(self._smp):
                        break
                try:
                    self._record_one()
                except Exception as err:
                    self.error = err
                    return

    def _record_one(self) -> None:
        twin = self.twin
        with self._lock:
            window = twin._capture(DType.INT8)
        want = twin.dispatcher.ops.info.feature.n_elements > 0
        out = twin._invoke(window.values, want)
        ffi = self._ffi
        feats: Any = ffi.from_buffer("int8_t[]", out.features) if want else ffi.NULL
        with self._lock:
            self._lib.tinyfix_smp_capture_record(self._smp, window.t_ms & 0xFFFFFFFF,
                                                 ffi.from_buffer("uint8_t[]", out.raw), feats)
