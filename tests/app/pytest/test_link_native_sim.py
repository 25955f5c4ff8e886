# SPDX-License-Identifier: Apache-2.0
"""The application's calibration link, end to end on native_sim (twister pytest harness).

Twister builds app/ for native_sim and starts zephyr.exe; these tests open the link's
pseudo-terminal (uart1) and talk the wire protocol through the host package's Link, the
same code calibrate.py uses. Expectations come from app/src/replay_windows.c, which the
host computed with the tflite-micro package and the host build of the tinyfix core.

Run by twister only (scenario sample.tinyfix.app.link in app/sample.yaml).
"""

from __future__ import annotations

import re
import struct
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from twister_harness import DeviceAdapter

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "host" / "src"))

from tinyfix.wire.errors import ParamsRejected  # noqa: E402
from tinyfix.wire.link import Link  # noqa: E402
from tinyfix.wire.protocol import Cap  # noqa: E402

REPLAY_C = REPO / "app" / "src" / "replay_windows.c"
REPLAY_H = REPO / "app" / "src" / "replay_windows.h"
PTY_LINE = r"uart_1 connected to pseudotty: (/dev/pts/\d+)"
BOOT_PARAMS = r"tinyfix: parameters 0x([0-9a-f]{8}) \((identity|corrected)\)"
# Parameter blob (docs/params-format.md): model_crc at 8, n_classes at 12, then after
# inv_temperature (20) come class_scale[] and class_bias[]; the CRC is the last 4 bytes.
BLOB_MODEL_CRC = 8
BLOB_N_CLASSES = 12
BLOB_CLASS_SCALE = 24


def load_windows() -> list[dict]:
    windows = []
    for block in REPLAY_C.read_text().split("\t{\n\t\t.name = ")[1:]:
        w: dict = {"name": re.match(r'"([^"]+)"', block).group(1)}
        for key, body in re.findall(r"\.(\w+) = \{([^}]*)\}", block):
            w[key] = [int(v) for v in re.findall(r"-?\d+", body)]
        for key, value in re.findall(r"\.(\w+) = (-?\d+),", block):
            w[key] = int(value)
        windows.append(w)
    return windows


def model_crc() -> int:
    return int(re.search(r"REPLAY_MODEL_CRC32 0x([0-9A-F]{8})u", REPLAY_H.read_text()).group(1), 16)


def int8_bytes(values: list[int]) -> bytes:
    return struct.pack(f"<{len(values)}b", *values)


def reseal(blob: bytearray) -> bytes:
    blob[-4:] = struct.pack("<I", zlib.crc32(bytes(blob[:-4])) & 0xFFFFFFFF)
    return bytes(blob)


def boot(dut: DeviceAdapter) -> tuple[str, int, str]:
    """Wait for the pty path and the boot parameter line: (pty, params crc, kind)."""
    lines = dut.readlines_until(regex=PTY_LINE, timeout=20)
    pty = re.search(PTY_LINE, lines[-1]).group(1)
    lines = dut.readlines_until(regex=BOOT_PARAMS, timeout=20)
    m = re.search(BOOT_PARAMS, lines[-1])
    return pty, int(m.group(1), 16), m.group(2)


def open_link(pty: str) -> Link:
    port = serial.Serial(pty, timeout=0.02)
    port.reset_input_buffer()
    return Link(port, name=pty)


@pytest.fixture
def link(dut: DeviceAdapter) -> Iterator[tuple[Link, int, str]]:
    pty, crc, kind = boot(dut)
    lk = open_link(pty)
    try:
        yield lk, crc, kind
    finally:
        lk.close()


def test_info_describes_the_demo_model_and_the_device(link):
    lk, boot_crc, _ = link
    info = lk.info()
    assert info.model_crc == model_crc()
    assert info.params_crc == boot_crc
    assert info.n_classes == 6
    assert list(info.input.shape) == [1, 64, 3]
    assert list(info.output.shape) == [1, 6]
    assert list(info.feature.shape) == [1, 24]
    assert info.caps & Cap.FEATURES and info.caps & Cap.PERSIST
    assert not info.caps & Cap.CAPTURE  # replay input: no live sensor
    assert info.max_frame == 512
    assert info.board.startswith("native_sim")


def test_infer_is_bit_exact_to_the_host_twin(link):
    lk, _, kind = link
    lk.info()
    for w in load_windows():
        rsp = lk.infer(int8_bytes(w["input"]), features=True, reset=True)
        assert rsp.status == 0, w["name"]
        assert list(struct.unpack("<6b", rsp.raw)) == w["raw"], w["name"]
        assert list(struct.unpack("<24b", rsp.features)) == w["features"], w["name"]
        if kind == "identity":
            assert (rsp.top_class, rsp.top_conf, rsp.decision) == (
                w["top_class"], w["top_prob"], w["decision"]), w["name"]


def test_set_params_applies_persists_and_survives_a_reboot(dut: DeviceAdapter):
    pty, _, _ = boot(dut)
    lk = open_link(pty)
    original = lk.get_params()
    blob = bytearray(original)
    n_classes = struct.unpack_from("<H", blob, BLOB_N_CLASSES)[0]
    bias0 = BLOB_CLASS_SCALE + 4 * n_classes
    struct.pack_into("<i", blob, bias0, 3 * 65536)  # +3.0 on class 0 (idle)
    changed = reseal(blob)

    rsp = lk.set_params(changed)
    assert rsp.persisted
    new_crc = struct.unpack("<I", changed[-4:])[0]
    assert rsp.params_crc == new_crc
    assert lk.info().params_crc == new_crc
    assert lk.get_params() == changed
    lk.close()

    dut.close()
    dut.launch()
    pty, crc, kind = boot(dut)
    assert (crc, kind) == (new_crc, "corrected")
    lk = open_link(pty)
    try:
        assert lk.info().params_crc == new_crc
        lk.set_params(original)  # leave the flash as the other tests expect it
    finally:
        lk.close()


def test_refused_sets_keep_the_active_parameters(link):
    lk, boot_crc, _ = link
    blob = bytearray(lk.get_params())
    struct.pack_into("<I", blob, BLOB_MODEL_CRC, model_crc() ^ 1)
    with pytest.raises(ParamsRejected) as other_model:
        lk.set_params(reseal(blob))
    assert other_model.value.status == -4  # TINYFIX_ERR_MODEL
    assert other_model.value.active_crc == boot_crc

    bad_crc = bytearray(lk.get_params())
    bad_crc[-1] ^= 0xFF
    with pytest.raises(ParamsRejected) as corrupted:
        lk.set_params(bytes(bad_crc))
    assert corrupted.value.status == -3  # TINYFIX_ERR_CRC
    assert lk.info().params_crc == boot_crc


def test_line_noise_is_dropped_and_the_link_keeps_working(link):
    lk, _, _ = link
    lk.info()
    before = lk.device_stats()
    # Log text, a lone delimiter and a frame whose CRC is wrong.
    lk.port.write(b"\x00some log text\r\n\x00\x00\x05\x01\x01\x02\x03\x04\x00")
    stats = lk.device_stats()
    assert stats.framing_errors + stats.crc_errors > before.framing_errors + before.crc_errors
    assert lk.info().model_crc == model_crc()
