# SPDX-License-Identifier: Apache-2.0
"""Request/response over any pyserial-like port, with retries and timeouts.

The port only needs `write(bytes)`, `read(n)` that returns within `port.timeout` seconds,
and a settable `timeout`; `in_waiting`, `baudrate` and `close()` are used when present.
Ports are opened elsewhere (serial.serial_for_url for a device path or a URL such as
`loop://` or `socket://`); the Link never opens one.

Retry rule (docs/protocol.md section 3.1): a timeout or a retryable ERROR (CRC, framing,
busy) re-sends the identical frame with the same seq, so the device can recognise the
repeat and answer it from its kept response instead of executing it twice.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from tinyfix.wire.errors import (
    DeviceError,
    FrameTooLarge,
    LinkIOError,
    LinkTimeout,
    ParamsRejected,
    PayloadError,
    ProtocolVersionError,
    WireError,
)
from tinyfix.wire.frame import Frame, FrameDecoder, encode_frame
from tinyfix.wire.messages import (
    CaptureRequest,
    CaptureResponse,
    ErrorResponse,
    GetParamsRequest,
    GetParamsResponse,
    InferRequest,
    InferResponse,
    InfoRequest,
    InfoResponse,
    Message,
    ReadRequest,
    ReadResponse,
    SetParamsRequest,
    SetParamsResponse,
    StatsRequest,
    StatsResponse,
    WriteRequest,
    WriteResponse,
    decode_message,
)
from tinyfix.wire.protocol import (
    MAX_FRAME_LIMIT,
    MIN_FRAME,
    OVERHEAD,
    READ_RSP_FIXED,
    RETRYABLE,
    VERSION,
    WRITE_REQ_FIXED,
    Cap,
    DType,
    Flag,
    MsgType,
    Status,
    Target,
    describe_status,
    wire_max,
)

# Device execution allowance per request type, seconds (docs/protocol.md section 3.1).
DEFAULT_TIMEOUTS: Mapping[MsgType, float] = {
    MsgType.INFO: 1.0,
    MsgType.STATS: 1.0,
    MsgType.GET_PARAMS: 1.0,
    MsgType.SET_PARAMS: 3.0,
    MsgType.INFER: 2.0,
    MsgType.CAPTURE: 5.0,
    MsgType.WRITE: 1.0,
    MsgType.READ: 1.0,
}
DEFAULT_RETRIES = 3
BUSY_BACKOFF_S = 0.05
POLL_S = 0.02

R = TypeVar("R", bound=Message)


class Port(Protocol):
    timeout: float | None

    def write(self, data: bytes, /) -> Any: ...

    def read(self, size: int = 1, /) -> bytes: ...


@dataclass
class LinkStats:
    """Host-side counters, for progress displays and link utilisation."""

    bytes_tx: int = 0
    bytes_rx: int = 0
    requests: int = 0
    retries: int = 0
    timeouts: int = 0
    ignored_frames: int = 0
    crc_errors: int = 0
    framing_errors: int = 0


class Link:
    """One host end of the wire protocol. Not thread-safe: one request at a time.

    Args:
        port: an open pyserial-like object.
        timeout: if given, the device allowance for every request type, seconds;
            otherwise DEFAULT_TIMEOUTS. The transfer time at the port's baud rate is added.
        retries: re-sends after the first attempt.
        seq: first sequence number (random if None, so a restarted host rarely reuses one).
        max_frame: largest frame the device accepts; updated by info().
        name: how the port is named in messages (defaults to its `port` attribute).
        clock, sleep: injectable for tests.
    """

    def __init__(
        self,
        port: Port,
        *,
        timeout: float | None = None,
        retries: int = DEFAULT_RETRIES,
        seq: int | None = None,
        max_frame: int = MIN_FRAME,
        name: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.port = port
        self.timeouts = {t: timeout for t in DEFAULT_TIMEOUTS} if timeout is not None else dict(
            DEFAULT_TIMEOUTS
        )
        self.retries = retries
        self.max_frame = max_frame
        self.name = name or str(getattr(port, "port", None) or getattr(port, "name", "port"))
        self.stats = LinkStats()
        self.device: InfoResponse | None = None
        self._seq = random.randrange(0x10000) if seq is None else seq & 0xFFFF
        self._decoder = FrameDecoder(MAX_FRAME_LIMIT)
        self._pending: deque[Frame] = deque()
        self._clock = clock
        self._sleep = sleep
        # Reads poll in short steps so deadlines hold; None (block) or 0 (spin) would not.
        current = getattr(port, "timeout", None)
        if not current or current > POLL_S:
            port.timeout = POLL_S

    @property
    def next_seq(self) -> int:
        """The seq the next request will carry."""
        return self._seq

    def close(self) -> None:
        close = getattr(self.port, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Typed helpers, one per message.

    def info(self) -> InfoResponse:
        """Read INFO, check the protocol version, and adopt the device's max_frame."""
        rsp = self.request(InfoRequest(), InfoResponse)
        if rsp.proto_version != VERSION:
            raise ProtocolVersionError(rsp.proto_version, VERSION)
        self.max_frame = max(OVERHEAD, min(rsp.max_frame, MAX_FRAME_LIMIT))
        self.device = rsp
        return rsp

    @property
    def chunks(self) -> bool:
        """Whether the device (as of its INFO) takes WRITE and READ."""
        return self.device is not None and bool(self.device.caps & Cap.CHUNKS)

    def fits(self, payload_len: int) -> bool:
        """Whether a payload of this many bytes fits one frame of this device."""
        return payload_len + OVERHEAD <= self.max_frame

    def infer(
        self, input: bytes, *, label: int = -1, features: bool = False, reset: bool = False,
        reset_model: bool = False
    ) -> InferResponse:
        """Run one input; an input beyond one frame is written into the device's input
        tensor first (WRITE), and outputs or features beyond one frame are read after.
        `reset` starts the core's run-time state afresh, `reset_model` the model's own."""
        req = InferRequest(bytes(input), label, features, reset, reset_model=reset_model)
        if not self.fits(2 + len(input)):
            self._need_chunks(f"an input of {len(input)} bytes")
            self.write_object(Target.INPUT, bytes(input))
            req = InferRequest(b"", label, features, reset, staged=True,
                               reset_model=reset_model)
        rsp = self.request(req, InferResponse)
        if rsp.status != 0 or not (rsp.raw_deferred or rsp.features_deferred):
            return rsp
        raw = self.read_object(Target.OUTPUT) if rsp.raw_deferred else rsp.raw
        feats = self.read_object(Target.FEATURES) if rsp.features_deferred else rsp.features
        return rsp.with_tensors(raw, feats)

    def _need_chunks(self, what: str) -> None:
        if not self.chunks:
            raise FrameTooLarge(
                f"{what} exceeds the device's frame limit of {self.max_frame} bytes and the "
                f"device on {self.name} cannot take it in chunks (no WRITE/READ)"
                + ("" if self.device is not None else " (read INFO first)"))

    def write_object(self, target: int, data: bytes) -> None:
        """Stage `data` on the device with WRITE chunks. The device says after every chunk
        how far it got, so a lost, repeated or late chunk costs a resend, never a gap or a
        chunk applied twice."""
        total = len(data)
        if total == 0:
            raise WireError("cannot WRITE an empty object")
        room = self.max_frame - OVERHEAD - WRITE_REQ_FIXED
        offset, stalls = 0, 0
        while True:
            piece = data[offset:offset + room]
            rsp = self.request(WriteRequest(target, offset, total, piece), WriteResponse)
            if rsp.total != total or rsp.next > total:
                raise WireError(f"WRITE to {self.name}: the device reports {rsp.next} of "
                                f"{rsp.total} bytes for an object of {total}")
            if rsp.next == total:
                return
            if rsp.next == offset + len(piece):
                stalls = 0
            else:
                stalls += 1  # the device missed a chunk (or kept an older transfer)
                if stalls > self.retries:
                    raise WireError(f"WRITE to {self.name} makes no progress at byte "
                                    f"{rsp.next} of {total}")
            offset = rsp.next

    def read_object(self, target: int) -> bytes:
        """Read a whole object (the active parameter set, the last raw output or features)
        in READ chunks."""
        room = self.max_frame - OVERHEAD - READ_RSP_FIXED
        out = bytearray()
        total: int | None = None
        while total is None or len(out) < total:
            rsp = self.request(ReadRequest(target, len(out), room), ReadResponse)
            if rsp.offset != len(out) or (total is not None and rsp.total != total):
                raise WireError(f"READ from {self.name}: got bytes at {rsp.offset} of "
                                f"{rsp.total}, asked for {len(out)}")
            total = rsp.total
            if not rsp.data and len(out) < total:
                raise WireError(f"READ from {self.name} returned no data at byte {len(out)}")
            out += rsp.data
        return bytes(out[:total])

    def capture(
        self, count: int, dtype: int = DType.FLOAT32, *, timeout: float | None = None
    ) -> Iterator[CaptureResponse]:
        """Yield `count` sensor windows as they arrive (fewer if some are lost)."""
        seen: set[int] = set()
        for rsp in self._exchange(CaptureRequest(count, dtype), timeout, None):
            assert isinstance(rsp, CaptureResponse)
            if rsp.index not in seen:  # a repeat may re-send the last window
                seen.add(rsp.index)
                yield rsp

    def get_params(self) -> bytes:
        """The active parameter blob (READ in chunks when the device can)."""
        if self.chunks:
            return self.read_object(Target.PARAMS)
        return self.request(GetParamsRequest(), GetParamsResponse).blob

    def set_params(self, blob: bytes, *, persist: bool = True) -> SetParamsResponse:
        """Send a parameter blob (staged with WRITE when it exceeds a frame); the device
        checks it whole before it replaces the active set. ParamsRejected (with the
        device's code) if refused."""
        req = SetParamsRequest(bytes(blob), persist)
        if not self.fits(len(blob)):
            self._need_chunks(f"a parameter set of {len(blob)} bytes")
            if self.device is not None and 0 < self.device.max_params < len(blob):
                raise FrameTooLarge(
                    f"the parameter set of {len(blob)} bytes exceeds the {self.device.max_params}"
                    f" bytes the device on {self.name} stages (a larger build, e.g. "
                    "CONFIG_TINYFIX_MAX_HEAD_WEIGHTS, or a smaller head budget)")
            self.write_object(Target.PARAMS, bytes(blob))
            req = SetParamsRequest(b"", persist, staged=True)
        seq = self._seq
        rsp = self.request(req, SetParamsResponse)
        if rsp.status != 0:
            raise ParamsRejected(
                f"the device on {self.name} rejected the parameters: "
                f"{describe_status(rsp.status)}; it keeps parameter set 0x{rsp.params_crc:08x}",
                status=rsp.status, active_crc=rsp.params_crc, seq=seq,
            )
        return rsp

    def device_stats(self) -> StatsResponse:
        return self.request(StatsRequest(), StatsResponse)

    # Generic request path.

    def request(
        self,
        msg: Message,
        expect: type[R] | None = None,
        *,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> R:
        """Send one request and return its response message (type `expect` if given)."""
        for rsp in self._exchange(msg, timeout, retries):
            if expect is not None and not isinstance(rsp, expect):
                raise WireError(f"expected {expect.__name__}, got {type(rsp).__name__}")
            return rsp  # type: ignore[return-value]
        raise AssertionError("unreachable: _exchange yields or raises")

    def _timeout_for(self, msg: Message, wire_len: int, override: float | None) -> float:
        allowance = override if override is not None else self.timeouts[msg.TYPE]
        baud = getattr(self.port, "baudrate", None)
        if isinstance(baud, int) and baud > 0:
            allowance += 10 * (wire_len + wire_max(self.max_frame)) / baud
        return allowance

    def _exchange(
        self, msg: Message, timeout: float | None, retries: int | None
    ) -> Iterator[Message]:
        seq = self._seq
        self._seq = (self._seq + 1) & 0xFFFF
        payload = msg.encode()
        if len(payload) + OVERHEAD > self.max_frame:
            raise FrameTooLarge(
                f"{msg.TYPE.name} request of {len(payload) + OVERHEAD} bytes exceeds the "
                f"device's frame limit of {self.max_frame} bytes"
                + ("" if self.max_frame > MIN_FRAME else " (read INFO first)")
            )
        wire = encode_frame(msg.TYPE, seq, msg.flags(), payload)
        wait = self._timeout_for(msg, len(wire), timeout)
        budget = self.retries if retries is None else retries
        self.stats.requests += 1

        attempts = 0
        last_error: ErrorResponse | None = None
        while attempts <= budget:
            if attempts:
                self.stats.retries += 1
            attempts += 1
            self._write(wire)
            deadline = self._clock() + wait
            while True:
                frame = self._wait_frame(seq, deadline)
                if frame is None:
                    self.stats.timeouts += 1
                    last_error = None
                    break
                if frame.type == MsgType.ERROR:
                    err = ErrorResponse.decode(frame.payload)
                    if err.status not in RETRYABLE:
                        raise self._device_error(msg, seq, err)
                    last_error = err
                    if err.status == Status.ERR_BUSY:
                        self._sleep(BUSY_BACKOFF_S * attempts)
                    break
                if frame.type != msg.TYPE:
                    raise WireError(
                        f"the device on {self.name} answered {msg.TYPE.name} seq {seq} with "
                        f"message type 0x{frame.type:02x}"
                    )
                try:
                    rsp = decode_message(frame)
                except PayloadError as err:
                    raise WireError(f"{msg.TYPE.name} response from {self.name}: {err}") from err
                yield rsp
                if not frame.flags & Flag.MORE:
                    return
                # A stream that makes progress earns a fresh timeout and retry budget.
                attempts = 0
                deadline = self._clock() + wait
        if last_error is not None:
            raise self._device_error(msg, seq, last_error)
        raise LinkTimeout(
            f"no answer to {msg.TYPE.name} (seq {seq}) from {self.name} after {attempts} "
            f"attempt{'s' if attempts != 1 else ''} of {wait:.2f} s; is the device running "
            "the TinyFix firmware and is the baud rate right?",
            msg_type=int(msg.TYPE), seq=seq, attempts=attempts,
        )

    def _device_error(self, msg: Message, seq: int, err: ErrorResponse) -> WireError:
        if err.status == Status.ERR_VERSION:
            return WireError(
                f"the device on {self.name} does not support wire protocol v{VERSION}"
                + (f": {err.text}" if err.text else "")
            )
        detail = f"the device on {self.name} refused {msg.TYPE.name}: {describe_status(err.status)}"
        if err.text:
            detail += f": {err.text}"
        return DeviceError(detail, status=err.status, msg_type=int(msg.TYPE), seq=seq)

    def _write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            flush = getattr(self.port, "flush", None)
            if flush is not None:
                flush()
        except OSError as err:
            raise LinkIOError(f"cannot write to {self.name}: {err}") from err
        self.stats.bytes_tx += len(data)

    def _wait_frame(self, seq: int, deadline: float) -> Frame | None:
        """The next response frame for `seq`, or None at the deadline."""
        while True:
            while self._pending:
                frame = self._pending.popleft()
                if not frame.flags & Flag.RESPONSE or frame.seq != seq:
                    self.stats.ignored_frames += 1
                    continue
                if frame.version != VERSION:
                    raise ProtocolVersionError(frame.version, VERSION)
                return frame
            if self._clock() >= deadline:
                return None
            self._receive()

    def _receive(self) -> None:
        try:
            waiting = getattr(self.port, "in_waiting", 0)
            data = self.port.read(max(1, int(waiting or 0)))
        except OSError as err:
            raise LinkIOError(f"cannot read from {self.name}: {err}") from err
        if not data:
            return
        self.stats.bytes_rx += len(data)
        for event in self._decoder.feed(data):
            if isinstance(event, Frame):
                self._pending.append(event)
        self.stats.crc_errors = self._decoder.crc_errors
        self.stats.framing_errors = self._decoder.framing_errors
