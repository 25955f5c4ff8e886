# SPDX-License-Identifier: Apache-2.0
"""Tensors and parameter sets of any size (docs/protocol.md 5.7, 5.8): WRITE and READ in C
and Python byte for byte, the device's chunk rules under lost, repeated and reordered
chunks, and the host's Link moving large inputs, outputs, features and sets through the C
dispatcher over a lossy line."""

from __future__ import annotations

import random
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyfix.core import Corrector, ModelInfo, Params
from tinyfix.errors import TinyfixError
from tinyfix.twin import DeviceOps, Dispatcher, Invoked, StaticInfo
from tinyfix.wire import (
    DeviceError,
    DType,
    FrameDecoder,
    InfoResponse,
    Link,
    MsgType,
    Status,
    TensorDesc,
    decode_message,
    encode_frame,
    protocol,
)
from tinyfix.wire.messages import (
    InferRequest,
    InferResponse,
    ReadRequest,
    ReadResponse,
    SetParamsRequest,
    SetParamsResponse,
    WriteRequest,
    WriteResponse,
)
from tinyfix.wire.protocol import Flag, InferFlag, Target

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 2**32 - 1)
i16 = st.integers(-(2**15), 2**15 - 1)
i32 = st.integers(-(2**31), 2**31 - 1)

N_CLASSES, N_FEATURES = 4, 300


def test_python_constants_equal_the_c_header(core):
    lib = core.lib
    for t in Target:
        assert t == getattr(lib, f"TINYFIX_WIRE_TARGET_{t.name}")
    assert Flag.STAGED == lib.TINYFIX_WIRE_FLAG_STAGED
    assert protocol.Cap.CHUNKS == lib.TINYFIX_WIRE_CAP_CHUNKS
    assert InferFlag.ANOMALY == lib.TINYFIX_WIRE_INFER_ANOMALY
    assert InferFlag.RAW_DEFERRED == lib.TINYFIX_WIRE_INFER_RAW_DEFERRED
    assert InferFlag.FEATURES_DEFERRED == lib.TINYFIX_WIRE_INFER_FEAT_DEFERRED
    assert protocol.WRITE_REQ_FIXED == lib.TINYFIX_WIRE_WRITE_REQ_FIXED
    assert protocol.READ_RSP_FIXED == lib.TINYFIX_WIRE_READ_RSP_FIXED
    assert len(ReadRequest(1, 2, 3).encode()) == lib.TINYFIX_WIRE_READ_REQ_LEN
    assert len(WriteResponse(0, 1, 2, 3).encode()) == lib.TINYFIX_WIRE_WRITE_RSP_LEN


@given(u8, u32, st.binary(max_size=600), st.integers(0, 700))
def test_write_request_python_decodes_in_c(core, target, offset, data, extra):
    ffi, lib = core.ffi, core.lib
    total = offset + len(data) + extra if offset + len(data) + extra < 2**32 else 2**32 - 1
    payload = WriteRequest(target, offset, total, data).encode()
    out = ffi.new("struct tinyfix_wire_write_req *")
    err = lib.tinyfix_wire_write_req_decode(payload, len(payload), out)
    if offset + len(data) > total:
        assert err == lib.TINYFIX_WIRE_ERR_LENGTH
        return
    assert err == 0
    assert (out.target, out.offset, out.total) == (target, offset, total)
    assert bytes(ffi.buffer(out.data, out.len)) == data
    assert lib.tinyfix_wire_write_req_decode(payload, 8, out) == lib.TINYFIX_WIRE_ERR_LENGTH


def test_a_chunk_past_the_objects_end_is_refused_in_c(core):
    ffi, lib = core.ffi, core.lib
    out = ffi.new("struct tinyfix_wire_write_req *")
    for offset, total, data in ((10, 12, b"abc"), (2**32 - 2, 2**32 - 1, b"xyz"), (5, 4, b"")):
        payload = struct.pack("<BII", 1, offset, total) + data
        assert lib.tinyfix_wire_write_req_decode(payload, len(payload), out) == \
            lib.TINYFIX_WIRE_ERR_LENGTH


