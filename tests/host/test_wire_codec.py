# SPDX-License-Identifier: Apache-2.0
"""The host's wire codec alone: COBS, frames, the incremental decoder, message payloads."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tinyfix.errors import TinyfixError
from tinyfix.wire import (
    BadFrame,
    CaptureRequest,
    CaptureResponse,
    DType,
    ErrorResponse,
    Flag,
    Frame,
    FrameDecoder,
    FrameError,
    GetParamsRequest,
    GetParamsResponse,
    InferRequest,
    InferResponse,
    InfoRequest,
    InfoResponse,
    MsgType,
    PayloadError,
    SetParamsRequest,
    SetParamsResponse,
    StatsRequest,
    StatsResponse,
    Status,
    TensorDesc,
    cobs,
    decode_frame,
    decode_message,
    describe_status,
    encode_frame,
    status_name,
)
from tinyfix.wire.protocol import MAX_FRAME_LIMIT, OVERHEAD, cobs_max

# Payloads that stress COBS: zeros, and non-zero runs around the 254-byte block length.
runs = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.integers(250, 260).map(lambda n: bytes([0x5A]) * n),
        st.just(b"\x00"),
    ),
    max_size=6,
).map(b"".join)
payloads = st.one_of(st.binary(max_size=700), runs)
u16 = st.integers(0, 0xFFFF)
u8 = st.integers(0, 0xFF)


WIKIPEDIA_COBS = [
    (b"", b"\x01"),
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    (bytes(range(255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
]


@pytest.mark.parametrize(("data", "encoded"), WIKIPEDIA_COBS)
def test_cobs_matches_the_reference_vectors(data, encoded):
    assert cobs.encode(data) == encoded
    assert cobs.decode(encoded) == data


def test_cobs_decoder_accepts_a_trailing_empty_block_after_a_full_one():
    data = bytes(range(1, 255))
    assert cobs.decode(b"\xff" + data + b"\x01") == data


@given(payloads)
def test_cobs_round_trips_and_never_emits_zero(data):
    enc = cobs.encode(data)
    assert 0 not in enc
    assert len(enc) <= cobs_max(len(data))
    assert cobs.decode(enc) == data


def test_spec_example_frame_is_byte_exact():
    wire = encode_frame(MsgType.INFO, 0x1234, 0)
    assert wire == bytes.fromhex("00 05 01 01 34 12 05 57 84 68 18 00")
    assert zlib.crc32(bytes.fromhex("0101341200")) == 0x18688457


@given(u8, u16, u8, payloads)
def test_frame_round_trips_with_crc_little_endian(msg_type, seq, flags, payload):
    wire = encode_frame(msg_type, seq, flags, payload)
    assert wire[0] == 0 and wire[-1] == 0 and 0 not in wire[1:-1]
    body = cobs.decode(wire[1:-1])
    assert body[:5] == struct.pack("<BBHB", 1, msg_type, seq, flags)
    assert body[-4:] == struct.pack("<I", zlib.crc32(body[:-4]))
    frame = decode_frame(wire)
    assert (frame.type, frame.seq, frame.flags, frame.payload) == (msg_type, seq, flags, payload)
    assert Frame(msg_type, seq, flags, payload).encode() == wire


def test_frame_refuses_a_payload_beyond_the_protocol_limit():
    with pytest.raises(FrameError) as exc:
        encode_frame(1, 0, 0, bytes(MAX_FRAME_LIMIT - OVERHEAD + 1))
    assert exc.value.status == Status.ERR_TOO_LONG
    assert len(encode_frame(1, 0, 0, bytes(MAX_FRAME_LIMIT - OVERHEAD))) > MAX_FRAME_LIMIT


@given(payloads, st.data())
def test_any_single_bit_flip_is_detected(payload, data):
    wire = bytearray(encode_frame(2, 7, 0, payload))
    bit = data.draw(st.integers(8, (len(wire) - 1) * 8 - 1))
    wire[bit // 8] ^= 1 << (bit % 8)
    events = FrameDecoder().feed(bytes(wire))
    assert not any(isinstance(e, Frame) for e in events)
    assert events, "a damaged frame is counted, never silently lost"


@given(payloads, st.data())
def test_truncated_frame_is_detected_and_next_frame_survives(payload, data):
    wire = encode_frame(2, 7, 0, payload)
    cut = data.draw(st.integers(2, len(wire) - 2))
    follow = encode_frame(3, 8, 0, b"ok")
    events = FrameDecoder().feed(wire[:cut] + follow)
    assert isinstance(events[0], BadFrame)
    assert events[-1] == decode_frame(follow).__class__(3, 8, 0, b"ok", crc=events[-1].crc)
    assert [e for e in events if isinstance(e, Frame)] == [events[-1]]


@given(st.lists(payloads, min_size=1, max_size=4), st.data())
def test_corruption_of_one_frame_never_costs_the_others(frames, data):
    wires = [encode_frame(2, i, 0, p) for i, p in enumerate(frames)]
    victim = data.draw(st.integers(0, len(wires) - 1))
    bad = bytearray(wires[victim])
    kind = data.draw(st.sampled_from(["flip", "zero", "drop", "insert"]))
    pos = data.draw(st.integers(1, len(bad) - 2))
    if kind == "flip":
        bad[pos] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "zero":
        assume(bad[pos] != 0)
        bad[pos] = 0
    elif kind == "drop":
        del bad[pos]
    else:
        bad.insert(pos, data.draw(u8))
    assume(bytes(bad) != wires[victim])
    wires[victim] = bytes(bad)
    dec = FrameDecoder()
    got = [(e.seq, e.payload) for e in dec.feed(b"".join(wires)) if isinstance(e, Frame)]
    others = [(i, p) for i, p in enumerate(frames) if i != victim]
    if len(got) == len(frames):  # only an extra delimiter next to one of its own
        assert got == list(enumerate(frames))
    else:
        assert got == others
        assert dec.crc_errors + dec.framing_errors >= 1


@given(st.binary(max_size=600), payloads)
def test_decoder_resynchronises_after_any_garbage(garbage, payload):
    wire = encode_frame(2, 99, 0, payload)
    dec = FrameDecoder(max_frame=300)
    events = dec.feed(garbage + wire)
    if len(payload) + OVERHEAD <= 300:
        assert isinstance(events[-1], Frame) and events[-1].payload == payload
    else:
        assert events[-1] == BadFrame(Status.ERR_TOO_LONG, events[-1].header)
        assert events[-1].header is not None and events[-1].header.seq == 99


@given(st.lists(st.binary(max_size=64), max_size=8))
def test_decoder_never_raises_on_arbitrary_chunks(chunks):
    dec = FrameDecoder(max_frame=64)
    for chunk in chunks:
        for event in dec.feed(chunk):
            assert isinstance(event, (Frame, BadFrame))


@given(payloads, st.integers(1, 50))
def test_decoder_gives_the_same_result_for_any_chunking(payload, step):
    wire = b"\x13\x37" + encode_frame(4, 1, 0, payload) + encode_frame(4, 2, 0, b"")
    whole = FrameDecoder().feed(wire)
    dec = FrameDecoder()
    pieces = []
    for i in range(0, len(wire), step):
        pieces += dec.feed(wire[i : i + step])
    assert pieces == whole


def test_decoder_ignores_empty_frames_and_reports_each_failure_kind():
    dec = FrameDecoder(max_frame=OVERHEAD + 4)
    good = encode_frame(6, 5, 0, b"abcd")
    too_long = encode_frame(6, 6, 0, b"abcde")
    short = b"\x00" + cobs.encode(b"\x01\x06\x07\x00") + b"\x00"
    body = bytearray(cobs.decode(encode_frame(6, 8, 0, b"x")[1:-1]))
    body[-1] ^= 0xFF
    bad_crc = b"\x00" + cobs.encode(bytes(body)) + b"\x00"
    cut_block = b"\x00\x09\x01\x06\x09\x09\x05\x00"
    events = dec.feed(b"\x00\x00\x00" + good + too_long + short + bad_crc + cut_block)
    assert [type(e).__name__ for e in events] == ["Frame"] + ["BadFrame"] * 4
    assert [e.status for e in events[1:]] == [
        Status.ERR_TOO_LONG, Status.ERR_FRAMING, Status.ERR_CRC, Status.ERR_FRAMING,
    ]
    assert events[1].header.seq == 6
    assert events[2].header is None  # 4 bytes: no header
    assert events[3].header.seq == 8
    assert events[4].header.seq == 0x0909  # decoded before the block was cut
    assert (dec.frames_ok, dec.crc_errors, dec.framing_errors) == (1, 1, 3)


def test_overlong_garbage_without_delimiter_stays_bounded():
    dec = FrameDecoder(max_frame=300)
    for _ in range(100):
        assert dec.feed(b"\x01" * 1000) == []
    assert len(dec._raw) <= 400
    (event,) = dec.feed(b"\x00")
    assert event.status == Status.ERR_TOO_LONG


# Messages


f32 = st.floats(width=32, allow_nan=False)
tensors = st.builds(
    TensorDesc,
    st.sampled_from(list(DType)),
    st.lists(u16, max_size=6).map(tuple),
    f32,
    st.integers(-(2**31), 2**31 - 1),
)
short_text = st.text(max_size=32).filter(lambda s: len(s.encode()) <= 32)
i16 = st.integers(-(2**15), 2**15 - 1)
u32 = st.integers(0, 2**32 - 1)

messages = st.one_of(
    st.just(InfoRequest()),
    st.builds(InfoResponse, u8, u16, u32, u32, u16, u16, u16, u16, u32, tensors, tensors,
              tensors, short_text, short_text, u8),
    st.builds(InferRequest, st.binary(max_size=300), i16, st.booleans(), st.booleans(),
              st.booleans(), st.booleans()),
    st.builds(InferResponse, i16, i16, i16, u16, u32, u32, st.binary(max_size=64),
              st.lists(u16, max_size=64).map(tuple), st.binary(max_size=64)),
    st.builds(CaptureRequest, u16, st.sampled_from([DType.FLOAT32, DType.INT8])),
    st.builds(CaptureResponse.from_values, u16, u16, u32, st.just(DType.INT16),
              st.lists(i16, max_size=100)),
    st.builds(CaptureResponse.from_values, u16, u16, u32, st.just(DType.FLOAT32),
              st.lists(f32, max_size=100)),
    st.just(GetParamsRequest()),
    st.builds(GetParamsResponse, st.binary(max_size=200)),
    st.builds(SetParamsRequest, st.binary(max_size=200), st.booleans()),
    st.builds(SetParamsResponse, i16, u32, st.booleans()),
    st.just(StatsRequest()),
    st.builds(StatsResponse, u32, u32, u32, u32, u32, u32, u32, u32),
    st.builds(ErrorResponse, i16, u16, u8, st.text(max_size=20)),
)


@given(messages, u16)
def test_every_message_round_trips_through_a_frame(msg, seq):
    frame = decode_frame(msg.frame(seq).encode())
    assert frame.is_response == msg.RESPONSE
    assert decode_message(frame) == msg


@given(messages, st.binary(min_size=1, max_size=8))
def test_decoders_ignore_appended_fields(msg, extra):
    assume(not isinstance(msg, (InferRequest, GetParamsResponse, SetParamsRequest)))
    assert type(msg).decode(msg.encode() + extra, msg.flags()) == msg


@given(messages, st.data())
def test_truncated_payloads_raise_payload_errors_only(msg, data):
    payload = msg.encode()
    assume(payload)
    cut = data.draw(st.integers(0, len(payload) - 1))
    try:
        type(msg).decode(payload[:cut], msg.flags())
    except PayloadError as err:
        assert err.status in (Status.ERR_LENGTH, Status.ERR_VALUE)
        assert isinstance(err, TinyfixError)


def test_infer_request_carries_flags_in_the_header():
    req = InferRequest(b"\x01\x02", label=3, want_features=True, reset=True)
    assert req.flags() == Flag.FEATURES | Flag.RESET
    assert InferRequest(b"", reset_model=True).flags() == Flag.MODEL_RESET == 0x08
    assert req.encode() == b"\x03\x00\x01\x02"
    assert SetParamsRequest(b"p", persist=False).flags() == 0x01


def test_info_layout_matches_the_spec_offsets():
    inp = TensorDesc(DType.INT8, (1, 64, 3), 0.5, -3)
    info = InfoResponse(0x03, 1024, 0xA1B2C3D4, 0x01020304, 2, 6, 16, 8, 64_000_000,
                        inp, TensorDesc(DType.INT8, (1, 6), 0.25, 5), TensorDesc(),
                        "v0.1.0", "qemu_cortex_m3")
    p = info.encode()
    assert p[0] == 1 and p[1] == 0x03
    assert struct.unpack_from("<HII", p, 2) == (1024, 0xA1B2C3D4, 0x01020304)
    assert struct.unpack_from("<HHHHI", p, 12) == (2, 6, 16, 8, 64_000_000)
    assert p[24:26] == bytes([DType.INT8, 3])
    assert struct.unpack_from("<3Hfi", p, 26) == (1, 64, 3, 0.5, -3)
    assert p[-34:-19] == b"\x0eqemu_cortex_m3"
    # Appended limits: model kind, outputs, max params, features, head weights, channels,
    # anomaly window (defaults 0 here).
    assert struct.unpack("<BIIHIHH", p[-19:]) == (0,) * 7
    assert inp.nbytes == 192


def test_status_names_cover_link_and_core_codes():
    assert status_name(Status.ERR_BUSY) == "ERR_BUSY"
    assert status_name(-4) == "TINYFIX_ERR_MODEL"
    assert status_name(-200) == "core error -200"
    assert "another model" in describe_status(-4)
    assert describe_status(-258).endswith("(ERR_BUSY, -258)")
