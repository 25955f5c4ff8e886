# SPDX-License-Identifier: Apache-2.0
"""Message payloads of docs/protocol.md section 5, as dataclasses with encode/decode.

Every message can be encoded and decoded on the host, requests and responses alike, so the
twin and the tests can play either side. Decoders ignore bytes after the fields they know
(the protocol's extension rule), except INFER's request, whose length is the tensor's.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from tinyfix.wire.errors import PayloadError
from tinyfix.wire.frame import Frame
from tinyfix.wire.protocol import (
    MAX_DIMS,
    NO_PERSIST,
    STR_MAX,
    TEXT_MAX,
    VERSION,
    DType,
    Flag,
    InferFlag,
    MsgType,
    Status,
)

Q15_ONE = 32768


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data = bytes(data)
        self.pos = 0
        self.what = what

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise PayloadError(
                Status.ERR_LENGTH,
                f"{self.what} payload is truncated: needs {self.pos + n} bytes, "
                f"has {len(self.data)}",
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        st = struct.Struct("<" + fmt)
        return st.unpack(self.take(st.size))

    def one(self, fmt: str) -> int:
        return self.unpack(fmt)[0]

    def string(self, limit: int) -> str:
        n = self.one("B")
        if n > limit:
            raise PayloadError(Status.ERR_VALUE, f"{self.what}: string of {n} > {limit} bytes")
        return self.take(n).decode("utf-8", errors="replace")

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


def _string(text: str, limit: int, what: str, *, cut: bool = False) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > limit:
        if not cut:
            raise PayloadError(Status.ERR_VALUE, f"{what} is longer than {limit} bytes")
        raw = raw[:limit]
    return bytes([len(raw)]) + raw


class Message:
    """Common interface: TYPE, RESPONSE, header flags, payload encode/decode."""

    TYPE: ClassVar[MsgType]
    RESPONSE: ClassVar[bool] = False

    def flags(self) -> int:
        return int(Flag.RESPONSE) if self.RESPONSE else 0

    def encode(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, payload: bytes, flags: int = 0) -> Message:
        return cls()

    def frame(self, seq: int, extra_flags: int = 0) -> Frame:
        return Frame(int(self.TYPE), seq & 0xFFFF, self.flags() | extra_flags, self.encode())


@dataclass(frozen=True)
class TensorDesc:
    """A tensor's dtype, shape and per-tensor quantization; dtype NONE means absent."""

    dtype: int = DType.NONE
    shape: tuple[int, ...] = ()
    scale: float = 0.0
    zero_point: int = 0

    @property
    def present(self) -> bool:
        return self.dtype != DType.NONE

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n if self.shape else 0

    @property
    def nbytes(self) -> int:
        return self.n_elements * DType(self.dtype).size

    def encode(self) -> bytes:
        if len(self.shape) > MAX_DIMS:
            raise PayloadError(Status.ERR_VALUE, f"tensor has {len(self.shape)} > {MAX_DIMS} dims")
        return (
            struct.pack("<BB", self.dtype, len(self.shape))
            + struct.pack(f"<{len(self.shape)}H", *self.shape)
            + struct.pack("<fi", self.scale, self.zero_point)
        )

    @classmethod
    def read(cls, r: _Reader) -> TensorDesc:
        dtype, ndims = r.unpack("BB")
        if ndims > MAX_DIMS:
            raise PayloadError(Status.ERR_VALUE, f"tensor has {ndims} > {MAX_DIMS} dims")
        shape = r.unpack(f"{ndims}H")
        scale, zero_point = r.unpack("fi")
        return cls(dtype, tuple(shape), scale, zero_point)


@dataclass(frozen=True)
class InfoRequest(Message):
    TYPE: ClassVar[MsgType] = MsgType.INFO


