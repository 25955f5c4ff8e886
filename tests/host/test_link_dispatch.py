# SPDX-License-Identifier: Apache-2.0
"""The firmware's C request dispatcher (tinyfix_link.c) against the host's Link client.

The device end is the C dispatcher with Python platform ops and a toy model; the port is
in memory, so every byte the host sends goes through the C receiver and every answer
through the C encoders, without threads or timing.
"""

from __future__ import annotations

import struct
from dataclasses import replace

import numpy as np
import pytest

from tinyfix.core import Corrector, ModelInfo, Params
from tinyfix.errors import TinyfixError
from tinyfix.twin import DeviceOps, Dispatcher, Invoked, OpError, StaticInfo, Window
from tinyfix.wire import (
    Cap,
    DeviceError,
    DType,
    ErrorResponse,
    Flag,
    FrameDecoder,
    Link,
    MsgType,
    ParamsRejected,
    Status,
    TensorDesc,
    cobs,
    decode_frame,
    decode_message,
    encode_frame,
)

TINYFIX_ERR_MODEL = -4
TINYFIX_ERR_FORMAT = -9
STAGE_ADAPT, STAGE_MONITOR = 0x40, 0x80
DRIFT_ADVISED, DRIFT_CONF = 0x01, 0x02
N_IN, N_CLASSES, N_FEATURES = 24, 6, 10
MODEL = ModelInfo(model_crc=0xC0FFEE06, n_classes=N_CLASSES, output_type="int8",
                  output_scale=0.09375, output_zero_point=-7, n_features=N_FEATURES,
                  feature_zero_point=-128)
INFO = StaticInfo(
    model_crc=MODEL.model_crc,
    input=TensorDesc(DType.INT8, (1, N_IN), 0.25, 0),
    output=TensorDesc(DType.INT8, (1, N_CLASSES), MODEL.output_scale, MODEL.output_zero_point),
    feature=TensorDesc(DType.INT8, (1, N_FEATURES), 0.0625, -128),
    cycle_hz=1000, fw_version="test 1", board="in-memory",
)


