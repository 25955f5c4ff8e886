# SPDX-License-Identifier: Apache-2.0
"""Constants of the wire protocol (docs/protocol.md); the same values as tinyfix/wire.h."""

from __future__ import annotations

from enum import IntEnum, IntFlag

VERSION = 1
HDR_LEN = 5
CRC_LEN = 4
OVERHEAD = HDR_LEN + CRC_LEN
MIN_FRAME = 256
MAX_FRAME_LIMIT = 65535
STR_MAX = 32
TEXT_MAX = 48
MAX_DIMS = 6


def cobs_max(n: int) -> int:
    """Worst-case COBS-encoded length of n bytes, without delimiters."""
    return n + n // 254 + 1


def wire_max(frame: int) -> int:
    """Worst-case bytes on the wire for a frame body of `frame` bytes."""
    return cobs_max(frame) + 2


class MsgType(IntEnum):
    INFO = 0x01
    INFER = 0x02
    CAPTURE = 0x03
    GET_PARAMS = 0x04
    SET_PARAMS = 0x05
    STATS = 0x06
    WRITE = 0x07
    READ = 0x08
    ERROR = 0x7F


class Flag(IntFlag):
    """Header flags. FEATURES/RESET/MODEL_RESET apply to INFER, NO_PERSIST to SET_PARAMS,
    STAGED to both (the data was put on the device with WRITE)."""

    NONE = 0
    FEATURES = 0x01
    RESET = 0x02
    STAGED = 0x04
    MODEL_RESET = 0x08
    MORE = 0x40
    RESPONSE = 0x80


NO_PERSIST = Flag.FEATURES  # the same bit, meaning "do not store" on SET_PARAMS


class Cap(IntFlag):
    NONE = 0
    CAPTURE = 0x01
    FEATURES = 0x02
    PERSIST = 0x04
    ADAPT = 0x08
    FLOAT = 0x10
    CHUNKS = 0x20
    MODEL_RESET = 0x40  # the model keeps state between invocations; MODEL_RESET resets it


class Target(IntEnum):
    """What WRITE and READ move: docs/protocol.md 5.7 and 5.8."""

    INPUT = 1
    PARAMS = 2
    OUTPUT = 3
    FEATURES = 4


class InferFlag(IntFlag):
    """INFER response flags (appended field)."""

    NONE = 0
    ANOMALY = 0x01
    RAW_DEFERRED = 0x02
    FEATURES_DEFERRED = 0x04


WRITE_REQ_FIXED = 9
READ_RSP_FIXED = 11


DRIFT_ADVISED = 0x01


class DType(IntEnum):
    """TFLite Micro's TfLiteType numbering."""

    NONE = 0
    FLOAT32 = 1
    INT32 = 2
    UINT8 = 3
    INT16 = 7
    INT8 = 9

    @property
    def size(self) -> int:
        return _DTYPE_SIZE[self]

    @property
    def struct_code(self) -> str:
        return _DTYPE_STRUCT[self]


_DTYPE_SIZE = {DType.NONE: 0, DType.FLOAT32: 4, DType.INT32: 4, DType.UINT8: 1, DType.INT16: 2,
               DType.INT8: 1}
_DTYPE_STRUCT = {DType.NONE: "", DType.FLOAT32: "f", DType.INT32: "i", DType.UINT8: "B",
                 DType.INT16: "h", DType.INT8: "b"}


class Status(IntEnum):
    """Link-level status codes (-256 .. -511). The core's own codes are -1 .. -255."""

    OK = 0
    ERR_TYPE = -256
    ERR_LENGTH = -257
    ERR_BUSY = -258
    ERR_CRC = -259
    ERR_FRAMING = -260
    ERR_TOO_LONG = -261
    ERR_VERSION = -262
    ERR_UNSUPPORTED = -263
    ERR_VALUE = -264
    ERR_INVOKE = -265
    ERR_SENSOR = -266
    ERR_NO_SPACE = -267


LINK_STATUS_TEXT = {
    Status.OK: "ok",
    Status.ERR_TYPE: "unknown message type",
    Status.ERR_LENGTH: "payload too short or of the wrong size",
    Status.ERR_BUSY: "device busy with another request",
    Status.ERR_CRC: "frame CRC mismatch",
    Status.ERR_FRAMING: "garbled frame (COBS error or too short)",
    Status.ERR_TOO_LONG: "frame longer than the receiver accepts",
    Status.ERR_VERSION: "protocol version not supported",
    Status.ERR_UNSUPPORTED: "not supported by this device",
    Status.ERR_VALUE: "a field is out of range",
    Status.ERR_INVOKE: "the model's Invoke() failed",
    Status.ERR_SENSOR: "reading the sensor failed",
    Status.ERR_NO_SPACE: "output buffer too small",
}

# The core's stable codes (TINYFIX_ERR_* in include/tinyfix/tinyfix.h); a test checks them
# against the C header so the two cannot drift apart.
CORE_STATUS = {
    -1: ("TINYFIX_ERR_ARG", "argument out of its domain"),
    -2: ("TINYFIX_ERR_VERSION", "parameter format version not supported"),
    -3: ("TINYFIX_ERR_CRC", "parameter set's own CRC does not match"),
    -4: ("TINYFIX_ERR_MODEL", "parameter set was fitted for another model"),
    -5: ("TINYFIX_ERR_CLASSES", "class, channel or feature count differs from the model"),
    -6: ("TINYFIX_ERR_RANGE", "a parameter value is outside its documented range"),
    -7: ("TINYFIX_ERR_CAPACITY", "counts exceed the firmware's build limits"),
    -8: ("TINYFIX_ERR_TIME", "frame timestamp earlier than the previous frame"),
    -9: ("TINYFIX_ERR_FORMAT", "parameter blob truncated or malformed"),
    -10: ("TINYFIX_ERR_UNSUPPORTED", "tensor type or stage not supported by this build"),
}

RETRYABLE = frozenset({Status.ERR_CRC, Status.ERR_FRAMING, Status.ERR_BUSY})


def status_name(code: int) -> str:
    """Symbolic name of a status code, e.g. 'ERR_BUSY' or 'TINYFIX_ERR_MODEL'."""
    if code in Status._value2member_map_:
        return Status(code).name
    if code in CORE_STATUS:
        return CORE_STATUS[code][0]
    if -255 <= code < 0:
        return f"core error {code}"
    return f"status {code}"


def describe_status(code: int) -> str:
    """'<meaning> (<NAME>, <code>)' for messages shown to a user."""
    if code in Status._value2member_map_:
        text = LINK_STATUS_TEXT[Status(code)]
    elif code in CORE_STATUS:
        text = CORE_STATUS[code][1]
    else:
        text = "unknown error"
    return f"{text} ({status_name(code)}, {code})"
