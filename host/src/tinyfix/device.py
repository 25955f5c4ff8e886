# SPDX-License-Identifier: Apache-2.0
"""Reach a device: a serial path, any pyserial URL, or `sim` (the built-in twin on a pty),
read its INFO, and check that it runs the model the user gave."""

from __future__ import annotations

import zlib
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import serial

from tinyfix.core import ModelInfo
from tinyfix.errors import TinyfixError
from tinyfix.wire import Link
from tinyfix.wire.messages import InfoResponse, TensorDesc
from tinyfix.wire.protocol import DType

DEFAULT_BAUD = 115200
OUTPUT_TYPES = {DType.INT8: "int8", DType.INT16: "int16", DType.FLOAT32: "float32"}


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

    def close(self) -> None:
        self.stack.close()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def model(self) -> ModelInfo:
        return model_info_from(self.info)


def model_crc(path: Path) -> int:
    try:
        return zlib.crc32(path.read_bytes())
    except OSError as exc:
        raise TinyfixError(f"cannot read the model {path}: {exc.strerror}") from exc


def model_info_from(info: InfoResponse) -> ModelInfo:
    """The core's view of the device's model, from INFO."""
    out: TensorDesc = info.output
    if out.dtype not in OUTPUT_TYPES:
        raise TinyfixError(f"the device's output tensor type {out.dtype} is not supported "
                           "(int8, int16 or float32)")
    inp, feat = info.input, info.feature
    return ModelInfo(
        model_crc=info.model_crc,
        n_classes=info.n_classes,
        output_type=OUTPUT_TYPES[DType(out.dtype)],
        output_scale=out.scale if out.dtype != DType.FLOAT32 else 1.0,
        output_zero_point=out.zero_point,
        n_channels=inp.shape[-1] if inp.dtype == DType.INT8 and inp.shape else 0,
        input_scale=inp.scale if inp.scale > 0 else 1.0,
        input_zero_point=inp.zero_point,
        n_features=feat.n_elements if feat.present else 0,
        feature_zero_point=feat.zero_point if feat.present else 0,
    )


def open_device(port: str, *, baud: int = DEFAULT_BAUD, model: Path | None = None,
                sim_sensor: str = "field", timeout: float | None = None) -> Device:
    """Open `port` ("sim" starts the twin with `model`), read INFO, check the model CRC."""
    stack = ExitStack()
    try:
        name = port
        if port == "sim":
            from tinyfix.twin import Twin  # only the twin needs tflite-micro

            twin = stack.enter_context(Twin(model=model, sensor=sim_sensor))
            name = f"sim ({twin.port})"
            ser = serial.serial_for_url(twin.port, baudrate=baud, timeout=0.05)
        else:
            try:
                ser = serial.serial_for_url(port, baudrate=baud, timeout=0.05, exclusive=True)
            except (serial.SerialException, ValueError, OSError) as exc:
                raise TinyfixError(f"cannot open {port}: {exc}") from exc
        stack.callback(ser.close)
        link = Link(ser, timeout=timeout, name=name)
        info = link.info()
        if model is not None:
            expected = model_crc(model)
            if info.model_crc != expected:
                raise WrongModelError(
                    f"{name} runs a model with CRC 0x{info.model_crc:08x}, but {model} has "
                    f"CRC 0x{expected:08x}: flash the matching firmware or give its model")
        return Device(link, info, name, baud, stack)
    except BaseException:
        stack.close()
        raise