def toy_model(x: bytes) -> tuple[bytes, bytes]:
    """Raw outputs and features that depend on every input byte."""
    v = np.frombuffer(x, dtype=np.int8).astype(np.int32)
    raw = np.clip(v.reshape(4, N_CLASSES).sum(axis=0) // 2, -128, 127).astype(np.int8)
    feats = np.clip(np.abs(v[:N_FEATURES]) - 128, -128, 127).astype(np.int8)
    return raw.tobytes(), feats.tobytes()


class Device:
    """The C dispatcher with recording Python ops."""

    def __init__(self, core, *, capture: bool = True, persist: bool = True) -> None:
        self.out = bytearray()
        self.stored: list[bytes] = []
        self.invoked = 0
        self.fail_invoke = False
        self.clock = 0
        self.corrector = Corrector(core, MODEL)
        self.dispatcher = Dispatcher(self.corrector, DeviceOps(
            write=self.out.extend,
            info=INFO,
            invoke=self.invoke,
            capture=self.capture if capture else None,
            persist=self.persist if persist else None,
            cycles=self.cycles,
            uptime_ms=lambda: 1234,
        ))

    def invoke(self, x: bytes, features: bool) -> Invoked:
        if self.fail_invoke:
            raise RuntimeError("TFLM said no")
        self.invoked += 1
        raw, feats = toy_model(x)
        return Invoked(raw, feats if features else None, cycles=777)

    def capture(self, dtype: int) -> Window:
        if dtype == DType.INT8:
            raise OpError(Status.ERR_SENSOR, "sensor unplugged")
        self.clock += 1280
        return Window(np.arange(N_IN, dtype=np.float32).tobytes(), self.clock)

    def persist(self, blob: bytes) -> bool:
        self.stored.append(blob)
        return True

    def cycles(self) -> int:
        self.clock += 5
        return self.clock


class MemoryPort:
    """A serial port whose far end is the device, answering synchronously."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.timeout: float | None = 0.0
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.sent.append(bytes(data))
        self.device.dispatcher.feed(bytes(data))
        return len(data)

    def read(self, size: int = 1) -> bytes:
        out = bytes(self.device.out[:size])
        del self.device.out[:size]
        return out

    @property
    def in_waiting(self) -> int:
        return len(self.device.out)


@pytest.fixture
def device(core) -> Device:
    return Device(core)


@pytest.fixture
def link(device) -> Link:
    return Link(MemoryPort(device), seq=0x4000, timeout=0.2)


def exchange(device: Device, wire: bytes) -> list:
    """Feed raw bytes; return every frame or bad frame the device sent back."""
    device.dispatcher.feed(wire)
    events = FrameDecoder().feed(bytes(device.out))
    device.out.clear()
    return events


def sealed(core, **fields) -> Params:
    p = Params.identity(core, MODEL)
    for name, value in fields.items():
        setattr(p.c, name, value)
    return p.seal()


def tempered(core) -> Params:
    p = Params.identity(core, MODEL)
    p.c.inv_temperature = 3 * 65536 // 2
    for c in range(N_CLASSES):
        p.c.class_bias[c] = (c - 2) * 65536 // 3
    return p.seal()


def test_info_reports_the_model_the_limits_and_the_capabilities(link, core):
    info = link.info()
    assert info.model_crc == MODEL.model_crc
    assert (info.input, info.output, info.feature) == (INFO.input, INFO.output, INFO.feature)
    assert info.params_crc == Params.identity(core, MODEL).crc
    assert (info.n_classes, info.max_frame, info.cycle_hz) == (N_CLASSES, 1024, 1000)
    assert info.max_classes == core.lib.TINYFIX_MAX_CLASSES
    assert info.max_window == core.lib.TINYFIX_MAX_VOTE_FRAMES
    assert info.caps == Cap.CAPTURE | Cap.FEATURES | Cap.PERSIST | Cap.ADAPT | Cap.CHUNKS
    assert (info.fw_version, info.board) == ("test 1", "in-memory")
    # What the device can take, so the host sizes everything from it.
    assert (info.model_kind, info.n_outputs) == (0, N_CLASSES)
    assert info.max_features == core.lib.TINYFIX_MAX_FEATURES
    assert info.max_head_weights == core.lib.TINYFIX_MAX_HEAD_WEIGHTS
    assert info.max_channels == core.lib.TINYFIX_MAX_CHANNELS
    assert info.max_anomaly_window == core.lib.TINYFIX_MAX_ANOMALY_WINDOW
    # The largest set of this model: a whole layer of 6 x 10 (and a residual's bitmap).
    size = core.lib.tinyfix_params_encoded_size
    assert info.max_params == size(N_CLASSES, 0, N_FEATURES, N_CLASSES, 0) + 2


def test_a_device_without_sensor_or_storage_says_so(core):
    info = Link(MemoryPort(Device(core, capture=False, persist=False)), seq=1).info()
    assert info.caps == Cap.FEATURES | Cap.ADAPT | Cap.CHUNKS


class StatefulDevice(Device):
    """A model whose output adds the previous input's (a recurrent state), with a reset."""

    def __init__(self, core) -> None:
        self.previous = bytes(N_IN)
        self.resets = 0
        super().__init__(core)
        ops = replace(self.dispatcher.ops, reset_model=self.reset_model)
        self.dispatcher = Dispatcher(self.corrector, ops)

    def invoke(self, x: bytes, features: bool) -> Invoked:
        mixed = (np.frombuffer(x, np.int8).astype(np.int16)
                 + np.frombuffer(self.previous, np.int8)).clip(-128, 127).astype(np.int8)
        self.previous = x
        return super().invoke(mixed.tobytes(), features)

    def reset_model(self) -> None:
        self.resets += 1
        self.previous = bytes(N_IN)


def test_a_model_that_keeps_state_is_reset_only_when_the_host_asks(core):
    device = StatefulDevice(core)
    link = Link(MemoryPort(device), seq=5)
    assert link.info().caps & Cap.MODEL_RESET
    a, b = (np.full(N_IN, v, dtype=np.int8).tobytes() for v in (20, -30))
    alone = link.infer(b, reset_model=True).raw
    link.infer(a)
    assert link.infer(b).raw != alone  # b after a: the state of a is in it
    link.infer(a)
    assert link.infer(b, reset_model=True).raw == alone
    assert device.resets == 2
    # RESET starts the core's window afresh, not the model's state.
    link.infer(a)
    assert link.infer(b, reset=True).raw != alone and device.resets == 2


def test_model_reset_is_a_no_op_for_a_stateless_device(link, device):
    assert not link.info().caps & Cap.MODEL_RESET
    x = np.arange(N_IN, dtype=np.int8).tobytes()
    assert link.infer(x, reset_model=True).raw == toy_model(x)[0]


def test_a_failed_model_reset_is_an_error_reply_and_the_model_is_not_run(core):
    device = StatefulDevice(core)

    def broken() -> None:
        raise RuntimeError("Reset() failed")

    device.dispatcher = Dispatcher(device.corrector,
                                   replace(device.dispatcher.ops, reset_model=broken))
    link = Link(MemoryPort(device), seq=9)
    with pytest.raises(DeviceError, match="model reset failed"):
        link.infer(bytes(N_IN), reset_model=True)
    assert device.invoked == 0


def test_infer_equals_the_core_run_directly_on_the_same_raw_outputs(link, device, core):
    link.set_params(tempered(core).encode())
    reference = Corrector(core, MODEL, tempered(core))
    rng = np.random.default_rng(7)
    for _ in range(20):
        x = rng.integers(-128, 128, N_IN, dtype=np.int8).tobytes()
        rsp = link.infer(x)
        raw, _ = toy_model(x)
        expected = reference.process(np.frombuffer(raw, dtype=np.int8))
        assert rsp.status == 0
        assert rsp.raw == raw
        assert list(rsp.prob) == list(expected.prob)
        assert (rsp.top_class, rsp.decision, rsp.top_conf) == (
            expected.top_class, expected.decision, expected.top_prob)
        assert rsp.cycles_invoke == 777 and rsp.cycles_tinyfix > 0
        assert rsp.features == b""
    assert device.invoked == 20


def test_features_come_back_only_when_asked(link):
    x = bytes(range(N_IN))
    assert link.infer(x, features=True).features == toy_model(x)[1]
    assert link.infer(x).features == b""


def test_infer_of_the_wrong_size_or_label_is_refused_without_running_the_model(link, device):
    with pytest.raises(DeviceError) as err:
        link.infer(bytes(N_IN - 1))
    assert err.value.status == Status.ERR_LENGTH
    with pytest.raises(DeviceError) as err:
        link.infer(bytes(N_IN), label=N_CLASSES)
    assert err.value.status == Status.ERR_VALUE
    assert device.invoked == 0


def test_a_failed_invoke_is_an_error_reply_and_the_device_goes_on(link, device):
    device.fail_invoke = True
    with pytest.raises(DeviceError) as err:
        link.infer(bytes(N_IN))
    assert err.value.status == Status.ERR_INVOKE
    assert "TFLM said no" in str(device.dispatcher.errors[-1])
    device.fail_invoke = False
    assert link.infer(bytes(N_IN)).status == 0


def test_labels_adapt_the_biases_when_the_adapt_stage_is_on(link, core):
    p = Params.identity(core, MODEL)
    p.c.flags |= STAGE_ADAPT
    p.c.adapt.learning_rate = 65536 // 4
    p.c.adapt.clamp = 4 * 65536
    link.set_params(p.seal().encode())
    x = bytes(N_IN)
    before = link.infer(x).prob
    for _ in range(5):
        link.infer(x, label=3)
    assert link.infer(x).prob[3] > before[3]


def test_set_params_applies_persists_and_get_params_returns_it(link, device, core):
    blob = tempered(core).encode()
    rsp = link.set_params(blob)
    assert (rsp.status, rsp.params_crc, rsp.persisted) == (0, tempered(core).crc, True)
    assert device.stored == [blob]
    assert link.get_params() == blob
    assert link.info().params_crc == tempered(core).crc


def test_no_persist_applies_without_storing(link, device, core):
    rsp = link.set_params(tempered(core).encode(), persist=False)
    assert (rsp.status, rsp.persisted) == (0, False)
    assert device.stored == []
    assert link.info().params_crc == tempered(core).crc


def test_a_set_for_another_model_is_refused_and_the_old_one_stays(link, device, core):
    good = tempered(core)
    link.set_params(good.encode())
    other = Params.identity(core, replace(MODEL, model_crc=0xBADC0DE))
    with pytest.raises(ParamsRejected) as err:
        link.set_params(other.encode())
    assert err.value.status == TINYFIX_ERR_MODEL
    assert err.value.active_crc == good.crc
    assert link.get_params() == good.encode()
    assert device.stored == [good.encode()]


def test_a_malformed_blob_is_refused_with_the_core_code(link, core):
    with pytest.raises(ParamsRejected) as err:
        link.set_params(b"\x01\x02\x03")
    assert err.value.status == TINYFIX_ERR_FORMAT
    assert err.value.active_crc == Params.identity(core, MODEL).crc


def test_a_retried_set_params_is_answered_from_the_kept_response_not_applied_twice(device,
                                                                                   core):
    wire = encode_frame(MsgType.SET_PARAMS, 0x0777, 0, tempered(core).encode())
    first = exchange(device, wire)
    again = exchange(device, wire)
    assert len(first) == 1 and first == again
    assert decode_message(first[0]).status == 0
    assert len(device.stored) == 1
    stats = device.dispatcher.stats()
    assert (stats.replays, stats.frames_ok) == (1, 2)


def test_another_blob_with_a_reused_seq_runs_although_its_frame_crc_is_the_same(device, core):
    # A blob ends with its own CRC32, so equal-length blobs give equal frame CRCs.
    first = encode_frame(MsgType.SET_PARAMS, 0x0777, 0, tempered(core).encode())
    other = encode_frame(MsgType.SET_PARAMS, 0x0777, 0, Params.identity(core, MODEL).encode())
    assert decode_frame(first).crc == decode_frame(other).crc
    exchange(device, first)
    (rsp,) = exchange(device, other)
    assert decode_message(rsp).params_crc == Params.identity(core, MODEL).crc
    assert len(device.stored) == 2
    assert device.dispatcher.stats().replays == 0


def test_a_retried_infer_is_not_run_twice(device):
    wire = encode_frame(MsgType.INFER, 9, 0, struct.pack("<h", -1) + bytes(N_IN))
    assert exchange(device, wire) == exchange(device, wire)
    assert device.invoked == 1


def test_garbage_between_frames_costs_no_request(link, device):
    port = link.port
    noise = bytes([0x13, 0x37, 0xFF, 0x00, 0x02, 0x41, 0x00, 0x00, 0x7E]) + b"log: hello\r\n"
    real_write = port.write
    port.write = lambda data: real_write(noise + data + noise)
    info = link.info()
    assert info.model_crc == MODEL.model_crc
    assert link.infer(bytes(N_IN)).status == 0
    stats = link.device_stats()
    assert stats.frames_ok == 3
    assert stats.framing_errors >= 3
    assert link.stats.retries == 0


def test_a_damaged_frame_gets_an_error_with_its_seq_and_the_host_retries(link, device):
    port = link.port
    real_write = port.write
    sent = []

    def flip_first(data: bytes) -> int:
        if not sent:
            data = bytearray(data)
            data[-3] ^= 0x01  # a CRC byte: the header still decodes
            data = bytes(data)
        sent.append(data)
        return real_write(data)

    port.write = flip_first
    assert link.info().model_crc == MODEL.model_crc
    # Re-sent at once on the device's ERR_CRC, not after a timeout.
    assert link.stats.garbled == 1 and link.stats.timeouts == 0
    assert device.dispatcher.stats().crc_errors == 1


def test_error_replies_carry_seq_type_and_status(device):
    (err,) = exchange(device, encode_frame(0x42, 0x0102, 0, b""))
    assert err.type == MsgType.ERROR and err.flags & Flag.RESPONSE and err.seq == 0x0102
    assert ErrorResponse.decode(err.payload).status == Status.ERR_TYPE
    assert ErrorResponse.decode(err.payload).type == 0x42
    (err,) = exchange(device, encode_frame(MsgType.INFO, 5, 0, b"", version=2))
    assert ErrorResponse.decode(err.payload).status == Status.ERR_VERSION
    assert err.version == 1
    body = bytearray(decode_frame(encode_frame(MsgType.INFO, 6)).body())
    body[-1] ^= 0xFF
    (err,) = exchange(device, b"\x00" + cobs.encode(bytes(body)) + b"\x00")
    assert ErrorResponse.decode(err.payload).status == Status.ERR_CRC
    assert err.seq == 6


def test_too_long_and_headerless_frames(device):
    (err,) = exchange(device, b"\x00" + b"\x01" * 1200 + b"\x00")
    assert ErrorResponse.decode(err.payload).status == Status.ERR_TOO_LONG
    assert exchange(device, b"\x00\x03\x01\x01\x00") == []  # no header: silence
    stats = device.dispatcher.stats()
    assert stats.framing_errors == 2


def test_own_echo_is_ignored(device):
    echo = encode_frame(MsgType.INFO, 3, Flag.RESPONSE, b"")
    assert exchange(device, echo) == []


def test_capture_streams_windows_with_more_on_all_but_the_last(device, link):
    windows = list(link.capture(3))
    assert [w.index for w in windows] == [0, 1, 2]
    assert [w.t_ms for w in windows] == sorted(w.t_ms for w in windows)
    assert windows[0].values() == list(range(N_IN))
    wire = encode_frame(MsgType.CAPTURE, 77, 0, struct.pack("<HB", 2, DType.FLOAT32))
    frames = exchange(device, wire)
    assert [bool(f.flags & Flag.MORE) for f in frames] == [True, False]
    # A repeat gets the kept response: the last window, MORE clear.
    assert exchange(device, wire) == frames[-1:]


def test_capture_errors(core, device, link):
    with pytest.raises(DeviceError) as err:
        list(link.capture(1, DType.INT8))
    assert err.value.status == Status.ERR_SENSOR
    no_sensor = Link(MemoryPort(Device(core, capture=False)), seq=1)
    with pytest.raises(DeviceError) as err:
        list(no_sensor.capture(1))
    assert err.value.status == Status.ERR_UNSUPPORTED
    (bad,) = exchange(device, encode_frame(MsgType.CAPTURE, 8, 0, struct.pack("<HB", 0, 1)))
    assert ErrorResponse.decode(bad.payload).status == Status.ERR_VALUE


def test_stats_count_frames_errors_inferences_and_replays(link, device, core):
    link.infer(bytes(N_IN))
    link.infer(bytes(N_IN))
    device.dispatcher.feed(b"\x00\x05\x01\x02\x03\x04\x05\x00")  # 5 bytes: short frame
    wire = encode_frame(MsgType.GET_PARAMS, 0x2000)
    exchange(device, wire)
    exchange(device, wire)
    stats = link.device_stats()
    assert stats.inferences == 2
    assert stats.frames_ok == 5
    assert stats.framing_errors == 1
    assert stats.crc_errors == 0
    assert stats.replays == 1
    assert stats.params_crc == Params.identity(core, MODEL).crc
    assert stats.uptime_ms == 1234


def test_stats_carry_the_drift_monitor_flags_and_leave_its_one_shot_to_the_app(link, device,
                                                                              core):
    p = Params.identity(core, MODEL)
    p.c.flags |= STAGE_MONITOR
    m = p.c.monitor
    m.rate_shift, m.min_frames = 1, 2
    m.ref_conf, m.conf_drop, m.prior_tv = 32768, 1000, 32768  # calibrated: fully confident
    link.set_params(p.seal().encode())
    assert link.device_stats().drift_flags == 0
    for _ in range(4):
        link.infer(bytes(N_IN))  # all-zero input: flat outputs, low confidence
    stats = link.device_stats()
    flags = stats.drift_flags
    assert flags & DRIFT_ADVISED and flags & DRIFT_CONF
    assert stats.monitor_frames == 4 and 0 < stats.mean_conf < 32768 - 1000
    drift = core.ffi.new("struct tinyfix_drift *")
    assert core.lib.tinyfix_drift_status(device.corrector.ctx, drift) == 0
    assert drift.newly_advised


def test_an_input_beyond_a_frame_needs_the_input_tensor_to_stage_it(core):
    big = replace(INFO, input=TensorDesc(DType.INT8, (1, 2000), 0.25, 0))
    with pytest.raises(TinyfixError, match="does not fit"):
        Dispatcher(Corrector(core, MODEL), DeviceOps(
            write=lambda b: None, info=big, invoke=lambda x, f: Invoked(b""),
            input_buffer=False))
    Dispatcher(Corrector(core, MODEL), DeviceOps(write=lambda b: None, info=big,
                                                 invoke=lambda x, f: Invoked(b"")))
