# SPDX-License-Identifier: Apache-2.0
"""The TinyFix MCUmgr group's messages, for smpclient (docs/smp-group.md).

Each request class names its response and error classes, as smpclient's own groups do, so
`SMPClient.request()` returns typed, validated objects. Field names are the CBOR keys.
"""

from __future__ import annotations

import os
from enum import IntEnum

from pydantic import Field
from smp import error as smperror
from smp import message

# TINYFIX_SMP_GROUP_ID_DEFAULT; a build with CONFIG_TINYFIX_MCUMGR_GROUP_ID changed needs the
# same number here (TINYFIX_SMP_GROUP).
GROUP_ID = int(os.environ.get("TINYFIX_SMP_GROUP", "84"))


class Command(IntEnum):
    INFO = 0
    PARAMS = 1
    STATS = 2
    ADAPT = 3
    CAPTURE = 4


class Rc(IntEnum):
    """enum tinyfix_smp_rc; CORE_* are TINYFIX_SMP_RC_CORE (16) + |TINYFIX_ERR_*|."""

    OK = 0
    UNKNOWN = 1
    BAD_REQUEST = 2
    TOO_LARGE = 3
    OTHER_UPLOAD = 4
    NO_CAPTURE = 5
    UNSUPPORTED = 6
    OFFSET = 7
    CORE_ARG = 17
    CORE_VERSION = 18
    CORE_CRC = 19
    CORE_MODEL = 20
    CORE_CLASSES = 21
    CORE_RANGE = 22
    CORE_CAPACITY = 23
    CORE_TIME = 24
    CORE_FORMAT = 25
    CORE_UNSUPPORTED = 26


class ErrorV1(smperror.ErrorV1):
    _GROUP_ID = GROUP_ID


class ErrorV2(smperror.ErrorV2[Rc]):
    _GROUP_ID = GROUP_ID


class _Group:
    _ErrorV1 = ErrorV1
    _ErrorV2 = ErrorV2


class InfoReadResponse(message.ReadResponse):
    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Command.INFO
    model_crc: int
    params_crc: int
    params_format: int
    kind: int
    classes: int
    outputs: int
    features: int
    max_params: int
    capture_max: int
    fw: str
    board: str
    # {"type", "dims", "scale", "zp"} per tensor; "in" is a Python keyword
    in_: dict = Field(alias="in")
    out: dict
    feat: dict | None = None


class InfoRead(message.ReadRequest, _Group):
    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Command.INFO
    _Response = InfoReadResponse


class ParamsReadResponse(message.ReadResponse):
    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Command.PARAMS
    off: int
    len: int
    crc: int
    data: bytes


class ParamsRead(message.ReadRequest, _Group):
    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Command.PARAMS
    _Response = ParamsReadResponse
    off: int


class ParamsWriteResponse(message.WriteResponse):
    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Command.PARAMS
    off: int
    crc: int | None = None
    persisted: bool | None = None


class ParamsWrite(message.WriteRequest, _Group):
    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Command.PARAMS
    _Response = ParamsWriteResponse
    off: int
    data: bytes
    len: int | None = None
    persist: bool | None = None


class StatsReadResponse(message.ReadResponse):
    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Command.STATS
    uptime_ms: int
    inferences: int
    frames_ok: int
    crc_errors: int
    framing_errors: int
    params_crc: int
    drift_flags: int
    mean_conf: int
    prior_tv: int
    input_z_q8: int
    monitor_frames: int
    captured: int


class StatsRead(message.ReadRequest, _Group):
    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Command.STATS
    _Response = StatsReadResponse


class AdaptResetResponse(message.WriteResponse):
    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Command.ADAPT
    params_crc: int


class AdaptReset(message.WriteRequest, _Group):
    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Command.ADAPT
    _Response = AdaptResetResponse


class CaptureStartResponse(message.WriteResponse):
    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Command.CAPTURE
    n: int
    record: int
    features: bool


class CaptureStart(message.WriteRequest, _Group):
    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Command.CAPTURE
    _Response = CaptureStartResponse
    n: int
    features: bool | None = None


class CaptureReadResponse(message.ReadResponse):
    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Command.CAPTURE
    n: int
    done: int
    record: int
    features: bool
    off: int
    data: bytes


class CaptureRead(message.ReadRequest, _Group):
    _GROUP_ID = GROUP_ID
    _COMMAND_ID = Command.CAPTURE
    _Response = CaptureReadResponse
    off: int
