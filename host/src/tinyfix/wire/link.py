# SPDX-License-Identifier: Apache-2.0
"""Request/response over any pyserial-like port, with retries and timeouts.

The port only needs `write(bytes)`, `read(n)` that returns within `port.timeout` seconds,
and a settable `timeout`; `in_waiting`, `baudrate` and `close()` are used when present.
Ports are opened elsewhere (serial.serial_for_url for a device path or a URL such as
`loop://` or `socket://`); the Link never opens one.

Retry rule (docs/protocol.md section 3.1): the identical frame is re-sent with the same seq,
so the device can recognise the repeat and answer it from its kept response instead of
executing it twice. A garbled exchange (a response that fails its CRC or framing, a response
whose end never came, or the device's link-level ERROR for a garbled request) is re-sent at
once, from its own larger budget: on a noisy line it is common and costs one round trip. A
timeout or ERR_BUSY is rare, costs a retry of the small budget and backs off.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
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
# Immediate re-sends of one request for garbled exchanges. At one flipped bit per 1,000 bytes
# a full 1 kB frame is garbled more often than not (63%); 33 in a row happens once in 10^7.
GARBLE_RETRIES = 32
BUSY_BACKOFF_S = 0.05
POLL_S = 0.02
# A device sends each frame in one burst: a partial frame that stays silent this long (plus
# 20 character times at the port's baud rate) probably lost its end delimiter. Long enough
# for a loaded host or a USB bridge to pause inside a frame, rare enough to cost little.
IDLE_GAP_S = 0.1
NOISY_BACKOFF_S = 0.1
# Link-level ERRORs: the device could not read a request (its seq may be garbled too).
LINK_ERRORS = frozenset({Status.ERR_CRC, Status.ERR_FRAMING, Status.ERR_TOO_LONG})
# The frames a noisy line carries. At an error rate p per byte a frame of n bytes comes
# through with probability (1 - p)^n: a 3 kB INFER at p = 1e-3 almost never arrives. Once a
# few exchanges were garbled, objects that can go in chunks (WRITE/READ) go in frames that
# arrive three times in four, n = ln(4/3) / p, never below the floor. (p is estimated as
# garbled exchanges per byte, which reads low when large frames carry several errors each;
# aiming at three in four rather than one in two leaves room for that.)
MIN_LINE_FRAME = 256
LINE_ESTIMATE_AFTER = 8
# After the closing delimiter, one more: a corrupted last byte still ends the frame on the
# device, which then answers ERR_CRC at once instead of waiting for the next frame.
TRAILER = b"\x00"

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
    garbled: int = 0
    ignored_frames: int = 0
    crc_errors: int = 0
    framing_errors: int = 0
    lost_ends: int = 0
    lost_windows: int = 0


class Link:
    """One host end of the wire protocol. Not thread-safe: one request at a time.

    Args:
        port: an open pyserial-like object.
        timeout: if given, the device allowance for every request type, seconds;
            otherwise DEFAULT_TIMEOUTS. The transfer time at the port's baud rate is added.
        retries: re-sends after a timeout or ERR_BUSY.
        garble_retries: immediate re-sends after garbled exchanges, per request.
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
        garble_retries: int = GARBLE_RETRIES,
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
        self.garble_retries = garble_retries
        self.max_frame = max_frame
        self.name = name or str(getattr(port, "port", None) or getattr(port, "name", "port"))
        self.stats = LinkStats()
        self.device: InfoResponse | None = None
        self._seq = random.randrange(0x10000) if seq is None else seq & 0xFFFF
        self._decoder = FrameDecoder(MAX_FRAME_LIMIT)
        self._pending: deque[Frame] = deque()
        # When a bad frame or link-level ERROR arrived since the last send (else None).
        self._garbled_at: float | None = None
        self._link_error_seen: ErrorResponse | None = None
        self._last_rx = 0.0
        self._abandoned = False  # the partial frame was given up on after the idle gap
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

    @property
    def line_frame(self) -> int:
        """The largest frame worth sending on this line: the device's max_frame, or less
        when the line garbles large frames (estimated from the garbled exchanges per byte
        so far)."""
        s = self.stats
        if s.garbled < LINE_ESTIMATE_AFTER:
            return self.max_frame
        per_byte = s.garbled / max(1, s.bytes_tx + s.bytes_rx)
        carried = int(math.log(4 / 3) / per_byte)
        return max(min(MIN_LINE_FRAME, self.max_frame), min(self.max_frame, carried))

    def _inline(self, payload_len: int) -> bool:
        """Whether to send this payload in one frame rather than in chunks: it fits the
        device, and the line (when the device can take chunks at all)."""
        return self.fits(payload_len) and not (
            self.chunks and payload_len + OVERHEAD > self.line_frame)

    def infer(
        self, input: bytes, *, label: int = -1, features: bool = False, reset: bool = False,
        reset_model: bool = False
    ) -> InferResponse:
        """Run one input; an input beyond one frame is written into the device's input
        tensor first (WRITE), and outputs or features beyond one frame are read after.
        `reset` starts the core's run-time state afresh, `reset_model` the model's own."""
        req = InferRequest(bytes(input), label, features, reset, reset_model=reset_model)
        if not self._inline(2 + len(input)):
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
        room = self.line_frame - OVERHEAD - WRITE_REQ_FIXED
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
        room = self.line_frame - OVERHEAD - READ_RSP_FIXED
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
        """Yield `count` sensor windows as they arrive, indexed 0..count-1 in arrival order.
        A window lost on the line (a garbled frame inside a stream cannot be re-sent, the
        device keeps only the last) is made up for with a new CAPTURE for the rest."""
        delivered = 0
        for _ in range(self.retries + 1):
            seen: set[int] = set()
            request = CaptureRequest(count - delivered, dtype)
            for rsp in self._exchange(request, timeout, None):
                assert isinstance(rsp, CaptureResponse)
                if rsp.index in seen:  # a repeat re-sends the last window
                    continue
                seen.add(rsp.index)
                yield replace(rsp, index=delivered, count=count)
                delivered += 1
            if delivered >= count:
                return
            self.stats.lost_windows += request.count - len(seen)
        raise WireError(f"CAPTURE from {self.name}: {count - delivered} of {count} windows "
                        "were lost on the line, even after asking again")

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
        if not self._inline(len(blob)):
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
        wire = encode_frame(msg.TYPE, seq, msg.flags(), payload) + TRAILER
        wait = self._timeout_for(msg, len(wire), timeout)
        budget = self.retries if retries is None else retries
        self.stats.requests += 1

        attempts = 0
        garbles = 0
        noisy = False
        patience = 0.0  # inside a stream: wait for the idle gap before taking a bad frame
        last_error: ErrorResponse | None = None
        while attempts <= budget:
            if attempts:
                self.stats.retries += 1
            attempts += 1
            self._send(wire)
            deadline = self._clock() + wait
            while True:
                frame = self._wait_frame(seq, deadline, patience)
                if frame is None:
                    self.stats.timeouts += 1
                    last_error = None
                    noisy = False
                    break
                if frame is GARBLED:
                    # Re-send at once: the device answers a repeat from its kept response.
                    garbles += 1
                    if garbles > self.garble_retries:
                        # A burst of noise: back off, then spend an attempt of the small
                        # budget on a fresh run of immediate re-sends.
                        noisy = True
                        garbles = 0
                        self._sleep(NOISY_BACKOFF_S * attempts)
                        break
                    self.stats.garbled += 1
                    self._send(wire)
                    deadline = self._clock() + wait
                    continue
                assert isinstance(frame, Frame)
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
                # A stream that makes progress earns a fresh timeout and retry budget. A bad
                # frame inside it is a lost window (the device keeps only the last one, and
                # a re-send would only queue a replay of that): it counts as garbled only
                # when no further frame follows within the idle gap, i.e. it was the last.
                attempts = 0
                garbles = 0
                patience = self._idle_gap()
                deadline = self._clock() + wait
        if last_error is not None:
            raise self._device_error(msg, seq, last_error)
        if noisy:
            raise self._too_noisy(msg, seq, attempts)
        raise LinkTimeout(
            f"no answer to {msg.TYPE.name} (seq {seq}) from {self.name} after {attempts} "
            f"attempt{'s' if attempts != 1 else ''} of {wait:.2f} s; is the device running "
            "the TinyFix firmware and is the baud rate right?",
            msg_type=int(msg.TYPE), seq=seq, attempts=attempts,
        )

    def _too_noisy(self, msg: Message, seq: int, attempts: int) -> WireError:
        err = self._link_error_seen
        if err is not None:
            return self._device_error(msg, seq, err)
        s = self.stats
        return LinkIOError(
            f"{attempts} runs of {self.garble_retries + 1} garbled answers in a row to "
            f"{msg.TYPE.name} (seq {seq}) from {self.name}: the line is too noisy (cable, "
            f"ground, baud rate?); so far {s.crc_errors} CRC errors, {s.framing_errors} "
            f"framing errors, {s.lost_ends} frames without an end")

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

    def _send(self, data: bytes) -> None:
        self._garbled_at = None  # what went wrong before this send is answered by it
        self._link_error_seen = None
        self._write(data)

    def _write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            flush = getattr(self.port, "flush", None)
            if flush is not None:
                flush()
        except OSError as err:
            raise LinkIOError(f"cannot write to {self.name}: {err}") from err
        self.stats.bytes_tx += len(data)

    def _wait_frame(self, seq: int, deadline: float, patience: float = 0.0
                    ) -> Frame | object | None:
        """The next response frame for `seq`, GARBLED when the exchange is known to be
        damaged (and the line quiet for `patience` since), or None at the deadline."""
        while True:
            while self._pending:
                frame = self._pending.popleft()
                if not frame.flags & Flag.RESPONSE:
                    self.stats.ignored_frames += 1
                    continue
                if frame.seq != seq:
                    # A link-level ERROR under another seq: the device read a request whose
                    # seq was garbled, and the only request in flight is this one.
                    if frame.type == MsgType.ERROR and _link_error(frame):
                        self._garbled_at = self._clock()
                    self.stats.ignored_frames += 1
                    continue
                if frame.version != VERSION:
                    raise ProtocolVersionError(frame.version, VERSION)
                if frame.type == MsgType.ERROR and _link_error(frame):
                    self._link_error_seen = ErrorResponse.decode(frame.payload)
                    self._garbled_at = None
                    return GARBLED
                self._garbled_at = None
                return frame
            if self._garbled_at is not None and self._clock() - self._last_rx >= patience:
                self._garbled_at = None
                return GARBLED
            if self._clock() >= deadline:
                return None
            self._receive()

    def _idle_gap(self) -> float:
        baud = getattr(self.port, "baudrate", None)
        chars = 200 / baud if isinstance(baud, int) and baud > 0 else 0.0
        return IDLE_GAP_S + chars

    def _receive(self) -> None:
        try:
            waiting = getattr(self.port, "in_waiting", 0)
            data = self.port.read(max(1, int(waiting or 0)))
        except OSError as err:
            raise LinkIOError(f"cannot read from {self.name}: {err}") from err
        now = self._clock()
        if not data:
            if (self._decoder.partial and not self._abandoned
                    and now - self._last_rx > self._idle_gap()):
                # Its end delimiter was probably lost: ask again. The partial frame stays:
                # if its rest was only late it still completes; if not, the next frame's
                # leading delimiter ends it, and that bad frame is not counted again.
                self._abandoned = True
                self.stats.lost_ends += 1
                self._garbled_at = now
            return
        self._last_rx = now
        self.stats.bytes_rx += len(data)
        for event in self._decoder.feed(data):
            abandoned, self._abandoned = self._abandoned, False
            if isinstance(event, Frame):
                self._pending.append(event)
            elif not abandoned:
                self._garbled_at = now
        self.stats.crc_errors = self._decoder.crc_errors
        self.stats.framing_errors = self._decoder.framing_errors


# _wait_frame's answer for an exchange known to be damaged.
GARBLED = object()


def _link_error(frame: Frame) -> bool:
    try:
        return ErrorResponse.decode(frame.payload).status in LINK_ERRORS
    except PayloadError:
        return False
