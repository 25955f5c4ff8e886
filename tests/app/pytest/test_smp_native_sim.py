# SPDX-License-Identifier: Apache-2.0
"""The TinyFix MCUmgr group over SMP on native_sim, driven by the host client.

The firmware serves the group beside the lab link (its pty), over UDP port 1337 through
native_sim's offloaded sockets (app/smp_udp.conf) or over a third pty UART with MCUmgr's
UART transport (app/smp_serial.conf); the boot log says which. The host side is what users run:
`tinyfix.smp` over smpclient, and the `tinyfix` CLI with `--smp`. Every answer is checked
against what the lab link reports or what the host computed for the replay windows
(app/src/replay_windows.c), so a group that answered with the wrong bytes would fail here.

Run by twister only (scenarios sample.tinyfix.app.smp_udp and .smp_serial in
app/sample.yaml).
"""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from twister_harness import DeviceAdapter

sys.path.insert(0, str(Path(__file__).parent))
from project_env import REPO, TINYFIX  # also puts host/src and the .venv on the path

try:
    import numpy as np
    import smpclient  # noqa: F401
except ImportError as err:
    raise ImportError(f"numpy/smpclient not found: run scripts/setup in {REPO} first") from err
from test_link_native_sim import (
    BLOB_CLASS_SCALE,
    BLOB_MODEL_CRC,
    BLOB_N_CLASSES,
    BOOT_PARAMS,
    PTY_LINE,
    int8_bytes,
    load_windows,
    model_crc,
    open_link,
    reseal,
)

from tinyfix.smp.client import SmpDevice, open_device
from tinyfix.smp.errors import RC_CORE, SmpGroupError

# What says the group is reachable: the UDP transport's socket is bound, or the pty of
# the MCUmgr UART (app/smp_serial_native_sim.overlay) is open.
SMP_READY = (r"SMP over UDP on port (\d+)"
             r"|uart_2 connected to pseudotty: (/dev/pts/\d+)")
# TINYFIX_ERR_CRC and TINYFIX_ERR_MODEL, as the group reports them (16 + |err|).
RC_BAD_CRC = RC_CORE + 3
RC_OTHER_MODEL = RC_CORE + 4


def boot(dut: DeviceAdapter) -> tuple[str, int, str]:
    """Wait for the link's pty, the boot parameters and the SMP transport: (pty, crc, url).

    native_sim prints the pty lines first, but the transport's and main's lines come in
    either order.
    """
    wanted = {"pty": PTY_LINE, "params": BOOT_PARAMS, "smp": SMP_READY}
    found: dict[str, re.Match[str]] = {}
    while len(found) < len(wanted):
        missing = "|".join(f"(?:{p})" for k, p in wanted.items() if k not in found)
        for line in dut.readlines_until(regex=missing, timeout=20):
            for key, pattern in wanted.items():
                if key not in found and (m := re.search(pattern, line)):
                    found[key] = m
    smp = found["smp"]
    url = f"udp://127.0.0.1:{smp.group(1)}" if smp.group(1) else f"serial://{smp.group(2)}"
    return found["pty"].group(1), int(found["params"].group(1), 16), url


@pytest.fixture
def device(dut: DeviceAdapter) -> Iterator[tuple[SmpDevice, str, int, str]]:
    pty, crc, url = boot(dut)
    with open_device(url) as dev:
        yield dev, pty, crc, url


def test_info_over_smp_is_what_the_lab_link_reports(device):
    dev, pty, boot_crc, _ = device
    info = dev.info()
    link = open_link(pty)
    try:
        lab = link.info()
    finally:
        link.close()
    assert info["model_crc"] == model_crc() == lab.model_crc
    assert info["params_crc"] == boot_crc == lab.params_crc
    assert (info["classes"], info["outputs"], info["features"]) == (6, 6, 24)
    assert info["in"]["dims"] == [1, 64, 3] and info["out"]["dims"] == [1, 6]
    assert info["capture_max"] > 0  # replay input classifies on its own: CAPTURE works
    assert info["board"].startswith("native_sim")