@given(i16, u8, u32, u32)
def test_write_response_c_equals_python(core, status, target, next_, total):
    ffi, lib = core.ffi, core.lib
    rsp = ffi.new("struct tinyfix_wire_write_rsp *")
    rsp.status, rsp.target, rsp.next, rsp.total = status, target, next_, total
    buf = ffi.new("uint8_t[]", 16)
    n = lib.tinyfix_wire_write_rsp_encode(rsp, buf, 16)
    py = WriteResponse(status, target, next_, total)
    assert bytes(ffi.buffer(buf, n)) == py.encode()
    assert WriteResponse.decode(py.encode()) == py


@given(u8, u32, u16, i16, u32, st.binary(max_size=300))
def test_read_request_and_response_c_equal_python(core, target, offset, max_len, status, total,
                                                  data):
    ffi, lib = core.ffi, core.lib
    payload = ReadRequest(target, offset, max_len).encode()
    out = ffi.new("struct tinyfix_wire_read_req *")
    assert lib.tinyfix_wire_read_req_decode(payload, len(payload), out) == 0
    assert (out.target, out.offset, out.max_len) == (target, offset, max_len)
    buf = ffi.new("uint8_t[]", 16)
    n = lib.tinyfix_wire_read_rsp_header(status, target, offset, total, buf, 16)
    py = ReadResponse(status, target, offset, total, data)
    assert bytes(ffi.buffer(buf, n)) + data == py.encode()
    assert ReadResponse.decode(py.encode()) == py


@given(u8, u32, u32, u16, u32, u16, u16)
def test_info_limits_c_equal_python(core, kind, outputs, max_params, max_features, max_weights,
                                    max_channels, max_window):
    ffi, lib = core.ffi, core.lib
    py = InfoResponse(0x20, 1024, 1, 2, 2, 3, 16, 8, 0, TensorDesc(), TensorDesc(),
                      model_kind=kind, n_outputs=outputs, max_params=max_params,
                      max_features=max_features, max_head_weights=max_weights,
                      max_channels=max_channels, max_anomaly_window=max_window)
    info = ffi.new("struct tinyfix_wire_info *")
    for name in ("caps", "max_frame", "model_crc", "params_crc", "params_format", "n_classes",
                 "max_classes", "max_window", "model_kind", "n_outputs", "max_params",
                 "max_features", "max_head_weights", "max_channels", "max_anomaly_window"):
        setattr(info, name, getattr(py, name))
    buf = ffi.new("uint8_t[]", 512)
    n = lib.tinyfix_wire_info_encode(info, buf, 512)
    assert bytes(ffi.buffer(buf, n)) == py.encode()
    assert InfoResponse.decode(py.encode()) == py


@given(i32, u8)
def test_infer_response_appended_fields_c_equal_python(core, score, flags):
    ffi, lib = core.ffi, core.lib
    rsp = ffi.new("struct tinyfix_wire_infer_rsp *")
    rsp.anomaly_score, rsp.flags = score, flags
    buf = ffi.new("uint8_t[]", 64)
    n = lib.tinyfix_wire_infer_rsp_encode(rsp, buf, 64)
    py = InferResponse(0, 0, 0, 0, 0, 0, b"", (), b"", score, flags)
    assert bytes(ffi.buffer(buf, n)) == py.encode()
    # A decoder that predates the appended fields still reads the rest.
    assert InferResponse.decode(py.encode()[:-5]).anomaly_score == 0


# ---- The device: the C dispatcher with an input of any size ---------------------------------


