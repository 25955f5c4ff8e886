# SPDX-License-Identifier: Apache-2.0
"""The application built around a user's model (-DTINYFIX_MODEL=...), driven over its link
(twister pytest harness, scenario sample.tinyfix.app.user_model in app/sample.yaml).

The model is tests/app/models/large_input_int8.tflite: a 96x96 RGB input of 27,648 bytes,
far beyond a link frame, and a 1x1 CONV_2D head whose input carries its previous value in a
resource variable (a model that keeps state). INFER writes the input into the device's
input tensor in chunks (WRITE) before running it, from a reset model state when the host
asks (MODEL_RESET); SET_PARAMS stages a parameter set with a residual head the same way and
the device checks it whole. Every figure is compared with
what the host computed for this model (tests/host/firmware_test_model.py: the twin's TFLM
kernels and the host build of the C core), bit for bit.

native_sim: the link is uart1 on a pty the executable names. qemu_cortex_m3: the scenario
puts QEMU's second serial port on TCP port 4322 (CONFIG_QEMU_EXTRA_FLAGS).
"""

from __future__ import annotations

import json
import re
import sys
import zlib
from pathlib import Path

import pytest
import serial
from twister_harness import DeviceAdapter

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "host" / "src"))
sys.path.insert(0, str(REPO / "tests" / "host"))

from firmware_test_model import EXPECTED, MODEL, N_INPUTS, PARAMS, input_bytes  # noqa: E402

from tinyfix.wire.link import Link  # noqa: E402
from tinyfix.wire.messages import SetParamsRequest, SetParamsResponse  # noqa: E402
from tinyfix.wire.protocol import Cap, Target  # noqa: E402

PTY_LINE = r"uart_1 connected to pseudotty: (/dev/pts/\d+)"
BOOT_PARAMS = r"tinyfix: parameters 0x([0-9a-f]{8}) \((identity|corrected)\)"
QEMU_LINK = "socket://127.0.0.1:4322"


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads(EXPECTED.read_text())


@pytest.fixture(scope="module")
def link(dut: DeviceAdapter) -> Link:
    if "qemu" in str(dut.device_config.platform):
        lines = dut.readlines_until(regex=BOOT_PARAMS, timeout=60)
        port = serial.serial_for_url(QEMU_LINK, timeout=0.02)
    else:
        lines = dut.readlines_until(regex=PTY_LINE, timeout=20)
        port = serial.Serial(re.search(PTY_LINE, lines[-1]).group(1), timeout=0.02)
        dut.readlines_until(regex=BOOT_PARAMS, timeout=20)
    port.reset_input_buffer()
    # QEMU's emulated UART is slow; allow each request more time than a real one needs.
    return Link(port, name=str(port.port), timeout=10.0)


def test_info_describes_the_users_model_and_what_the_device_takes(link, expected):
    info = link.info()
    assert info.model_crc == int(expected["model_crc"], 16) == zlib.crc32(MODEL.read_bytes())
    assert info.input.nbytes == expected["input_bytes"] > info.max_frame
    assert info.caps & Cap.CHUNKS
    assert info.caps & Cap.MODEL_RESET  # the model keeps state, and the device can reset it
    assert info.n_classes == 2 and info.feature.n_elements == len(expected["features"][0])
    assert info.max_params >= len(PARAMS.read_bytes())


def test_infer_in_chunks_gives_the_hosts_outputs_and_features(link, expected):
    link.info()
    for i in range(N_INPUTS):
        rsp = link.infer(input_bytes(i, expected["input_bytes"]), features=True, reset=True,
                         reset_model=True)
        assert rsp.status == 0
        assert list(rsp.raw) == [v & 0xFF for v in expected["raw"][i]]
        assert rsp.feature_values == expected["features"][i]


def test_the_models_state_carries_until_the_host_resets_it(link, expected):
    link.info()
    n = expected["input_bytes"]
    link.infer(input_bytes(0, n), reset_model=True)
    carried = link.infer(input_bytes(1, n), features=True)
    assert carried.feature_values == expected["features_1_after_0"]
    assert list(carried.raw) == [v & 0xFF for v in expected["raw_1_after_0"]]
    alone = link.infer(input_bytes(1, n), features=True, reset_model=True)
    assert alone.feature_values == expected["features"][1] != expected["features_1_after_0"]


def test_a_staged_parameter_set_is_applied_whole_and_decides_as_the_host(link, expected):
    link.info()
    blob = PARAMS.read_bytes()
    # Staged with WRITE whatever its size: the path a large set always takes.
    link.write_object(Target.PARAMS, blob)
    rsp = link.request(SetParamsRequest(b"", persist=False, staged=True), SetParamsResponse)
    assert rsp.status == 0 and rsp.params_crc == int(expected["params_crc"], 16)
    assert link.get_params() == blob  # READ, in pieces
    for i in range(N_INPUTS):
        got = link.infer(input_bytes(i, expected["input_bytes"]), reset=True,
                         reset_model=True)
        assert got.decision == expected["decisions_with_params"][i]
        assert list(got.prob) == expected["prob_with_params"][i]


def test_a_damaged_staged_set_is_refused_and_the_active_one_kept(link, expected):
    link.info()
    before = link.info().params_crc
    blob = bytearray(PARAMS.read_bytes())
    blob[len(blob) // 2] ^= 0x40
    link.write_object(Target.PARAMS, bytes(blob))
    rsp = link.request(SetParamsRequest(b"", persist=False, staged=True), SetParamsResponse)
    assert rsp.status == -3  # TINYFIX_ERR_CRC
    assert rsp.params_crc == before == link.info().params_crc