def test_a_set_pushed_over_smp_is_applied_persisted_and_refusals_keep_it(dut, device):
    dev, pty, boot_crc, url = device
    original, crc = dev.get_params()
    assert crc == boot_crc
    link = open_link(pty)
    try:
        assert link.get_params() == original  # one parameter store, two ways in
    finally:
        link.close()

    blob = bytearray(original)
    n_classes = struct.unpack_from("<H", blob, BLOB_N_CLASSES)[0]
    struct.pack_into("<i", blob, BLOB_CLASS_SCALE + 4 * n_classes, 2 * 65536)  # bias[0] +2
    changed = reseal(blob)
    new_crc = struct.unpack("<I", changed[-4:])[0]
    assert dev.push_params(changed) == {"crc": new_crc, "persisted": True}
    assert dev.info()["params_crc"] == new_crc
    assert dev.get_params() == (changed, new_crc)

    other_model = bytearray(changed)
    struct.pack_into("<I", other_model, BLOB_MODEL_CRC, model_crc() ^ 1)
    with pytest.raises(SmpGroupError) as refused:
        dev.push_params(reseal(other_model))
    assert refused.value.rc == RC_OTHER_MODEL
    corrupted = bytearray(changed)
    corrupted[-1] ^= 0xFF
    with pytest.raises(SmpGroupError) as refused:
        dev.push_params(bytes(corrupted))
    assert refused.value.rc == RC_BAD_CRC
    assert dev.info()["params_crc"] == new_crc
    dev.close()

    # Persisted with settings: the next boot runs the pushed set.
    dut.close()
    dut.launch()
    _, crc, url = boot(dut)
    assert crc == new_crc
    with open_device(url) as again:
        assert again.info()["params_crc"] == new_crc
        again.push_params(original)  # leave the flash as the other tests expect it


def test_stats_report_the_devices_counters(device):
    dev, pty, boot_crc, _ = device
    first = dev.stats()
    assert first["params_crc"] == boot_crc
    link = open_link(pty)
    try:
        link.info()
        window = load_windows()[0]
        link.infer(int8_bytes(window["input"]), features=True, reset=True)
    finally:
        link.close()
    windows = dev.capture(2, features=False)  # waits for two windows classified on the device
    later = dev.stats()
    assert later["inferences"] == first["inferences"] + 1  # the lab link's INFER
    assert later["frames_ok"] >= first["frames_ok"] + 2  # INFO and INFER
    assert later["captured"] == len(windows) == 2
    assert later["uptime_ms"] >= first["uptime_ms"] + 500  # two replay hops of 500 ms
    assert dev.reset_adaptation() == boot_crc


def test_a_capture_records_the_replay_windows_raw_outputs_and_features(device):
    dev, _, _, _ = device
    windows = load_windows()
    records = dev.capture(8)
    assert len(records) == 8
    found = []
    for rec in records:
        raw = list(struct.unpack("<6b", rec.raw))
        feats = list(struct.unpack("<24b", rec.features))
        match = [i for i, w in enumerate(windows) if w["raw"] == raw and w["features"] == feats]
        assert match, f"record at {rec.t_ms} ms is none of the replay windows"
        found.append(match[0])
    # The device classifies the replay windows in order, one per hop, and a capture records
    # consecutive windows: none skipped, none twice.
    assert all((b - a) % len(windows) == 1 for a, b in pairwise(found)), found
    times = [r.t_ms for r in records]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_the_cli_reads_info_and_captures_over_smp(device, tmp_path):
    dev, _, _, url = device
    dev.close()  # the CLI brings its own connection
    assert TINYFIX.exists(), f"{TINYFIX} is missing: run scripts/setup first"
    shown = subprocess.run([str(TINYFIX), "info", "--smp", url], capture_output=True,
                           text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert f"0x{model_crc():08x}" in shown.stdout

    out = tmp_path / "field.npz"
    done = subprocess.run([str(TINYFIX), "capture", "--smp", url, "--unlabeled",
                           "--windows", "5", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    data = np.load(out)
    assert int(data["model_crc"]) == model_crc()
    raws = {tuple(w["raw"]) for w in load_windows()}
    assert data["scores"].shape == (5, 6)
    assert all(tuple(row) in raws for row in data["scores"].tolist())
    assert data["features"].shape == (5, 24)
