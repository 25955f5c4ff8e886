# SPDX-License-Identifier: Apache-2.0
"""The firmware's built-in replay expectations are current.

app/src/replay_windows.c carries what the host twin computes for the replay windows (raw
outputs, features, identity decisions); the firmware and tests/app compare the device
against it. A change to the model, the data generator or the core's arithmetic makes it
stale, and the device tests would then fail for the wrong reason.
"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gen_replay_windows.py"


def test_replay_windows_match_what_the_generator_writes_today():
    pytest.importorskip("tflite_micro")
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True,
                          text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
