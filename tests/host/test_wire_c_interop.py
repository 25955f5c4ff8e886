# SPDX-License-Identifier: Apache-2.0
"""The C codec (tinyfix_wire.c, built for the host by cffi) against the Python one.

Both must produce the same bytes, decode each other, and judge every byte stream the same
way: same frames, same errors, same headers, same counters.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyfix import ccore
from tinyfix.wire import (
    BadFrame,
    CaptureResponse,
    DType,
    ErrorResponse,
    Flag,
    Frame,
    FrameDecoder,
    Header,
    InferRequest,
    InferResponse,
    InfoResponse,
    MsgType,
    SetParamsResponse,
    StatsResponse,
    Status,
    TensorDesc,
    cobs,
    decode_frame,
    encode_frame,
    protocol,
)
from tinyfix.wire.protocol import CORE_STATUS, OVERHEAD, cobs_max, wire_max

ROOT = Path(__file__).resolve().parents[2]

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
i16 = st.integers(-(2**15), 2**15 - 1)
u32 = st.integers(0, 2**32 - 1)
f32 = st.floats(width=32, allow_nan=False)
runs = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.integers(250, 260).map(lambda n: bytes([0xA5]) * n),
        st.just(b"\x00"),
    ),
    max_size=6,
).map(b"".join)
payloads = st.one_of(st.binary(max_size=700), runs)


class C:
    """The compiled core with a few helpers around the wire API."""

    def __init__(self) -> None:
        module = ccore.load("fixed")
        self.ffi = module.ffi
        self.lib = module.lib

    def out(self, cap: int) -> Any:
        return self.ffi.new("uint8_t[]", max(cap, 1))

    def call_encode(self, fn: Any, struct_ptr: Any, cap: int = 70000) -> bytes:
        buf = self.out(cap)
        n = fn(struct_ptr, buf, cap)
        assert n >= 0, protocol.status_name(n)
        return bytes(self.ffi.buffer(buf, n))

    def frame_build(self, msg_type: int, seq: int, flags: int, payload: bytes) -> bytes:
        cap = wire_max(len(payload) + OVERHEAD)
        buf = self.out(cap)
        n = self.lib.tinyfix_wire_frame_build(msg_type, seq, flags, payload, len(payload), buf,
                                              cap)
        assert n > 0, protocol.status_name(n)
        return bytes(self.ffi.buffer(buf, n))

    def rx(self, cap: int) -> tuple[Any, Any]:
        buf = self.out(cap)
        rx = self.ffi.new("struct tinyfix_wire_rx *")
        assert self.lib.tinyfix_wire_rx_init(rx, buf, cap) == 0
        return rx, buf

    def events(self, rx: Any, data: bytes) -> list[Frame | BadFrame]:
        """Everything the C receiver reports for `data`, as the Python decoder's types."""
        frame = self.ffi.new("struct tinyfix_wire_frame *")
        used = self.ffi.new("size_t *")
        src = self.ffi.from_buffer(data)
        out: list[Frame | BadFrame] = []
        off = 0
        while off < len(data):
            ret = self.lib.tinyfix_wire_rx_push(rx, src + off, len(data) - off, used, frame)
            off += used[0]
            if ret == self.lib.TINYFIX_WIRE_RX_FRAME:
                payload = bytes(self.ffi.buffer(frame.payload, frame.payload_len))
                out.append(Frame(frame.type, frame.seq, frame.flags, payload, frame.version,
                                 frame.crc))
            elif ret < 0:
                hdr = (Header(frame.version, frame.type, frame.seq, frame.flags)
                       if frame.has_hdr else None)
                out.append(BadFrame(ret, hdr))
            else:
                assert off == len(data)
        return out


@pytest.fixture(scope="module")
def c() -> C:
    return C()