@dataclass(frozen=True)
class InfoResponse(Message):
    TYPE: ClassVar[MsgType] = MsgType.INFO
    RESPONSE: ClassVar[bool] = True
    _FIXED: ClassVar[str] = "BBHIIHHHHI"

    caps: int
    max_frame: int
    model_crc: int
    params_crc: int
    params_format: int
    n_classes: int
    max_classes: int
    max_window: int
    cycle_hz: int
    input: TensorDesc
    output: TensorDesc
    feature: TensorDesc = field(default_factory=TensorDesc)
    fw_version: str = ""
    board: str = ""
    proto_version: int = VERSION
    # Appended in the same protocol version (0 from a device that predates them): the
    # model's kind and output count, and what the device can take.
    model_kind: int = 0  # 0 classifier, 1 binary (one output), 2 autoencoder
    n_outputs: int = 0
    max_params: int = 0  # largest parameter blob SET_PARAMS takes, bytes
    max_features: int = 0
    max_head_weights: int = 0
    max_channels: int = 0
    max_anomaly_window: int = 0
    _LIMITS: ClassVar[str] = "BIIHIHH"

    def encode(self) -> bytes:
        head = struct.pack(
            "<" + self._FIXED, self.proto_version, self.caps, self.max_frame, self.model_crc,
            self.params_crc, self.params_format, self.n_classes, self.max_classes,
            self.max_window, self.cycle_hz,
        )
        return (
            head + self.input.encode() + self.output.encode() + self.feature.encode()
            + _string(self.fw_version, STR_MAX, "fw_version")
            + _string(self.board, STR_MAX, "board")
            + struct.pack("<" + self._LIMITS, self.model_kind, self.n_outputs, self.max_params,
                          self.max_features, self.max_head_weights, self.max_channels,
                          self.max_anomaly_window)
        )

    @classmethod
    def decode(cls, payload: bytes, flags: int = 0) -> InfoResponse:
        r = _Reader(payload, "INFO")
        (proto, caps, max_frame, model_crc, params_crc, params_format, n_classes, max_classes,
         max_window, cycle_hz) = r.unpack(cls._FIXED)
        inp, out, feat = TensorDesc.read(r), TensorDesc.read(r), TensorDesc.read(r)
        fw, board = r.string(STR_MAX), r.string(STR_MAX)
        limits = r.unpack(cls._LIMITS) if r.left >= struct.calcsize("<" + cls._LIMITS) else ()
        return cls(caps, max_frame, model_crc, params_crc, params_format, n_classes, max_classes,
                   max_window, cycle_hz, inp, out, feat, fw, board, proto, *limits)


@dataclass(frozen=True)
class InferRequest(Message):
    """INFER; with `staged` the input is the one WRITE put in the input tensor (empty here)."""

    TYPE: ClassVar[MsgType] = MsgType.INFER

    input: bytes
    label: int = -1
    want_features: bool = False
    reset: bool = False
    staged: bool = False
    reset_model: bool = False

    def flags(self) -> int:
        return ((Flag.FEATURES if self.want_features else 0)
                | (Flag.RESET if self.reset else 0) | (Flag.STAGED if self.staged else 0)
                | (Flag.MODEL_RESET if self.reset_model else 0))

    def encode(self) -> bytes:
        return struct.pack("<h", self.label) + bytes(self.input)

    @classmethod
    def decode(cls, payload: bytes, flags: int = 0) -> InferRequest:
        r = _Reader(payload, "INFER request")
        label = r.one("h")
        return cls(r.rest(), label, bool(flags & Flag.FEATURES), bool(flags & Flag.RESET),
                   bool(flags & Flag.STAGED), bool(flags & Flag.MODEL_RESET))


