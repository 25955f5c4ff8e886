#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Write the fuzz harnesses' seed corpora (tests/fuzz/seeds/<harness>/) from real frames:
the requests the host's Link sends, framed by the host codec, for the fuzz device's model
(tests/fuzz/fuzz_device.h), and parameter blobs the host's fit would write for it.

    .venv/bin/python scripts/gen_fuzz_seeds.py

The files are committed; rerun after a wire or blob format change.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from tinyfix.core import Core, ModelInfo, Params
from tinyfix.fit.head_params import quantize_head
from tinyfix.wire.frame import encode_frame
from tinyfix.wire.link import TRAILER
from tinyfix.wire.messages import (
    CaptureRequest,
    GetParamsRequest,
    InferRequest,
    InfoRequest,
    ReadRequest,
    SetParamsRequest,
    StatsRequest,
    WriteRequest,
)
from tinyfix.wire.protocol import DType, Target

ROOT = Path(__file__).resolve().parents[1] / "tests" / "fuzz" / "seeds"
# As in fuzz_device.h.
MODEL = ModelInfo(model_crc=0x7E57F022, n_classes=6, output_scale=1 / 16, n_channels=3,
                  input_scale=1 / 16, n_features=8)
INPUT_LEN = 64 * 3
MAX_FRAME = 512
STAGE_HEAD = 0x01


def frame(msg, seq: int) -> bytes:
    return encode_frame(msg.TYPE, seq, msg.flags(), msg.encode()) + TRAILER


def blobs(core: Core) -> dict[str, bytes]:
    identity = Params.identity(core, MODEL).seal()
    tempered = Params.identity(core, MODEL)
    tempered.c.inv_temperature = 5 * 65536 // 2
    for c in range(MODEL.n_classes):
        tempered.c.class_bias[c] = (c - 3) * 65536 // 4
    head = Params.identity(core, MODEL)
    rng = np.random.default_rng(0)
    layer = quantize_head(rng.normal(0, 0.5, (6, 8)), rng.normal(0, 0.2, 6), 1 / 32, 1 / 16,
                          per_class=True)
    c = head.c
    c.flags |= STAGE_HEAD
    c.n_features, c.head_rows, c.head_columns = 8, 6, 0
    for k in range(6):
        c.head.multiplier[k] = int(layer.multiplier[k])
        c.head.shift[k] = int(layer.shift[k])
        c.head.bias[k] = int(layer.bias[k])
    core.ffi.memmove(c.head.weights, layer.weights.tobytes(), layer.weights.size)
    out = {"identity": identity.encode(), "tempered": tempered.seal().encode(),
           "head": head.seal().encode()}
    for name, blob in out.items():
        Params.decode(core, blob)  # each seed is a set the device accepts
        assert len(blob) + 9 <= MAX_FRAME, name
    return out


def link_seeds(params: dict[str, bytes]) -> dict[str, bytes]:
    x = bytes(np.arange(INPUT_LEN, dtype=np.int8).view(np.uint8))
    room = MAX_FRAME - 9 - 10  # WRITE: target u8, offset u32, total u32, then data
    staged = b""
    blob = params["head"]
    for n, at in enumerate(range(0, len(blob), room)):
        staged += frame(WriteRequest(Target.PARAMS, at, len(blob), blob[at:at + room]), 40 + n)
    staged += frame(SetParamsRequest(b"", True, staged=True), 50)
    staged_input = b"".join(
        frame(WriteRequest(Target.INPUT, at, INPUT_LEN, x[at:at + 64]), 60 + n)
        for n, at in enumerate(range(0, INPUT_LEN, 64)))
    staged_input += frame(InferRequest(b"", -1, True, False, staged=True), 70)
    tampered = bytearray(params["tempered"])
    tampered[10] ^= 0x40
    seeds = {
        "info": frame(InfoRequest(), 1),
        "infer": frame(InferRequest(x, -1, False, False), 2),
        "infer_label_features_reset": frame(InferRequest(x, 3, True, True, reset_model=True), 3),
        "infer_fails": frame(InferRequest(b"\x7f" + x[1:], -1, False, False), 4),
        "capture_int8": frame(CaptureRequest(2, DType.INT8), 5),
        "capture_float_too_large": frame(CaptureRequest(1, DType.FLOAT32), 6),
        "get_params": frame(GetParamsRequest(), 7),
        "set_params": frame(SetParamsRequest(params["tempered"], True), 8),
        "set_params_tampered": frame(SetParamsRequest(bytes(tampered), True), 9),
        "set_params_twice": frame(SetParamsRequest(params["identity"], False), 10) * 2,
        "stats": frame(StatsRequest(), 11),
        "read_params": frame(ReadRequest(Target.PARAMS, 0, 100), 12)
        + frame(ReadRequest(Target.PARAMS, 100, 400), 13),
        "read_output": frame(InferRequest(x, -1, True, False), 14)
        + frame(ReadRequest(Target.OUTPUT, 0, 64), 15)
        + frame(ReadRequest(Target.FEATURES, 0, 64), 16),
        "write_params_then_set": staged,
        "write_input_then_infer": staged_input,
        "noise_then_info": bytes(range(1, 200)) + frame(InfoRequest(), 17),
    }
    return seeds


def frame_seeds(link: dict[str, bytes]) -> dict[str, bytes]:
    # The first byte picks the receive buffer size: 255 is the full 512-byte frame.
    seeds = {name: b"\xff" + wire for name, wire in link.items()}
    seeds["small_buffer"] = b"\x10" + link["infer"]
    body = struct.pack("<BBHB", 1, 2, 9, 0) + b"x" * 600  # longer than any buffer
    seeds["too_long"] = b"\xff\x00" + bytes([0xFF]) + body[:254] + b"\x00"
    return seeds


def main() -> None:
    core = Core("fixed")
    params = blobs(core)
    link = link_seeds(params)
    for harness, seeds in (("params", params), ("link", link), ("frame", frame_seeds(link))):
        folder = ROOT / harness
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.bin"):
            old.unlink()
        for name, data in seeds.items():
            (folder / f"{name}.bin").write_bytes(data)
        print(f"{folder}: {len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes")


if __name__ == "__main__":
    main()
