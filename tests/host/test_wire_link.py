# SPDX-License-Identifier: Apache-2.0
"""Link: pairing by seq, retries with identical bytes, timeouts, and the errors users see.

Three kinds of port: a scripted fake with a fake clock (instant and deterministic),
pyserial's `loop://` handler, and a pty served by a thread that runs the C receiver and
C encoders, the way the twin and the firmware do.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Callable
from typing import Any

import pytest
import serial

from tinyfix import ccore
from tinyfix.errors import TinyfixError
from tinyfix.wire import (
    CaptureResponse,
    DeviceError,
    DType,
    ErrorResponse,
    Flag,
    Frame,
    FrameDecoder,
    FrameTooLarge,
    GetParamsResponse,
    InferRequest,
    InferResponse,
    InfoResponse,
    Link,
    LinkIOError,
    LinkTimeout,
    MsgType,
    ParamsRejected,
    ProtocolVersionError,
    SetParamsResponse,
    StatsResponse,
    Status,
    TensorDesc,
    WireError,
    cobs,
    decode_frame,
    decode_message,
    encode_frame,
)
from tinyfix.wire.protocol import OVERHEAD, wire_max

INFO = InfoResponse(
    caps=0x03, max_frame=1024, model_crc=0xC0FFEE12, params_crc=0x11223344, params_format=1,
    n_classes=6, max_classes=16, max_window=8, cycle_hz=0,
    input=TensorDesc(DType.INT8, (1, 64, 3), 0.0625, 0),
    output=TensorDesc(DType.INT8, (1, 6), 0.125, 3),
    fw_version="0.1.0", board="fake",
)


def reply(req: Frame, msg: Any, *, flags: int = 0, seq: int | None = None) -> bytes:
    return encode_frame(msg.TYPE, req.seq if seq is None else seq, msg.flags() | flags,
                        msg.encode())


def error(req: Frame, status: int, text: str = "") -> bytes:
    return reply(req, ErrorResponse(status, req.seq, req.type, text))


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


class FakePort:
    """A port whose device is a function from request frame (and attempt) to reply bytes."""

    def __init__(self, device: Callable[[Frame, int], bytes], clock: FakeClock) -> None:
        self.device = device
        self.clock = clock
        self.timeout: float | None = None
        self.baudrate = 115200
        self.port = "fake0"
        self.writes: list[bytes] = []
        self.rx = bytearray()
        self._decoder = FrameDecoder()

    @property
    def in_waiting(self) -> int:
        return len(self.rx)

    def write(self, data: bytes) -> int:
        self.writes.append(bytes(data))
        for event in self._decoder.feed(data):
            if isinstance(event, Frame):
                self.rx += self.device(event, len(self.writes))
        return len(data)

    def read(self, n: int = 1) -> bytes:
        if not self.rx:
            self.clock.now += self.timeout or 0.0
            return b""
        out = bytes(self.rx[:n])
        del self.rx[:n]
        return out


def fake_link(device: Callable[[Frame, int], bytes], **kw: Any) -> tuple[Link, FakePort]:
    clock = FakeClock()
    port = FakePort(device, clock)
    kw.setdefault("timeout", 0.5)
    return Link(port, clock=clock, sleep=clock.sleep, seq=kw.pop("seq", 100), **kw), port


def test_request_pairs_by_seq_and_adopts_device_max_frame():
    link, port = fake_link(lambda req, n: reply(req, INFO))
    assert link.max_frame == 256
    info = link.info()
    assert info == INFO
    assert link.max_frame == 1024
    assert decode_frame(port.writes[0]).seq == 100
    assert link.next_seq == 101


def test_lost_request_is_resent_with_identical_bytes():
    link, port = fake_link(lambda req, n: reply(req, INFO) if n == 3 else b"")
    assert link.info() == INFO
    assert len(port.writes) == 3 and len(set(port.writes)) == 1
    assert link.stats.retries == 2 and link.stats.timeouts == 2


def test_silent_device_times_out_after_every_retry_with_a_clear_message():
    link, port = fake_link(lambda req, n: b"", retries=2)
    with pytest.raises(LinkTimeout) as exc:
        link.device_stats()
    err = exc.value
    assert err.attempts == 3 and err.msg_type == MsgType.STATS and err.seq == 100
    assert "STATS" in str(err) and "fake0" in str(err) and "3 attempts" in str(err)
    assert isinstance(err, TinyfixError)
    assert len(set(port.writes)) == 1 and len(port.writes) == 3
    expected_wait = 3 * (0.5 + 10 * (len(port.writes[0]) + wire_max(256)) / 115200)
    assert port.clock.now == pytest.approx(expected_wait, abs=0.1)


def test_crc_error_reply_triggers_an_immediate_retry():
    link, port = fake_link(
        lambda req, n: error(req, Status.ERR_CRC) if n == 1 else reply(req, StatsResponse(5))
    )
    assert link.device_stats().uptime_ms == 5
    assert len(port.writes) == 2
    assert port.clock.now < 0.1, "no timeout was waited for"


def test_busy_device_gets_backoff_then_answers():
    link, port = fake_link(
        lambda req, n: error(req, Status.ERR_BUSY) if n < 3 else reply(req, StatsResponse(7))
    )
    assert link.device_stats().uptime_ms == 7
    assert port.clock.slept == [0.05, 0.1]


def test_busy_until_the_end_reports_busy_not_timeout():
    link, _port = fake_link(lambda req, n: error(req, Status.ERR_BUSY), retries=1)
    with pytest.raises(DeviceError) as exc:
        link.device_stats()
    assert exc.value.status == Status.ERR_BUSY
    assert "busy" in str(exc.value)


def test_final_device_error_is_not_retried_and_names_the_code():
    link, port = fake_link(lambda req, n: error(req, Status.ERR_LENGTH, "want 192 bytes"))
    link.max_frame = 1024
    with pytest.raises(DeviceError) as exc:
        link.infer(b"\x00" * 10)
    err = exc.value
    assert len(port.writes) == 1
    assert err.status == Status.ERR_LENGTH and err.msg_type == MsgType.INFER
    assert "ERR_LENGTH" in str(err) and "want 192 bytes" in str(err) and "INFER" in str(err)


def test_stale_frames_echoes_and_noise_are_ignored():
    def device(req: Frame, n: int) -> bytes:
        stale = reply(req, StatsResponse(1), seq=req.seq - 1)
        echo = encode_frame(req.type, req.seq, 0, b"")
        cut = error(req, -1)[:-3]
        return b"garbage\x00\x07" + stale + echo + cut + reply(req, StatsResponse(2))

    link, _port = fake_link(device)
    assert link.device_stats().uptime_ms == 2
    assert link.stats.ignored_frames == 2
    assert link.stats.framing_errors + link.stats.crc_errors >= 2


def test_other_protocol_version_is_reported_as_such():
    link, _port = fake_link(lambda req, n: encode_frame(req.type, req.seq, 0x80, b"", version=2))
    with pytest.raises(ProtocolVersionError) as exc:
        link.info()
    assert exc.value.device_version == 2 and "v2" in str(exc.value)


def test_device_refusing_our_version_is_reported():
    link, _port = fake_link(lambda req, n: error(req, Status.ERR_VERSION))
    with pytest.raises(WireError, match="protocol v1"):
        link.info()


def test_rejected_parameters_raise_with_the_core_code_and_active_crc():
    link, port = fake_link(lambda req, n: reply(req, SetParamsResponse(-4, 0xAABBCCDD, False)))
    with pytest.raises(ParamsRejected) as exc:
        link.set_params(b"blob", persist=False)
    err = exc.value
    assert err.status == -4 and err.active_crc == 0xAABBCCDD
    assert "TINYFIX_ERR_MODEL" in str(err) and "0xaabbccdd" in str(err)
    assert decode_frame(port.writes[0]).flags == 0x01


def test_parameters_round_trip():
    store = {}

    def device(req: Frame, n: int) -> bytes:
        if req.type == MsgType.SET_PARAMS:
            store["blob"] = req.payload
            return reply(req, SetParamsResponse(0, 0x1234, True))
        return reply(req, GetParamsResponse(store["blob"]))

    link, _port = fake_link(device)
    assert link.set_params(b"\x00params\x00") == SetParamsResponse(0, 0x1234, True)
    assert link.get_params() == b"\x00params\x00"


def test_infer_sends_flags_label_and_tensor():
    seen = []

    def device(req: Frame, n: int) -> bytes:
        seen.append(decode_message(req))
        return reply(req, InferResponse(0, 2, -1, 30000, 1000, 50, b"\x01\x02", (1, 2), b"\xff"))

    link, _port = fake_link(device)
    rsp = link.infer(b"\x05\x06", label=2, features=True)
    assert seen == [InferRequest(b"\x05\x06", 2, True, False)]
    assert rsp.top_class == 2 and rsp.feature_values == [-1]
    assert rsp.confidence == pytest.approx(30000 / 32768)


def test_request_larger_than_the_device_frame_is_refused_before_sending():
    link, port = fake_link(lambda req, n: b"")
    with pytest.raises(FrameTooLarge, match="read INFO first"):
        link.infer(bytes(256))
    assert port.writes == []


def test_capture_stream_yields_each_window_once():
    def device(req: Frame, n: int) -> bytes:
        out = b""
        for i in range(3):
            w = CaptureResponse.from_values(i, 3, 1000 * i, DType.FLOAT32, [i, -i])
            out += reply(req, w, flags=Flag.MORE if i < 2 else 0)
        return out + reply(req, w)  # a replay of the last window must not be yielded again

    link, _port = fake_link(device)
    windows = list(link.capture(3))
    assert [w.index for w in windows] == [0, 1, 2]
    assert windows[2].values() == [2.0, -2.0]


def test_capture_stream_that_stalls_ends_with_a_timeout():
    def device(req: Frame, n: int) -> bytes:
        if n > 1:
            return b""
        w = CaptureResponse.from_values(0, 2, 0, DType.INT8, [1, 2, 3])
        return reply(req, w, flags=Flag.MORE)

    link, _port = fake_link(device, retries=1)
    stream = link.capture(2, DType.INT8)
    assert next(stream).values() == [1, 2, 3]
    with pytest.raises(LinkTimeout):
        next(stream)


def test_port_failure_becomes_a_link_error():
    class Broken(FakePort):
        def write(self, data: bytes) -> int:
            raise serial.SerialException("device reports readiness to read but returned no data")

    clock = FakeClock()
    link = Link(Broken(lambda r, n: b"", clock), clock=clock, sleep=clock.sleep)
    with pytest.raises(LinkIOError, match="cannot write to fake0"):
        link.info()


def test_every_wire_exception_is_a_tinyfix_error():
    for cls in (WireError, LinkTimeout, LinkIOError, DeviceError, ParamsRejected,
                ProtocolVersionError, FrameTooLarge):
        assert issubclass(cls, TinyfixError)


# pyserial's loop:// handler: the port hears exactly what it says.


@pytest.fixture
def loop() -> Any:
    port = serial.serial_for_url("loop://", timeout=0.01, baudrate=115200)
    yield port
    port.close()


def test_loop_port_hears_only_its_own_request_and_times_out(loop):
    link = Link(loop, timeout=0.05, retries=2)
    with pytest.raises(LinkTimeout) as exc:
        link.info()
    assert exc.value.attempts == 3
    assert link.stats.ignored_frames == 3, "its own echo is not a response"
    assert link.stats.bytes_rx == link.stats.bytes_tx


def test_loop_port_delivers_a_response_queued_before_the_request(loop):
    link = Link(loop, timeout=0.5)
    loop.write(b"\x13\x37noise" + encode_frame(MsgType.INFO, link.next_seq, 0x80, INFO.encode()))
    assert link.info() == INFO
    assert link.stats.framing_errors == 1


# A pty device: the C receiver and C encoders on the far side of a real pyserial port.


class CDevice(threading.Thread):
    """Serves INFO, STATS and ERROR through tinyfix_wire.c, like a minimal firmware link."""

    def __init__(self, master_fd: int, corrupt_first: str = "") -> None:
        super().__init__(daemon=True)
        module = ccore.load("fixed")
        self.ffi, self.lib = module.ffi, module.lib
        self.fd = master_fd
        self.corrupt_first = corrupt_first
        self.stop = threading.Event()
        self.buf = self.ffi.new("uint8_t[]", 256)
        self.rx = self.ffi.new("struct tinyfix_wire_rx *")
        assert self.lib.tinyfix_wire_rx_init(self.rx, self.buf, 256) == 0
        self.out = self.ffi.new("uint8_t[]", wire_max(256))
        self.payload = self.ffi.new("uint8_t[]", 256)
        self.keep: list[Any] = []

    def send(self, n: int) -> None:
        assert n > 0, n
        os.write(self.fd, bytes(self.ffi.buffer(self.out, n)))

    def answer(self, f: Any) -> None:
        lib, ffi = self.lib, self.ffi
        if f.type == lib.TINYFIX_WIRE_MSG_INFO:
            info = ffi.new("struct tinyfix_wire_info *")
            info.max_frame, info.n_classes, info.model_crc = 256, 6, 0xC0FFEE12
            info.input.dtype, info.input.ndims, info.input.dims[0] = DType.INT8, 1, 192
            self.keep = [ffi.new("char[]", b"pty-device")]
            info.board = self.keep[0]
            n = lib.tinyfix_wire_info_encode(info, self.payload, 256)
        elif f.type == lib.TINYFIX_WIRE_MSG_STATS:
            stats = ffi.new("struct tinyfix_wire_stats *")
            stats.frames_ok = self.rx.frames_ok
            stats.crc_errors = self.rx.crc_errors
            stats.framing_errors = self.rx.framing_errors
            n = lib.tinyfix_wire_stats_encode(stats, self.payload, 256)
        else:
            self.send(lib.tinyfix_wire_error_build(lib.TINYFIX_WIRE_ERR_TYPE, f, b"no such type",
                                                   self.out, len(self.out)))
            return
        assert n > 0
        self.send(lib.tinyfix_wire_frame_build(f.type, f.seq, lib.TINYFIX_WIRE_FLAG_RESPONSE,
                                               self.payload, n, self.out, len(self.out)))

    def run(self) -> None:
        frame = self.ffi.new("struct tinyfix_wire_frame *")
        while not self.stop.is_set():
            try:
                data = os.read(self.fd, 512)
            except OSError:
                return
            if self.corrupt_first and len(data) > 6:
                # Wire: 00, COBS code, version, type, seq lo, ... CRC, 00.
                at = 4 if self.corrupt_first == "seq" else len(data) - 2
                flipped = data[at] ^ (0x02 if data[at] == 0x01 else 0x01)
                data = data[:at] + bytes([flipped]) + data[at + 1 :]
                self.corrupt_first = ""
            for b in data:
                ret = self.lib.tinyfix_wire_rx_feed(self.rx, b, frame)
                if ret == self.lib.TINYFIX_WIRE_RX_FRAME:
                    self.answer(frame)
                elif ret < 0 and frame.has_hdr:
                    self.send(self.lib.tinyfix_wire_error_build(ret, frame, self.ffi.NULL,
                                                                self.out, len(self.out)))


@pytest.fixture
def pty_device(request) -> Any:
    master, slave = os.openpty()
    device = CDevice(master, corrupt_first=getattr(request, "param", ""))
    device.start()
    port = serial.serial_for_url(os.ttyname(slave), baudrate=115200, timeout=0.01)
    yield port, device
    device.stop.set()
    port.close()
    os.close(slave)
    os.close(master)
    device.join(timeout=2)


def test_pty_device_running_the_c_codec_answers_the_link(pty_device):
    port, _device = pty_device
    link = Link(port, timeout=1.0)
    info = link.info()
    assert (info.board, info.model_crc, info.input.shape, link.max_frame) == (
        "pty-device", 0xC0FFEE12, (192,), 256
    )
    port.write(b"\x42" * 40 + b"\x00")  # line noise between requests
    stats = link.device_stats()
    assert (stats.frames_ok, stats.framing_errors) == (2, 1)
    with pytest.raises(DeviceError) as exc:
        link.request(InferRequest(b""), timeout=1.0)
    assert exc.value.status == Status.ERR_TYPE and "no such type" in str(exc.value)


@pytest.mark.parametrize("pty_device", ["crc"], indirect=True)
def test_pty_device_answers_a_corrupted_request_with_crc_error_and_the_link_retries(pty_device):
    port, _device = pty_device
    link = Link(port, timeout=5.0)
    assert link.device_stats().crc_errors == 1
    assert link.stats.garbled == 1 and link.stats.timeouts == 0, "re-sent without waiting"


@pytest.mark.parametrize("pty_device", ["seq"], indirect=True)
def test_pty_device_error_for_a_garbled_seq_makes_the_link_resend_at_once(pty_device):
    port, _device = pty_device
    link = Link(port, timeout=5.0)
    assert link.device_stats().crc_errors == 1
    # The ERROR carries the garbled seq, so it is not the answer; but it is the only
    # request in flight, so it is re-sent without waiting out the 5 s.
    assert link.stats.ignored_frames == 1 and link.stats.timeouts == 0
    assert link.stats.garbled == 1


def test_link_bytes_are_what_the_c_receiver_expects():
    link, port = fake_link(lambda req, n: reply(req, StatsResponse()))
    link.device_stats()
    module = ccore.load("fixed")
    ffi, lib = module.ffi, module.lib
    buf = ffi.new("uint8_t[]", 64)
    rx = ffi.new("struct tinyfix_wire_rx *")
    lib.tinyfix_wire_rx_init(rx, buf, 64)
    frame = ffi.new("struct tinyfix_wire_frame *")
    results = [lib.tinyfix_wire_rx_feed(rx, b, frame) for b in port.writes[0]]
    assert results.count(lib.TINYFIX_WIRE_RX_FRAME) == 1 and min(results) == 0
    assert (frame.type, frame.seq, frame.payload_len) == (MsgType.STATS, 100, 0)
    # body + one COBS code + two delimiters + the trailing spare delimiter
    assert len(port.writes[0]) == OVERHEAD + 4
    body = cobs.decode(port.writes[0][1:-2])
    assert frame.crc == zlib.crc32(body[:-4]) == struct.unpack("<I", body[-4:])[0]
