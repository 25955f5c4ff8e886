# SPDX-License-Identifier: Apache-2.0
"""The simulated TinyFix device (`--port sim`): the same wire, the same C, no board.

- `Twin`: a model run by TFLite Micro (the `tflite-micro` package), the tinyfix core and the
  firmware's request dispatcher (modules/tinyfix/src/tinyfix_link.c), served on a pty.
- `Dispatcher`, `DeviceOps`: that dispatcher with platform callbacks written in Python.
- `ModelGraph`: what a .tflite looks like to a device (tensors, ops, last layer).
- `Sensor`: the accelerometer the twin plays for CAPTURE, lab or drifted.

`python -m tinyfix.twin` serves one on the command line.
"""

from tinyfix.twin.dispatcher import DeviceOps, Dispatcher, Invoked, OpError, StaticInfo, Window
from tinyfix.twin.model import FinalLayer, ModelGraph, TensorInfo, quantize_multiplier
from tinyfix.twin.sensor import Sensor
from tinyfix.twin.tflm import TflmRunner
from tinyfix.twin.twin import Twin, default_model

__all__ = [
    "DeviceOps",
    "Dispatcher",
    "FinalLayer",
    "Invoked",
    "ModelGraph",
    "OpError",
    "Sensor",
    "StaticInfo",
    "TensorInfo",
    "TflmRunner",
    "Twin",
    "Window",
    "default_model",
    "quantize_multiplier",
]