def digest_model(x: bytes) -> tuple[bytes, bytes]:
    """Raw outputs that fingerprint every input byte, and features that copy its start."""
    crc = zlib.crc32(x)
    raw = struct.pack("<4b", *[((crc >> (8 * i)) & 0xFF) - 128 for i in range(4)])
    feats = (x * (N_FEATURES // max(len(x), 1) + 1))[:N_FEATURES]
    return raw, feats


class ChunkDevice:
    """A device whose input is `n_input` bytes, answering through the C dispatcher."""

    def __init__(self, core, n_input: int, max_frame: int = 256,
                 params_size: int | None = None) -> None:
        self.model = ModelInfo(model_crc=0xC4A11, n_classes=N_CLASSES, output_scale=0.125,
                               output_zero_point=0, n_features=N_FEATURES,
                               feature_zero_point=-128)
        self.out = bytearray()
        self.stored: list[bytes] = []
        info = StaticInfo(
            model_crc=self.model.model_crc,
            input=TensorDesc(DType.INT8, (1, n_input), 0.5, 0),
            output=TensorDesc(DType.INT8, (1, N_CLASSES), 0.125, 0),
            feature=TensorDesc(DType.INT8, (1, N_FEATURES), 0.25, -128),
        )
        self.corrector = Corrector(core, self.model)
        self.dispatcher = Dispatcher(self.corrector, DeviceOps(
            write=self.out.extend, info=info, invoke=self.invoke, persist=self.persist),
            max_frame=max_frame, params_size=params_size)
        self.decoder = FrameDecoder()

    def invoke(self, x: bytes, features: bool) -> Invoked:
        raw, feats = digest_model(x)
        return Invoked(raw, feats if features else None)

    def persist(self, blob: bytes) -> bool:
        self.stored.append(blob)
        return True

    def send(self, msg, seq: int):
        """One request frame in, its decoded response out."""
        self.dispatcher.feed(encode_frame(msg.TYPE, seq, msg.flags(), msg.encode()))
        frames = [f for f in self.decoder.feed(bytes(self.out)) if hasattr(f, "payload")]
        self.out.clear()
        assert len(frames) == 1
        return decode_message(frames[0])


def chunks(data: bytes, room: int) -> list[tuple[int, bytes]]:
    return [(o, data[o:o + room]) for o in range(0, len(data), room)]


def resume(device: ChunkDevice, target: int, data: bytes, room: int, seq: int) -> int:
    """The host's rule: send the chunk at the offset the device asks for, until it has all."""
    offset = 0
    for _ in range(10 * (len(data) // room + 2)):
        rsp = device.send(WriteRequest(target, offset, len(data), data[offset:offset + room]),
                          seq)
        seq += 1
        assert isinstance(rsp, WriteResponse) and rsp.status == 0
        if rsp.next == len(data):
            return seq
        offset = rsp.next
    raise AssertionError("no progress")


@settings(max_examples=25, deadline=None)
@given(st.integers(300, 3000), st.integers(40, 238), st.randoms(use_true_random=False),
       st.data())
def test_lost_repeated_and_reordered_input_chunks_never_corrupt_the_input(core, n, room, rnd,
                                                                          data):
    device = ChunkDevice(core, n)
    x = bytes(rnd.getrandbits(8) for _ in range(n))
    stale = bytes(b ^ 0x5A for b in x)  # what a chunk from an older transfer would carry
    plan = chunks(x, room)
    chaos = [p for p in plan if data.draw(st.booleans())]  # some chunks lost
    chaos += [p for p in plan if data.draw(st.integers(0, 4)) == 0]  # some repeated
    chaos += [(o, stale[o:o + len(c)]) for o, c in plan[1:] if rnd.random() < 0.1]
    rnd.shuffle(chaos)  # and reordered
    seq = 100
    for offset, piece in chaos:
        rsp = device.send(WriteRequest(Target.INPUT, offset, n, piece), seq)
        seq += 1
        if rsp.TYPE == MsgType.ERROR:  # a chunk of no transfer in progress: refused, whole
            assert rsp.status == Status.ERR_VALUE and offset > 0
            continue
        assert rsp.status == 0 and rsp.next <= n
        if rsp.next < n:  # incomplete: INFER STAGED is refused, nothing runs on half an input
            refused = device.send(InferRequest(b"", staged=True), seq)
            seq += 1
            assert refused.TYPE == MsgType.ERROR and refused.status == Status.ERR_VALUE
    seq = resume(device, Target.INPUT, x, room, seq)
    rsp = device.send(InferRequest(b"", want_features=True, staged=True), seq)
    assert rsp.status == 0 and rsp.features_deferred
    features = b"".join(device.send(ReadRequest(Target.FEATURES, o, 200), seq + 1 + o).data
                        for o in range(0, N_FEATURES, 200))
    assert (rsp.raw, features) == digest_model(x)


@settings(max_examples=20, deadline=None)
@given(st.integers(20, 60), st.integers(40, 238), st.randoms(use_true_random=False))
def test_a_staged_parameter_set_is_checked_whole_and_applied_once(core, columns, room, rnd):
    device = ChunkDevice(core, 64)
    old_crc = Params.identity(core, device.model).crc
    params = residual_set(core, device.model, columns, rnd)
    blob = params.encode()
    assert len(blob) > 256  # more than a frame
    # A tampered copy arriving first, then the real one restarting at offset 0: only the
    # chunks in order from offset 0 of the last transfer count.
    bad = bytearray(blob)
    bad[len(bad) // 2] ^= 0xFF
    seq = resume(device, Target.PARAMS, bytes(bad), room, 10)
    rsp = device.send(SetParamsRequest(b"", staged=True), seq)
    assert rsp.status == -3 and rsp.params_crc == old_crc  # TINYFIX_ERR_CRC, old set kept
    assert device.stored == []
    seq = resume(device, Target.PARAMS, blob, room, seq + 1)
    # Repeating chunks after completion changes nothing.
    device.send(WriteRequest(Target.PARAMS, room, len(blob), bytes(bad[room:2 * room])), seq)
    rsp = device.send(SetParamsRequest(b"", staged=True), seq + 1)
    assert isinstance(rsp, SetParamsResponse) and rsp.status == 0
    assert rsp.params_crc == params.crc and device.stored == [blob]
    # The staged blob was used up: a second SET_PARAMS STAGED has nothing to apply.
    again = device.send(SetParamsRequest(b"", staged=True), seq + 2)
    assert again.TYPE == MsgType.ERROR and again.status == Status.ERR_VALUE


def residual_set(core, model: ModelInfo, columns: int, rnd: random.Random) -> Params:
    p = Params.identity(core, model)
    c = p.c
    c.flags |= 0x01
    c.n_features, c.head_rows, c.head_columns = N_FEATURES, N_CLASSES, columns
    for f in sorted(rnd.sample(range(N_FEATURES), columns)):
        c.head.columns[f // 8] |= 1 << (f % 8)
    for r in range(N_CLASSES):
        c.head.multiplier[r], c.head.shift[r] = 1 << 30, rnd.randint(-10, 5)
        c.head.bias[r] = rnd.randint(-1000, 1000)
    for i in range(N_CLASSES * columns):
        c.head.weights[i] = rnd.randint(-127, 127)
    return p.seal()


def test_write_refuses_what_does_not_fit_with_reasons(core):
    device = ChunkDevice(core, 500, params_size=0)
    rsp = device.send(WriteRequest(Target.INPUT, 0, 499, b"x"), 1)
    assert rsp.status == Status.ERR_VALUE and "input tensor's size" in rsp.text
    rsp = device.send(WriteRequest(Target.PARAMS, 0, 400, b"x"), 2)
    assert rsp.status == Status.ERR_UNSUPPORTED
    rsp = device.send(WriteRequest(9, 0, 10, b"x"), 3)
    assert rsp.status == Status.ERR_VALUE
    staging = ChunkDevice(core, 500)
    staging.send(WriteRequest(Target.PARAMS, 0, 500, b"a" * 100), 4)
    rsp = staging.send(WriteRequest(Target.PARAMS, 100, 400, b"b"), 5)
    assert rsp.status == Status.ERR_VALUE and "offset 0" in rsp.text


def test_read_returns_the_active_set_and_the_last_tensors_in_pieces(core):
    device = ChunkDevice(core, 64)
    rsp = device.send(ReadRequest(Target.OUTPUT, 0, 100), 1)
    assert rsp.TYPE == MsgType.ERROR and "INFER" in rsp.text  # nothing run yet
    x = bytes(range(64))
    device.send(InferRequest(x, want_features=True), 2)
    raw, feats = digest_model(x)
    got = b"".join(device.send(ReadRequest(Target.FEATURES, o, 100), 3 + o).data
                   for o in range(0, N_FEATURES, 100))
    assert got == feats
    assert device.send(ReadRequest(Target.OUTPUT, 0, 100), 9).data == raw
    expected = Params.identity(core, device.model).encode()
    pieces = [device.send(ReadRequest(Target.PARAMS, o, 50), 20 + o) for o in range(0, 400, 50)]
    assert all(p.total == len(expected) for p in pieces)
    assert b"".join(p.data for p in pieces) == expected


# ---- The host's Link over a lossy line -------------------------------------------------------


class LossyPort:
    """Between a Link and a ChunkDevice: drops, repeats and corrupts whole frames in both
    directions at the given rate; a fake clock makes every timeout instant."""

    def __init__(self, device: ChunkDevice, rate: float, seed: int) -> None:
        self.device = device
        self.rng = random.Random(seed)
        self.rate = rate
        self.rx = bytearray()
        self.timeout: float | None = 0.0
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s

    def _mangle(self, data: bytes) -> list[bytes]:
        roll = self.rng.random()
        if roll < self.rate:
            return []
        if roll < 2 * self.rate:
            return [data, data]
        if roll < 3 * self.rate:
            damaged = bytearray(data)
            damaged[self.rng.randrange(1, len(damaged) - 1)] ^= 0x10
            return [bytes(damaged)]
        return [data]

    def write(self, data: bytes) -> int:
        for piece in self._mangle(bytes(data)):
            self.device.dispatcher.feed(piece)
        for piece in self._mangle(bytes(self.device.out)):
            self.rx += piece
        self.device.out.clear()
        return len(data)

    def read(self, n: int = 1) -> bytes:
        if not self.rx:
            self.now += 0.05
            return b""
        out = bytes(self.rx[:n])
        del self.rx[:n]
        return out

    @property
    def in_waiting(self) -> int:
        return len(self.rx)


@pytest.mark.parametrize("rate", [0.0, 0.05])
def test_the_link_moves_large_inputs_features_and_sets_over_a_lossy_line(core, rate):
    device = ChunkDevice(core, 3000)
    port = LossyPort(device, rate, seed=7)
    link = Link(port, seq=1, retries=8, clock=port.clock, sleep=port.sleep)
    link.info()
    rng = random.Random(3)
    for _ in range(5):
        x = bytes(rng.getrandbits(8) for _ in range(3000))
        rsp = link.infer(x, features=True)
        assert (rsp.raw, rsp.features) == digest_model(x)
        assert rsp.features_deferred  # 300 features do not fit a 256-byte frame
    params = residual_set(core, device.model, 40, rng)
    assert link.set_params(params.encode()).params_crc == params.crc
    assert link.get_params() == params.encode()


def test_the_link_says_what_to_do_when_a_set_exceeds_the_devices_staging(core):
    device = ChunkDevice(core, 64, params_size=300)
    link = Link(LossyPort(device, 0.0, 1), seq=1)
    info = link.info()
    assert info.max_params == 300
    big = residual_set(core, device.model, 60, random.Random(1)).encode()
    with pytest.raises(TinyfixError, match="CONFIG_TINYFIX_MAX_HEAD_WEIGHTS"):
        link.set_params(big)


def test_an_old_device_without_chunks_gets_a_clear_message(core):
    device = ChunkDevice(core, 3000)
    link = Link(LossyPort(device, 0.0, 1), seq=1)
    link.device = None  # as if INFO came from firmware without WRITE/READ
    with pytest.raises(TinyfixError, match="cannot take it in chunks"):
        link.infer(bytes(3000))
    with pytest.raises(DeviceError):
        link.request(WriteRequest(Target.INPUT, 0, 10, b"x"))  # refused: wrong size


def test_inputs_that_fit_a_frame_still_go_inline(core):
    device = ChunkDevice(core, 100)
    port = LossyPort(device, 0.0, 1)
    link = Link(port, seq=1)
    link.info()
    x = np.arange(100, dtype=np.int8).tobytes()
    sent = []
    original = port.write

    def spy(data: bytes) -> int:
        sent.append(data)
        return original(data)

    port.write = spy  # type: ignore[method-assign]
    assert link.infer(x).raw == digest_model(x)[0]
    assert len(sent) == 1  # one INFER frame, no WRITE
