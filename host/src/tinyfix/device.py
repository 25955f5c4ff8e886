# SPDX-License-Identifier: Apache-2.0
"""Reach a device: a serial path, any pyserial URL, or `sim` (the built-in twin on a pty),
read its INFO, and check that it runs the model the user gave."""

from __future__ import annotations

import socket
import zlib
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import serial

from tinyfix.core import ModelInfo
from tinyfix.errors import TinyfixError
from tinyfix.wire import Link
from tinyfix.wire.messages import InfoResponse, TensorDesc
from tinyfix.wire.protocol import DType

DEFAULT_BAUD = 115200
OUTPUT_TYPES = {DType.INT8: "int8", DType.INT16: "int16", DType.FLOAT32: "float32"}
INPUT_TYPES = OUTPUT_TYPES


class WrongModelError(TinyfixError):
    exit_code = 3


@dataclass
class Device:
    """An open link to a device and what it said about itself."""

    link: Link
    info: InfoResponse
    port_name: str
    baud: int
    stack: ExitStack
    # The simulated device behind `sim` (tinyfix.twin.Twin), else None: its sensor plays
    # the operator in a guided capture.
    twin: Any = None

    def close(self) -> None:
        self.stack.close()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def model(self) -> ModelInfo:
        return model_info_from(self.info)


def no_delay(port: Any) -> None:
    """Turn off Nagle's algorithm on a socket:// (or rfc2217://) port: pyserial leaves it
    on, and every request waits for the last one's ACK (measured on qemu_cortex_m3 over
    TCP: 15.8 inferences/s with it, 61.7 without)."""
    sock = getattr(port, "_socket", None)
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def model_crc(path: Path) -> int:
    try:
        return zlib.crc32(path.read_bytes())
    except OSError as exc:
        raise TinyfixError(f"cannot read the model {path}: {exc.strerror}") from exc


KINDS = {0: "classifier", 1: "binary", 2: "autoencoder"}
# A device that predates INFO's limits: the Kconfig default of CONFIG_TINYFIX_MAX_CHANNELS.
OLD_DEVICE_MAX_CHANNELS = 8


def model_info_from(info: InfoResponse) -> ModelInfo:
    """The core's view of the device's model, from INFO: what the device's own context was
    initialised with (channels: the input's last dimension if int8 and within the build's
    TINYFIX_MAX_CHANNELS, else none)."""
    out: TensorDesc = info.output
    if out.dtype not in OUTPUT_TYPES:
        raise TinyfixError(f"the device's output tensor type {out.dtype} is not supported "
                           "(int8, int16 or float32)")
    inp, feat = info.input, info.feature
    max_channels = info.max_channels or OLD_DEVICE_MAX_CHANNELS
    channels = inp.shape[-1] if inp.dtype == DType.INT8 and inp.shape else 0
    if inp.dtype not in INPUT_TYPES:
        raise TinyfixError(f"the device's input tensor type {inp.dtype} is not supported "
                           "(int8, int16 or float32)")
    if info.model_kind not in KINDS:
        raise TinyfixError(f"the device reports an unknown model kind {info.model_kind}")
    return ModelInfo(
        model_crc=info.model_crc,
        n_classes=info.n_classes,
        output_type=OUTPUT_TYPES[DType(out.dtype)],
        output_scale=out.scale if out.dtype != DType.FLOAT32 else 1.0,
        output_zero_point=out.zero_point,
        n_channels=channels if channels <= max_channels else 0,
        input_scale=inp.scale if inp.dtype != DType.FLOAT32 and inp.scale > 0 else 1.0,
        input_zero_point=inp.zero_point if inp.dtype != DType.FLOAT32 else 0,
        n_features=feat.n_elements if feat.present else 0,
        feature_zero_point=feat.zero_point if feat.present else 0,
        kind=KINDS[info.model_kind],
        n_outputs=info.n_outputs or out.n_elements,
        input_type=INPUT_TYPES[DType(inp.dtype)],
    )


def open_device(port: str, *, baud: int = DEFAULT_BAUD, model: Path | None = None,
                sim_sensor: str = "field", timeout: float | None = None,
                sim_realtime: bool = False) -> Device:
    """Open `port` ("sim" starts the twin with `model`; `sim_realtime`: its sensor delivers
    windows at their own pace), read INFO, check the model CRC."""
    stack = ExitStack()
    twin = None
    try:
        name = port
        if port == "sim":
            from tinyfix.twin import Twin  # only the twin needs tflite-micro

            twin = stack.enter_context(Twin(model=model, sensor=sim_sensor,
                                            realtime=sim_realtime))
            name = f"sim ({twin.port})"
            ser = serial.serial_for_url(twin.port, baudrate=baud, timeout=0.05)
        else:
            try:
                ser = serial.serial_for_url(port, baudrate=baud, timeout=0.05, exclusive=True)
            except (serial.SerialException, ValueError, OSError) as exc:
                raise TinyfixError(f"cannot open {port}: {exc}") from exc
            no_delay(ser)
        stack.callback(ser.close)
        link = Link(ser, timeout=timeout, name=name)
        info = link.info()
        if model is not None:
            expected = model_crc(model)
            if info.model_crc != expected:
                raise WrongModelError(
                    f"{name} runs a model with CRC 0x{info.model_crc:08x}, but {model} has "
                    f"CRC 0x{expected:08x}: flash the matching firmware or give its model")
        return Device(link, info, name, baud, stack, twin)
    except BaseException:
        stack.close()
        raise