def test_python_constants_equal_the_c_header(c):
    lib = c.lib
    for name in ("VERSION", "HDR_LEN", "CRC_LEN", "OVERHEAD", "MIN_FRAME", "MAX_FRAME_LIMIT",
                 "STR_MAX", "TEXT_MAX", "MAX_DIMS"):
        assert getattr(protocol, name) == getattr(lib, f"TINYFIX_WIRE_{name}"), name
    for member in protocol.MsgType:
        assert member == getattr(lib, f"TINYFIX_WIRE_MSG_{member.name}")
    for member in (protocol.Flag.FEATURES, protocol.Flag.RESET, protocol.Flag.STAGED,
                   protocol.Flag.MODEL_RESET, protocol.Flag.MORE, protocol.Flag.RESPONSE):
        assert member == getattr(lib, f"TINYFIX_WIRE_FLAG_{member.name}")
    assert protocol.NO_PERSIST == lib.TINYFIX_WIRE_FLAG_NO_PERSIST
    for cap in protocol.Cap:
        if cap.name != "NONE":
            assert cap == getattr(lib, f"TINYFIX_WIRE_CAP_{cap.name}")
    for dt in protocol.DType:
        assert dt == getattr(lib, f"TINYFIX_WIRE_DTYPE_{dt.name}")
        assert dt.size == lib.tinyfix_wire_dtype_size(dt)
    for status in protocol.Status:
        if status != protocol.Status.OK:
            assert status == getattr(lib, f"TINYFIX_WIRE_{status.name}")
    assert protocol.DRIFT_ADVISED == lib.TINYFIX_WIRE_DRIFT_ADVISED


def test_core_status_names_equal_the_core_header(c):
    for code, (name, _) in CORE_STATUS.items():
        assert getattr(c.lib, name) == code


def test_cdef_defines_equal_the_real_header():
    pattern = re.compile(
        r"^#define (TINYFIX_WIRE_\w+)\s+\(?(-?(?:0x[0-9A-Fa-f]+|\d+))\)?", re.MULTILINE
    )
    header = ROOT / "modules/tinyfix/include/tinyfix/wire.h"
    cdef = ROOT / "host/src/tinyfix/cdefs/wire.h"
    real = {k: int(v, 0) for k, v in pattern.findall(header.read_text())}
    declared = {k: int(v, 0) for k, v in pattern.findall(cdef.read_text())}
    assert real == declared


@given(payloads)
def test_cobs_c_and_python_encode_identically_and_decode_each_other(c, data):
    cap = cobs_max(len(data))
    buf = c.out(cap)
    n = c.lib.tinyfix_wire_cobs_encode(data, len(data), buf, cap)
    enc = bytes(c.ffi.buffer(buf, n))
    assert enc == cobs.encode(data)
    dec = c.out(len(data))
    assert c.lib.tinyfix_wire_cobs_decode(enc, len(enc), dec, len(data)) == len(data)
    assert bytes(c.ffi.buffer(dec, len(data))) == data


@given(payloads)
def test_cobs_c_decodes_in_place(c, data):
    enc = cobs.encode(data)
    buf = c.ffi.new("uint8_t[]", enc)
    assert c.lib.tinyfix_wire_cobs_decode(buf, len(enc), buf, len(enc)) == len(data)
    assert bytes(c.ffi.buffer(buf, len(data))) == data


def test_cobs_c_rejects_bad_input_and_small_buffers(c):
    lib = c.lib
    buf = c.out(8)
    assert lib.tinyfix_wire_cobs_decode(b"\x05\x01\x02", 3, buf, 8) == lib.TINYFIX_WIRE_ERR_FRAMING
    assert lib.tinyfix_wire_cobs_decode(b"\x03\x01\x00", 3, buf, 8) == lib.TINYFIX_WIRE_ERR_FRAMING
    assert lib.tinyfix_wire_cobs_decode(b"\x03\x01\x02", 3, buf, 1) == lib.TINYFIX_WIRE_ERR_NO_SPACE
    assert lib.tinyfix_wire_cobs_encode(b"\x01\x02", 2, buf, 2) == lib.TINYFIX_WIRE_ERR_NO_SPACE


@given(u8, u16, u8, payloads)
def test_frames_are_byte_identical_and_cross_decode(c, msg_type, seq, flags, payload):
    wire = c.frame_build(msg_type, seq, flags, payload)
    assert wire == encode_frame(msg_type, seq, flags, payload)
    assert decode_frame(wire).payload == payload
    rx, _buf = c.rx(len(payload) + OVERHEAD)
    (event,) = c.events(rx, encode_frame(msg_type, seq, flags, payload))
    assert event == decode_frame(wire)
    assert event.crc == struct.unpack("<I", cobs.decode(wire[1:-1])[-4:])[0]