@dataclass(frozen=True)
class InferResponse(Message):
    TYPE: ClassVar[MsgType] = MsgType.INFER
    RESPONSE: ClassVar[bool] = True
    _FIXED: ClassVar[str] = "hhhHIIHHH"

    status: int
    top_class: int
    decision: int
    top_conf: int
    cycles_invoke: int
    cycles_tinyfix: int
    raw: bytes
    prob: tuple[int, ...] = ()
    features: bytes = b""
    # Appended in the same protocol version.
    anomaly_score: int = 0  # Q16.16
    result_flags: int = 0  # InferFlag (not the header flags)

    @property
    def anomaly(self) -> bool:
        return bool(self.result_flags & InferFlag.ANOMALY)

    @property
    def raw_deferred(self) -> bool:
        """The raw output did not fit the frame: READ it (Target.OUTPUT)."""
        return bool(self.result_flags & InferFlag.RAW_DEFERRED)

    @property
    def features_deferred(self) -> bool:
        """The features did not fit the frame: READ them (Target.FEATURES)."""
        return bool(self.result_flags & InferFlag.FEATURES_DEFERRED)

    @property
    def confidence(self) -> float:
        return self.top_conf / Q15_ONE

    @property
    def probabilities(self) -> list[float]:
        return [p / Q15_ONE for p in self.prob]

    @property
    def feature_values(self) -> list[int]:
        """The feature vector as int8 values."""
        return list(struct.unpack(f"<{len(self.features)}b", self.features))

    def encode(self) -> bytes:
        return (
            struct.pack(
                "<" + self._FIXED, self.status, self.top_class, self.decision, self.top_conf,
                self.cycles_invoke, self.cycles_tinyfix, len(self.raw), len(self.prob),
                len(self.features),
            )
            + bytes(self.raw)
            + struct.pack(f"<{len(self.prob)}H", *self.prob)
            + bytes(self.features)
            + struct.pack("<iB", self.anomaly_score, self.result_flags)
        )

    @classmethod
    def decode(cls, payload: bytes, flags: int = 0) -> InferResponse:
        r = _Reader(payload, "INFER response")
        (status, top_class, decision, top_conf, cyc_invoke, cyc_fix, raw_len, n_prob,
         n_features) = r.unpack(cls._FIXED)
        raw = r.take(raw_len)
        prob = r.unpack(f"{n_prob}H")
        features = r.take(n_features)
        extra = r.unpack("iB") if r.left >= 5 else ()
        return cls(status, top_class, decision, top_conf, cyc_invoke, cyc_fix, raw, tuple(prob),
                   features, *extra)

    def with_tensors(self, raw: bytes, features: bytes) -> InferResponse:
        """This response with the raw output and features read separately (READ)."""
        return InferResponse(self.status, self.top_class, self.decision, self.top_conf,
                             self.cycles_invoke, self.cycles_tinyfix, raw, self.prob, features,
                             self.anomaly_score, self.result_flags)


@dataclass(frozen=True)
class CaptureRequest(Message):
    TYPE: ClassVar[MsgType] = MsgType.CAPTURE

    count: int = 1
    dtype: int = DType.FLOAT32

    def encode(self) -> bytes:
        return struct.pack("<HB", self.count, self.dtype)

    @classmethod
    def decode(cls, payload: bytes, flags: int = 0) -> CaptureRequest:
        count, dtype = _Reader(payload, "CAPTURE request").unpack("HB")
        return cls(count, dtype)


