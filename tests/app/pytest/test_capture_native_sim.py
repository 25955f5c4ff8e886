# SPDX-License-Identifier: Apache-2.0
"""A guided capture from the firmware, end to end on native_sim (twister pytest harness).

With CONFIG_APP_REPLAY_CAPTURE the firmware's replay input stands in for a sensor: CAPTURE
returns the built-in replay windows at their pace. `tinyfix capture` (the host package's
session, as a user runs it) records labelled windows from it; every recorded window must
be the firmware's replay window, bit for bit, and the raw outputs and features recorded
beside it must be what the host computed for that window (app/src/replay_windows.c, from
the tflite-micro package and the host build of the tinyfix core).

The firmware's frame (512 bytes) holds no float window, so the host takes the int8 window
the firmware's input stage makes.

Run by twister only (scenario sample.tinyfix.app.capture in app/sample.yaml).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from twister_harness import DeviceAdapter

sys.path.insert(0, str(Path(__file__).parent))
from project_env import REPO, TINYFIX  # also puts host/src and the .venv on the path

try:
    import numpy as np
except ImportError as err:  # neither twister's Python nor a project .venv has it
    raise ImportError(f"numpy not found: run scripts/setup in {REPO} first (.venv)") from err
from test_link_native_sim import boot, load_windows, open_link

from tinyfix.wire.protocol import Cap

CLASSES = ("idle", "wave", "tap", "circle", "shake", "unknown")


def test_a_guided_capture_records_the_firmwares_windows_and_answers(dut: DeviceAdapter,
                                                                     tmp_path):
    pty, _, _ = boot(dut)
    link = open_link(pty)
    info = link.info()
    assert info.caps & Cap.CAPTURE
    link.close()

    out = tmp_path / "lab.npz"
    assert TINYFIX.exists(), f"{TINYFIX} is missing: run scripts/setup first"
    done = subprocess.run([str(TINYFIX), "capture", "--port", pty, "--out", str(out),
                           "--classes", ",".join(CLASSES), "--windows", "2", "--auto"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "perform wave: 0/2 windows" in done.stdout
    data = np.load(out)
    assert data["y"].tolist() == [c for c in range(6) for _ in range(2)]
    assert tuple(data["class_names"]) == CLASSES

    # A float window (768 B) does not fit the firmware's 512-byte frame: the host asks for
    # the int8 window its input stage makes and records it dequantized.
    windows = load_windows()
    inputs = np.array([w["input"] for w in windows], dtype=np.int64)
    found = []
    for x, raw, feats in zip(data["x"], data["scores"], data["features"], strict=True):
        q = np.round(x.astype(np.float64) / info.input.scale) + info.input.zero_point
        match = np.flatnonzero(np.all(inputs == q.astype(np.int64).ravel(), axis=1))
        assert match.size == 1, "a recorded window is none of the firmware's replay windows"
        w = windows[int(match[0])]
        assert raw.tolist() == w["raw"], w["name"]
        assert feats.tolist() == w["features"], w["name"]
        found.append(int(match[0]))
    # Consecutive CAPTUREs get consecutive replay windows (one per hop, none skipped).
    steps = np.diff(found) % len(windows)
    assert np.all(steps == 1), found
    session = out.with_suffix(".tfsession")
    assert session.exists() and re.match(rb"TFCAP1\n", session.read_bytes())