def test_spec_example_frame_is_byte_exact_in_c(c):
    assert c.frame_build(MsgType.INFO, 0x1234, 0, b"") == bytes.fromhex(
        "00 05 01 01 34 12 05 57 84 68 18 00"
    )


@given(payloads)
def test_frame_build_needs_exactly_its_length(c, payload):
    n = len(encode_frame(2, 1, 0, payload))
    buf = c.out(n)
    assert c.lib.tinyfix_wire_frame_build(2, 1, 0, payload, len(payload), buf, n) == n
    small = c.lib.tinyfix_wire_frame_build(2, 1, 0, payload, len(payload), buf, n - 1)
    assert small == c.lib.TINYFIX_WIRE_ERR_NO_SPACE


def test_frame_build_refuses_a_body_beyond_the_limit(c):
    n = 65535 - OVERHEAD + 1
    buf = c.out(16)
    assert (c.lib.tinyfix_wire_frame_build(1, 0, 0, bytes(n), n, buf, 16)
            == c.lib.TINYFIX_WIRE_ERR_TOO_LONG)


def test_frame_parse_reports_short_and_crc_errors_with_header(c):
    lib = c.lib
    f = c.ffi.new("struct tinyfix_wire_frame *")
    body = c.ffi.new("uint8_t[]", list(cobs.decode(encode_frame(3, 0x4242, 0x80, b"xyz")[1:-1])))
    n = len(body)
    assert lib.tinyfix_wire_frame_parse(body, n, f) == 0
    assert bytes(c.ffi.buffer(f.payload, f.payload_len)) == b"xyz"
    assert (f.type, f.seq, f.flags, f.has_hdr) == (3, 0x4242, 0x80, 1)
    body[6] ^= 1
    assert lib.tinyfix_wire_frame_parse(body, n, f) == lib.TINYFIX_WIRE_ERR_CRC
    assert f.has_hdr == 1 and f.seq == 0x4242 and f.payload == c.ffi.NULL
    assert lib.tinyfix_wire_frame_parse(body, 8, f) == lib.TINYFIX_WIRE_ERR_FRAMING
    assert f.has_hdr == 1
    assert lib.tinyfix_wire_frame_parse(body, 4, f) == lib.TINYFIX_WIRE_ERR_FRAMING
    assert f.has_hdr == 0


def test_rx_init_refuses_impossible_buffers(c):
    rx = c.ffi.new("struct tinyfix_wire_rx *")
    buf = c.out(8)
    assert c.lib.tinyfix_wire_rx_init(rx, buf, 8) == c.lib.TINYFIX_WIRE_ERR_VALUE
    assert c.lib.tinyfix_wire_rx_init(rx, buf, 65536) == c.lib.TINYFIX_WIRE_ERR_VALUE


