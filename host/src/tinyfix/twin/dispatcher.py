# SPDX-License-Identifier: Apache-2.0
"""The firmware's request dispatcher (modules/tinyfix/src/tinyfix_link.c) with Python ops.

A simulated device is the C dispatcher plus platform callbacks: where a board writes to its
UART, runs TFLM and reads its accelerometer, the twin (or a test) supplies Python functions.
They reach the C code as cffi `extern "Python"` functions (declared in cdefs/link.h); the
`user` pointer of every callback is a handle to the Dispatcher that owns the ops.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tinyfix.core import Corrector
from tinyfix.errors import TinyfixError
from tinyfix.wire.messages import StatsResponse, TensorDesc
from tinyfix.wire.protocol import DType, Status, describe_status

DEFAULT_MAX_FRAME = 1024
MAX_ERRORS_KEPT = 20


class OpError(Exception):
    """Raised by an op to make the device answer ERROR with `status` (a Status code)."""

    def __init__(self, status: int, detail: str = "") -> None:
        super().__init__(detail or describe_status(status))
        self.status = status


@dataclass(frozen=True)
class StaticInfo:
    """The INFO fields a platform knows (the dispatcher adds caps, limits and parameters)."""

    model_crc: int
    input: TensorDesc
    output: TensorDesc
    feature: TensorDesc = field(default_factory=TensorDesc)
    cycle_hz: int = 0
    fw_version: str = ""
    board: str = ""


@dataclass(frozen=True)
class Invoked:
    """One model run: raw output tensor bytes, int8 feature bytes (or None), Invoke cycles."""

    raw: bytes
    features: bytes | None = None
    cycles: int = 0


@dataclass(frozen=True)
class Window:
    """One sensor window: element bytes in host order, and uptime at its first sample."""

    values: bytes
    t_ms: int


@dataclass
class DeviceOps:
    """Python counterparts of struct tinyfix_link_ops; None leaves an optional one out.

    invoke(input_bytes, want_features) runs the model; capture(dtype) returns the next sensor
    window (dtype DType.FLOAT32 or DType.INT8); persist(blob) stores a parameter blob and
    says whether it did; reset_model() resets the model's own state (INFER RESET). Any op
    may raise OpError to choose the status of the ERROR reply.
    """

    write: Callable[[bytes], None]
    info: StaticInfo
    invoke: Callable[[bytes, bool], Invoked]
    capture: Callable[[int], Window] | None = None
    # Give the link the model's input tensor to stage WRITE chunks in (INFER STAGED).
    input_buffer: bool = True
    persist: Callable[[bytes], bool] | None = None
    cycles: Callable[[], int] | None = None
    uptime_ms: Callable[[], int] | None = None
    reset_model: Callable[[], None] | None = None


def _f32_bits(x: float) -> int:
    return int(struct.unpack("<I", struct.pack("<f", x))[0])


class Dispatcher:
    """A struct tinyfix_link on `corrector`'s context, answering through `ops`.

    feed() is thread-safe (one request executes at a time). Exceptions raised by ops are
    answered as the device would (ERR_INVOKE, ERR_SENSOR, or the OpError's status) and kept
    in `errors` for the owner to report.

    Like firmware, it stages WRITE chunks of an input in the model's input tensor (a buffer
    here) and of a parameter blob in a staging area of `params_size` bytes (None: any set of
    the host core; 0: none, sets must fit one frame).
    """

    def __init__(self, corrector: Corrector, ops: DeviceOps,
                 max_frame: int = DEFAULT_MAX_FRAME, params_size: int | None = None) -> None:
        self.corrector = corrector
        self.ops = ops
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        core = corrector.core
        ffi, lib = core.ffi, core.lib
        self._ffi, self._lib = ffi, lib
        _attach(ffi)
        self._handle = ffi.new_handle(self)
        self._strings: list[Any] = []
        c_ops = ffi.new("struct tinyfix_link_ops *")
        c_ops.write = lib.tinyfix_py_link_write
        c_ops.info = lib.tinyfix_py_link_info
        c_ops.invoke = lib.tinyfix_py_link_invoke
        if ops.capture is not None:
            c_ops.capture = lib.tinyfix_py_link_capture
        if ops.persist is not None:
            c_ops.persist = lib.tinyfix_py_link_persist
        if ops.cycles is not None:
            c_ops.cycles = lib.tinyfix_py_link_cycles
        if ops.uptime_ms is not None:
            c_ops.uptime_ms = lib.tinyfix_py_link_uptime_ms
        if ops.reset_model is not None:
            c_ops.reset_model = lib.tinyfix_py_link_reset_model
        input_bytes = max(1, ops.info.input.nbytes)
        self.input_tensor = ffi.new("uint8_t[]", input_bytes)
        if ops.input_buffer:
            c_ops.input_buffer = lib.tinyfix_py_link_input_buffer
        self._c_ops = c_ops
        self._kept: list[Any] = []  # where the last invoke's tensors lie, kept alive
        self._rx = ffi.new("uint8_t[]", max_frame)
        self._tx = ffi.new("uint8_t[]", max_frame + max_frame // 254 + 3)
        self._scratch = ffi.new("uint8_t[]", max_frame - 9)
        params_size = int(lib.TINYFIX_PARAMS_BLOB_MAX) if params_size is None else params_size
        self._params = ffi.new("uint8_t[]", max(1, params_size))
        self._recon = ffi.new("uint8_t[]", input_bytes)
        bufs = ffi.new("struct tinyfix_link_buffers *")
        bufs.rx, bufs.rx_size = self._rx, max_frame
        bufs.tx, bufs.tx_size = self._tx, len(self._tx)
        bufs.scratch, bufs.scratch_size = self._scratch, len(self._scratch)
        if params_size > 0:
            bufs.params, bufs.params_size = self._params, params_size
        bufs.recon, bufs.recon_size = self._recon, input_bytes
        self._bufs = bufs
        self.link = ffi.new("struct tinyfix_link *")
        err = lib.tinyfix_link_init(self.link, corrector.ctx, c_ops, self._handle, bufs)
        if self.errors:
            raise TinyfixError(f"the device's INFO fields are unusable: {self.errors[-1]}")
        if err != 0:
            raise TinyfixError(
                f"the device link does not fit this model: {describe_status(err)} "
                f"(max_frame {max_frame}, feature vector at most "
                f"{lib.TINYFIX_LINK_MAX_FEATURES} values)"
            )
        self.max_frame = max_frame

    def feed(self, data: bytes) -> int:
        """Process received bytes; returns the number of requests answered."""
        with self._lock:
            return int(self._lib.tinyfix_link_feed(self.link, data, len(data)))

    def forget(self) -> None:
        """Drop the kept response (a new host connection may reuse a seq)."""
        with self._lock:
            self._lib.tinyfix_link_forget(self.link)

    def stats(self) -> StatsResponse:
        """What a STATS request would answer now."""
        s = self._ffi.new("struct tinyfix_wire_stats *")
        with self._lock:
            self._lib.tinyfix_link_stats(self.link, s)
        return StatsResponse(s.uptime_ms, s.frames_ok, s.crc_errors, s.framing_errors,
                             s.inferences, s.params_crc, s.drift_flags, s.replays)

    def input_clobbered(self) -> None:
        """The platform wrote the input tensor itself: a staged input is gone."""
        with self._lock:
            self._lib.tinyfix_link_input_clobbered(self.link)

    # The C side calls these through the extern "Python" functions below.

    def _note(self, exc: BaseException) -> None:
        self.errors.append(exc)
        del self.errors[:-MAX_ERRORS_KEPT]

    def _fill_info(self, info: Any) -> None:
        ffi, s = self._ffi, self.ops.info
        info.model_crc = s.model_crc & 0xFFFFFFFF
        info.cycle_hz = s.cycle_hz & 0xFFFFFFFF
        for name in ("input", "output", "feature"):
            desc: TensorDesc = getattr(s, name)
            t = getattr(info, name)
            t.dtype = int(desc.dtype)
            t.ndims = len(desc.shape)
            for i, d in enumerate(desc.shape):
                t.dims[i] = d
            t.scale_f32 = _f32_bits(desc.scale)
            t.zero_point = desc.zero_point
        for name in ("fw_version", "board"):
            text = ffi.new("char[]", getattr(s, name).encode()[:32])
            self._strings.append(text)
            setattr(info, name, text)

    def _invoke(self, data: Any, length: int, raw: Any, features: Any, cycles: Any) -> int:
        ffi, info = self._ffi, self.ops.info
        want = features != ffi.NULL
        out = self.ops.invoke(bytes(ffi.buffer(data, length)), want)
        if len(out.raw) != info.output.nbytes:
            raise TinyfixError(f"invoke returned {len(out.raw)} output bytes, "
                               f"the model has {info.output.nbytes}")
        # As on a device, the tensors stay where they are until the next invoke.
        raw_buf = ffi.from_buffer("uint8_t[]", out.raw)
        self._kept = [out, raw_buf]
        raw[0] = raw_buf
        if want:
            if out.features is None or len(out.features) != info.feature.n_elements:
                raise TinyfixError("invoke did not return the feature vector")
            feat_buf = ffi.from_buffer("int8_t[]", out.features)
            self._kept.append(feat_buf)
            features[0] = feat_buf
        cycles[0] = out.cycles & 0xFFFFFFFF
        return 0

    def _capture(self, dtype: int, values: Any, cap: int, n_values: Any, t_ms: Any) -> int:
        assert self.ops.capture is not None
        window = self.ops.capture(dtype)
        size = DType(dtype).size
        if len(window.values) > cap or len(window.values) % size:
            raise OpError(Status.ERR_SENSOR, f"window of {len(window.values)} bytes "
                                             f"does not fit {cap}")
        self._ffi.memmove(values, window.values, len(window.values))
        n_values[0] = len(window.values) // size
        t_ms[0] = window.t_ms & 0xFFFFFFFF
        return 0


def _status_of(exc: BaseException, default: int) -> int:
    return exc.status if isinstance(exc, OpError) else default


_attached: set[int] = set()
_attach_lock = threading.Lock()


def _attach(ffi: Any) -> None:
    """Bind the extern "Python" callbacks of one compiled core variant (once)."""
    with _attach_lock:
        if id(ffi) in _attached:
            return
        _define(ffi)
        _attached.add(id(ffi))


def _define(ffi: Any) -> None:
    def owner(user: Any) -> Dispatcher:
        return ffi.from_handle(user)  # type: ignore[no-any-return]

    @ffi.def_extern()
    def tinyfix_py_link_write(user: Any, data: Any, length: int) -> None:
        d = owner(user)
        try:
            d.ops.write(bytes(ffi.buffer(data, length)))
        except Exception as exc:
            d._note(exc)

    @ffi.def_extern()
    def tinyfix_py_link_info(user: Any, info: Any) -> None:
        d = owner(user)
        try:
            d._fill_info(info)
        except Exception as exc:
            d._note(exc)

    @ffi.def_extern()
    def tinyfix_py_link_invoke(user: Any, data: Any, length: int, raw: Any, features: Any,
                               cycles: Any) -> int:
        d = owner(user)
        try:
            return d._invoke(data, length, raw, features, cycles)
        except Exception as exc:
            d._note(exc)
            return _status_of(exc, Status.ERR_INVOKE)

    @ffi.def_extern()
    def tinyfix_py_link_input_buffer(user: Any) -> Any:
        return owner(user).input_tensor

    @ffi.def_extern()
    def tinyfix_py_link_capture(user: Any, dtype: int, values: Any, cap: int, n_values: Any,
                                t_ms: Any) -> int:
        d = owner(user)
        try:
            return d._capture(dtype, values, cap, n_values, t_ms)
        except Exception as exc:
            d._note(exc)
            return _status_of(exc, Status.ERR_SENSOR)

    @ffi.def_extern()
    def tinyfix_py_link_persist(user: Any, blob: Any, length: int) -> int:
        d = owner(user)
        assert d.ops.persist is not None
        try:
            return 0 if d.ops.persist(bytes(ffi.buffer(blob, length))) else -1
        except Exception as exc:
            d._note(exc)
            return -1

    @ffi.def_extern()
    def tinyfix_py_link_cycles(user: Any) -> int:
        d = owner(user)
        assert d.ops.cycles is not None
        try:
            return d.ops.cycles() & 0xFFFFFFFF
        except Exception as exc:
            d._note(exc)
            return 0

    @ffi.def_extern()
    def tinyfix_py_link_reset_model(user: Any) -> int:
        d = owner(user)
        assert d.ops.reset_model is not None
        try:
            d.ops.reset_model()
            return 0
        except Exception as exc:
            d._note(exc)
            return _status_of(exc, Status.ERR_INVOKE)

    @ffi.def_extern()
    def tinyfix_py_link_uptime_ms(user: Any) -> int:
        d = owner(user)
        assert d.ops.uptime_ms is not None
        try:
            return d.ops.uptime_ms() & 0xFFFFFFFF
        except Exception as exc:
            d._note(exc)
            return 0