@dataclass(frozen=True)
class CaptureResponse(Message):
    """One sensor window; `data` holds the values little-endian, as sent."""

    TYPE: ClassVar[MsgType] = MsgType.CAPTURE
    RESPONSE: ClassVar[bool] = True
    _FIXED: ClassVar[str] = "HHIHB"

    index: int
    count: int
    t_ms: int
    dtype: int
    data: bytes

    @property
    def n_values(self) -> int:
        return len(self.data) // DType(self.dtype).size

    def values(self) -> list[float] | list[int]:
        dt = DType(self.dtype)
        return list(struct.unpack(f"<{self.n_values}{dt.struct_code}", self.data))

    @classmethod
    def from_values(
        cls, index: int, count: int, t_ms: int, dtype: int, values: Sequence[float]
    ) -> CaptureResponse:
        dt = DType(dtype)
        return cls(index, count, t_ms, dt, struct.pack(f"<{len(values)}{dt.struct_code}", *values))

    def encode(self) -> bytes:
        size = DType(self.dtype).size
        if size == 0 or len(self.data) % size:
            raise PayloadError(Status.ERR_VALUE, "CAPTURE data does not match its dtype")
        head = struct.pack("<" + self._FIXED, self.index, self.count, self.t_ms,
                           len(self.data) // size, self.dtype)
        return head + bytes(self.data)

    @classmethod
    def decode(cls, payload: bytes, flags: int = 0) -> CaptureResponse:
        r = _Reader(payload, "CAPTURE response")
        index, count, t_ms, n_values, dtype = r.unpack(cls._FIXED)
        if dtype not in DType._value2member_map_ or dtype == DType.NONE:
            raise PayloadError(Status.ERR_VALUE, f"CAPTURE window has unknown dtype {dtype}")
        return cls(index, count, t_ms, dtype, r.take(n_values * DType(dtype).size))


@dataclass(frozen=True)
class GetParamsRequest(Message):
    TYPE: ClassVar[MsgType] = MsgType.GET_PARAMS


@dataclass(frozen=True)
class GetParamsResponse(Message):
    """The active parameter blob, opaque to the link."""

    TYPE: ClassVar[MsgType] = MsgType.GET_PARAMS
    RESPONSE: ClassVar[bool] = True

    blob: bytes

    def encode(self) -> bytes:
        return bytes(self.blob)

    @classmethod
    def decode(cls, payload: bytes, flags: int = 0) -> GetParamsResponse:
        return cls(bytes(payload))


@dataclass(frozen=True)
class SetParamsRequest(Message):
    """SET_PARAMS; with `staged` the blob is the one WRITE staged (empty here)."""

    TYPE: ClassVar[MsgType] = MsgType.SET_PARAMS

    blob: bytes
    persist: bool = True
    staged: bool = False

    def flags(self) -> int:
        return (0 if self.persist else int(NO_PERSIST)) | (Flag.STAGED if self.staged else 0)

    def encode(self) -> bytes:
        return bytes(self.blob)

    @classmethod
    def decode(cls, payload: bytes, flags: int = 0) -> SetParamsRequest:
        return cls(bytes(payload), not flags & NO_PERSIST, bool(flags & Flag.STAGED))


@dataclass(frozen=True)
class SetParamsResponse(Message):
    TYPE: ClassVar[MsgType] = MsgType.SET_PARAMS
    RESPONSE: ClassVar[bool] = True

    status: int
    params_crc: int
    persisted: bool = False

    def encode(self) -> bytes:
        return struct.pack("<hIB", self.status, self.params_crc, int(self.persisted))

    @classmethod
    def decode(cls, payload: bytes, flags: int = 0) -> SetParamsResponse:
        status, crc, persisted = _Reader(payload, "SET_PARAMS response").unpack("hIB")
        return cls(status, crc, bool(persisted))


@dataclass(frozen=True)
class StatsRequest(Message):
    TYPE: ClassVar[MsgType] = MsgType.STATS


@dataclass(frozen=True)
class StatsResponse(Message):
    TYPE: ClassVar[MsgType] = MsgType.STATS
    RESPONSE: ClassVar[bool] = True
    _FIXED: ClassVar[str] = "8I"

    uptime_ms: int = 0
    frames_ok: int = 0
    crc_errors: int = 0
    framing_errors: int = 0
    inferences: int = 0
    params_crc: int = 0
    drift_flags: int = 0
    replays: int = 0
    # Drift monitor figures, appended in the same protocol version (older peers stop above).
    mean_conf: int = 0  # Q15
    prior_tv: int = 0  # Q15
    input_z_q8: int = 0  # Q8.8
    monitor_frames: int = 0
    _DRIFT: ClassVar[str] = "HHHI"

    def encode(self) -> bytes:
        return struct.pack(
            "<" + self._FIXED + self._DRIFT, self.uptime_ms, self.frames_ok, self.crc_errors,
            self.framing_errors, self.inferences, self.params_crc, self.drift_flags, self.replays,
            self.mean_conf, self.prior_tv, self.input_z_q8, self.monitor_frames,
        )

    @classmethod
    def decode(cls, payload: bytes, flags: int = 0) -> StatsResponse:
        reader = _Reader(payload, "STATS")
        fixed = reader.unpack(cls._FIXED)
        drift = reader.unpack(cls._DRIFT) if len(payload) > struct.calcsize("<" + cls._FIXED) \
            else ()
        return cls(*fixed, *drift)


@dataclass(frozen=True)
class WriteRequest(Message):
    """One chunk of an object staged on the device (docs/protocol.md 5.7)."""

    TYPE: ClassVar[MsgType] = MsgType.WRITE

    target: int
    offset: int
    total: int
    data: bytes

    def encode(self) -> bytes:
        return struct.pack("<BII", self.target, self.offset, self.total) + bytes(self.data)

    @classmethod
    def decode(cls, payload: bytes, flags: int = 0) -> WriteRequest:
        r = _Reader(payload, "WRITE request")
        target, offset, total = r.unpack("BII")
        return cls(target, offset, total, r.rest())


@dataclass(frozen=True)
class WriteResponse(Message):
    """How far the object got: `next` is the offset to send next."""

    TYPE: ClassVar[MsgType] = MsgType.WRITE
    RESPONSE: ClassVar[bool] = True

    status: int
    target: int
    next: int
    total: int

    def encode(self) -> bytes:
        return struct.pack("<hBII", self.status, self.target, self.next, self.total)

    @classmethod
    def decode(cls, payload: bytes, flags: int = 0) -> WriteResponse:
        return cls(*_Reader(payload, "WRITE response").unpack("hBII"))


@dataclass(frozen=True)
class ReadRequest(Message):
    """A piece of the active parameter set, the last raw output or features (5.8)."""

    TYPE: ClassVar[MsgType] = MsgType.READ

    target: int
    offset: int
    max_len: int

    def encode(self) -> bytes:
        return struct.pack("<BIH", self.target, self.offset, self.max_len)

    @classmethod
    def decode(cls, payload: bytes, flags: int = 0) -> ReadRequest:
        return cls(*_Reader(payload, "READ request").unpack("BIH"))


@dataclass(frozen=True)
class ReadResponse(Message):
    TYPE: ClassVar[MsgType] = MsgType.READ
    RESPONSE: ClassVar[bool] = True

    status: int
    target: int
    offset: int
    total: int
    data: bytes

    def encode(self) -> bytes:
        return struct.pack("<hBII", self.status, self.target, self.offset,
                           self.total) + bytes(self.data)

    @classmethod
    def decode(cls, payload: bytes, flags: int = 0) -> ReadResponse:
        r = _Reader(payload, "READ response")
        status, target, offset, total = r.unpack("hBII")
        return cls(status, target, offset, total, r.rest())


@dataclass(frozen=True)
class ErrorResponse(Message):
    TYPE: ClassVar[MsgType] = MsgType.ERROR
    RESPONSE: ClassVar[bool] = True

    status: int
    seq: int
    type: int = 0
    text: str = ""

    def encode(self) -> bytes:
        return struct.pack("<hHB", self.status, self.seq, self.type) + _string(
            self.text, TEXT_MAX, "ERROR text", cut=True
        )

    @classmethod
    def decode(cls, payload: bytes, flags: int = 0) -> ErrorResponse:
        r = _Reader(payload, "ERROR")
        status, seq, msg_type = r.unpack("hHB")
        return cls(status, seq, msg_type, r.string(TEXT_MAX))


REQUESTS: dict[int, type[Message]] = {
    MsgType.INFO: InfoRequest,
    MsgType.INFER: InferRequest,
    MsgType.CAPTURE: CaptureRequest,
    MsgType.GET_PARAMS: GetParamsRequest,
    MsgType.SET_PARAMS: SetParamsRequest,
    MsgType.STATS: StatsRequest,
    MsgType.WRITE: WriteRequest,
    MsgType.READ: ReadRequest,
}
RESPONSES: dict[int, type[Message]] = {
    MsgType.INFO: InfoResponse,
    MsgType.INFER: InferResponse,
    MsgType.CAPTURE: CaptureResponse,
    MsgType.GET_PARAMS: GetParamsResponse,
    MsgType.SET_PARAMS: SetParamsResponse,
    MsgType.STATS: StatsResponse,
    MsgType.WRITE: WriteResponse,
    MsgType.READ: ReadResponse,
    MsgType.ERROR: ErrorResponse,
}


def decode_message(frame: Frame) -> Message:
    """Decode a frame's payload into its message class (request or response by the flag)."""
    table = RESPONSES if frame.flags & Flag.RESPONSE else REQUESTS
    cls = table.get(frame.type)
    if cls is None:
        raise PayloadError(Status.ERR_TYPE, f"unknown message type 0x{frame.type:02x}")
    return cls.decode(frame.payload, frame.flags)