def _mangle(wire: bytes, data: st.DataObject) -> bytes:
    out = bytearray(wire)
    for _ in range(data.draw(st.integers(0, 3))):
        if not out:
            break
        kind = data.draw(st.sampled_from(["flip", "zero", "drop", "insert", "cut"]))
        pos = data.draw(st.integers(0, len(out) - 1))
        if kind == "flip":
            out[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "zero":
            out[pos] = 0
        elif kind == "drop":
            del out[pos]
        elif kind == "insert":
            out.insert(pos, data.draw(u8))
        else:
            del out[pos:]
    return bytes(out)


@settings(max_examples=400)
@given(
    st.lists(st.tuples(u8, u16, u8, payloads), max_size=5),
    st.lists(st.binary(max_size=80), max_size=5),
    st.integers(OVERHEAD, 400),
    st.data(),
)
def test_c_receiver_and_python_decoder_agree_on_any_stream(c, frames, noise, cap, data):
    stream = b""
    for i, (t, s, f, p) in enumerate(frames):
        stream += _mangle(encode_frame(t, s, f, p), data)
        if i < len(noise):
            stream += noise[i]
    rx, _buf = c.rx(cap)
    py = FrameDecoder(max_frame=cap)
    assert c.events(rx, stream) == py.feed(stream)
    assert (rx.frames_ok, rx.crc_errors, rx.framing_errors) == (
        py.frames_ok, py.crc_errors, py.framing_errors
    )


@given(st.binary(max_size=500), st.binary(max_size=200))
def test_c_receiver_resynchronises_after_garbage(c, garbage, payload):
    rx, _buf = c.rx(256)
    good = encode_frame(MsgType.STATS, 77, 0, payload[: 256 - OVERHEAD])
    events = c.events(rx, garbage + good + garbage + good)
    frames = [e for e in events if isinstance(e, Frame)]
    assert len(frames) == 2 and all(f.seq == 77 for f in frames)
    assert events[-1] == frames[-1]


def test_c_receiver_counts_each_failure_kind_and_keeps_the_header(c):
    rx, _buf = c.rx(OVERHEAD + 4)
    body = bytearray(cobs.decode(encode_frame(6, 8, 0, b"x")[1:-1]))
    body[-1] ^= 0xFF
    stream = (
        b"\x00\x00"
        + encode_frame(6, 5, 0, b"abcd")
        + encode_frame(6, 6, 0, b"abcde")
        + b"\x00" + cobs.encode(b"\x01\x06\x07\x00") + b"\x00"
        + b"\x00" + cobs.encode(bytes(body)) + b"\x00"
        + b"\x00\x09\x01\x06\x09\x09\x05\x00"
    )
    events = c.events(rx, stream)
    assert [getattr(e, "status", "frame") for e in events] == [
        "frame", Status.ERR_TOO_LONG, Status.ERR_FRAMING, Status.ERR_CRC, Status.ERR_FRAMING,
    ]
    assert [e.header.seq if e.header else None for e in events[1:]] == [6, None, 8, 0x0909]
    assert (rx.frames_ok, rx.crc_errors, rx.framing_errors) == (1, 1, 3)


def test_c_receiver_survives_endless_bytes_without_delimiter(c):
    rx, _buf = c.rx(64)
    for _ in range(50):
        assert c.events(rx, b"\x7f" * 4096) == []
    (event,) = c.events(rx, b"\x00")
    assert event.status == Status.ERR_TOO_LONG and rx.len == 0


def test_rx_reset_drops_a_partial_frame(c):
    rx, _buf = c.rx(64)
    assert c.events(rx, encode_frame(1, 3, 0, b"")[:5]) == []
    c.lib.tinyfix_wire_rx_reset(rx)
    follow = encode_frame(6, 4, 0, b"s")[1:]  # no leading delimiter to hide the partial one
    assert c.events(rx, follow) == [decode_frame(follow)]
    assert (rx.frames_ok, rx.crc_errors, rx.framing_errors) == (1, 0, 0)


# Device-side payload encoders: C output must equal the Python encoders' bytes.


def _tensor(c: C, t: Any, desc: TensorDesc) -> None:
    t.dtype = desc.dtype
    t.ndims = len(desc.shape)
    for i, d in enumerate(desc.shape):
        t.dims[i] = d
    t.scale_f32 = struct.unpack("<I", struct.pack("<f", desc.scale))[0]
    t.zero_point = desc.zero_point


tensors = st.builds(TensorDesc, st.sampled_from(list(DType)), st.lists(u16, max_size=6).map(tuple),
                    f32, st.integers(-(2**31), 2**31 - 1))
ascii32 = st.text(st.characters(min_codepoint=1, max_codepoint=0x7FF, exclude_categories=["Cs"]),
                  max_size=16)


@given(u8, u16, u32, u32, u16, u16, u16, u16, u32, tensors, tensors, tensors, ascii32, ascii32)
def test_info_encode_c_equals_python(c, caps, max_frame, model_crc, params_crc, fmt, n_classes,
                                     max_classes, max_window, cycle_hz, inp, out, feat, fw, board):
    py = InfoResponse(caps, max_frame, model_crc, params_crc, fmt, n_classes, max_classes,
                      max_window, cycle_hz, inp, out, feat, fw, board)
    info = c.ffi.new("struct tinyfix_wire_info *")
    for name in ("caps", "max_frame", "model_crc", "params_crc", "n_classes", "max_classes",
                 "max_window", "cycle_hz"):
        setattr(info, name, getattr(py, name))
    info.params_format = fmt
    _tensor(c, info.input, inp)
    _tensor(c, info.output, out)
    _tensor(c, info.feature, feat)
    keep = [c.ffi.new("char[]", fw.encode()), c.ffi.new("char[]", board.encode())]
    info.fw_version, info.board = keep
    assert c.call_encode(c.lib.tinyfix_wire_info_encode, info) == py.encode()


def test_info_encode_c_refuses_long_strings_and_too_many_dims(c):
    info = c.ffi.new("struct tinyfix_wire_info *")
    long = c.ffi.new("char[]", b"x" * 33)
    info.board = long
    buf = c.out(512)
    assert c.lib.tinyfix_wire_info_encode(info, buf, 512) == c.lib.TINYFIX_WIRE_ERR_VALUE
    info.board = c.ffi.NULL
    info.input.ndims = 7
    assert c.lib.tinyfix_wire_info_encode(info, buf, 512) == c.lib.TINYFIX_WIRE_ERR_VALUE
    info.input.ndims = 0
    assert c.lib.tinyfix_wire_info_encode(info, buf, 20) == c.lib.TINYFIX_WIRE_ERR_NO_SPACE


@given(i16, i16, i16, u16, u32, u32, st.binary(max_size=64), st.lists(u16, max_size=64),
       st.binary(max_size=128))
def test_infer_response_c_equals_python(c, status, top, decision, conf, cyc_i, cyc_t, raw, prob,
                                        feats):
    py = InferResponse(status, top, decision, conf, cyc_i, cyc_t, raw, tuple(prob), feats)
    rsp = c.ffi.new("struct tinyfix_wire_infer_rsp *")
    rsp.status, rsp.top_class, rsp.decision, rsp.top_conf = status, top, decision, conf
    rsp.cycles_invoke, rsp.cycles_tinyfix = cyc_i, cyc_t
    keep = [c.ffi.new("uint8_t[]", raw or b"\0"), c.ffi.new("uint16_t[]", prob or [0]),
            c.ffi.new("int8_t[]", list(struct.unpack(f"{len(feats)}b", feats)) or [0])]
    rsp.raw, rsp.raw_len = keep[0], len(raw)
    rsp.prob, rsp.n_prob = keep[1], len(prob)
    rsp.features, rsp.n_features = keep[2], len(feats)
    encoded = c.call_encode(c.lib.tinyfix_wire_infer_rsp_encode, rsp)
    assert encoded == py.encode()
    assert InferResponse.decode(encoded) == py


def test_infer_response_c_refuses_null_arrays_with_counts(c):
    rsp = c.ffi.new("struct tinyfix_wire_infer_rsp *")
    rsp.n_prob = 3
    buf = c.out(64)
    assert c.lib.tinyfix_wire_infer_rsp_encode(rsp, buf, 64) == c.lib.TINYFIX_WIRE_ERR_VALUE


@given(st.binary(max_size=300), i16, st.booleans(), st.booleans())
def test_infer_request_python_decodes_in_c(c, tensor, label, feats, reset):
    req = InferRequest(tensor, label, feats, reset)
    frame = decode_frame(req.frame(5).encode())
    assert frame.flags == (Flag.FEATURES if feats else 0) | (Flag.RESET if reset else 0)
    out = c.ffi.new("struct tinyfix_wire_infer_req *")
    assert c.lib.tinyfix_wire_infer_req_decode(frame.payload, len(frame.payload), out) == 0
    assert out.label == label
    assert bytes(c.ffi.buffer(out.input, out.input_len)) == tensor
    assert c.lib.tinyfix_wire_infer_req_decode(b"\x01", 1, out) == c.lib.TINYFIX_WIRE_ERR_LENGTH


def test_capture_request_decode_in_c_checks_each_field(c):
    out = c.ffi.new("struct tinyfix_wire_capture_req *")
    lib = c.lib
    assert lib.tinyfix_wire_capture_req_decode(b"\x05\x01\x09", 3, out) == 0
    assert (out.count, out.dtype) == (0x105, DType.INT8)
    assert lib.tinyfix_wire_capture_req_decode(b"\x05\x00", 2, out) == lib.TINYFIX_WIRE_ERR_LENGTH
    assert lib.tinyfix_wire_capture_req_decode(b"\0\0\x01", 3, out) == lib.TINYFIX_WIRE_ERR_VALUE
    assert (lib.tinyfix_wire_capture_req_decode(b"\x01\x00\x07", 3, out)
            == lib.TINYFIX_WIRE_ERR_UNSUPPORTED)


capture_windows = st.one_of(
    st.tuples(st.just(DType.FLOAT32), st.lists(f32, max_size=200)),
    st.tuples(st.just(DType.INT8), st.lists(st.integers(-128, 127), max_size=200)),
    st.tuples(st.just(DType.INT16), st.lists(i16, max_size=200)),
)


@given(u16, u16, u32, capture_windows)
def test_capture_response_c_equals_python(c, index, count, t_ms, window):
    dtype, values = window
    py = CaptureResponse.from_values(index, count, t_ms, dtype, values)
    ctype = {DType.FLOAT32: "float[]", DType.INT8: "int8_t[]", DType.INT16: "int16_t[]"}[dtype]
    data = c.ffi.new(ctype, values or [0])
    rsp = c.ffi.new("struct tinyfix_wire_capture_rsp *")
    rsp.index, rsp.count, rsp.t_ms, rsp.n_values, rsp.dtype = index, count, t_ms, len(values), dtype
    rsp.data = data
    encoded = c.call_encode(c.lib.tinyfix_wire_capture_rsp_encode, rsp)
    assert encoded == py.encode()
    got = CaptureResponse.decode(encoded)
    assert got.values() == py.values()


@given(i16, u32, st.booleans())
def test_set_params_response_c_equals_python(c, status, crc, persisted):
    rsp = c.ffi.new("struct tinyfix_wire_setp_rsp *", [status, crc, persisted])
    assert (c.call_encode(c.lib.tinyfix_wire_setp_rsp_encode, rsp)
            == SetParamsResponse(status, crc, persisted).encode())


@given(st.lists(u32, min_size=8, max_size=8), st.lists(u16, min_size=3, max_size=3), u32)
def test_stats_c_equals_python(c, counters, drift, frames):
    values = [*counters, *drift, frames]
    stats = c.ffi.new("struct tinyfix_wire_stats *", values)
    encoded = c.call_encode(c.lib.tinyfix_wire_stats_encode, stats)
    assert encoded == StatsResponse(*values).encode()
    assert StatsResponse.decode(encoded) == StatsResponse(*values)
    # A device from before the drift figures sends 32 bytes: they read as 0.
    assert StatsResponse.decode(encoded[:32]) == StatsResponse(*counters)


unicode_text = st.text(st.characters(min_codepoint=1, exclude_categories=["Cs"]), max_size=60)


@given(i16, u16, u8, unicode_text)
def test_error_payload_c_equals_python_and_cuts_long_text(c, status, seq, msg_type, text):
    keep = c.ffi.new("char[]", text.encode())
    err = c.ffi.new("struct tinyfix_wire_error *", [status, seq, msg_type, keep])
    encoded = c.call_encode(c.lib.tinyfix_wire_error_encode, err)
    assert encoded == ErrorResponse(status, seq, msg_type, text).encode()
    assert encoded[5] == min(len(text.encode()), 48)


def test_error_frame_for_a_bad_crc_answers_the_offending_seq(c):
    rx, _buf = c.rx(256)
    wire = bytearray(encode_frame(MsgType.SET_PARAMS, 0xBEEF, 0, b"params"))
    wire[-3] ^= 0x10  # inside the CRC
    (bad,) = c.events(rx, bytes(wire))
    assert bad.status == Status.ERR_CRC
    req = c.ffi.new("struct tinyfix_wire_frame *", {"has_hdr": 1, "seq": bad.header.seq,
                                                     "type": bad.header.type})
    cap = wire_max(OVERHEAD + 6 + 48)
    buf = c.out(cap)
    n = c.lib.tinyfix_wire_error_build(bad.status, req, b"crc", buf, cap)
    reply = decode_frame(bytes(c.ffi.buffer(buf, n)))
    assert (reply.type, reply.seq, reply.flags) == (MsgType.ERROR, 0xBEEF, Flag.RESPONSE)
    assert ErrorResponse.decode(reply.payload) == ErrorResponse(
        Status.ERR_CRC, 0xBEEF, MsgType.SET_PARAMS, "crc"
    )
    anon = c.ffi.new("struct tinyfix_wire_frame *", {"has_hdr": 0, "seq": 9, "type": 9})
    n = c.lib.tinyfix_wire_error_build(-260, anon, c.ffi.NULL, buf, cap)
    assert ErrorResponse.decode(decode_frame(bytes(c.ffi.buffer(buf, n))).payload) == (
        ErrorResponse(-260, 0, 0, "")
    )
