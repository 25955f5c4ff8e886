# SPDX-License-Identifier: Apache-2.0
"""What the twister pytest modules need of the project, importable from twister's Python.

Twister runs these tests with the Zephyr workspace's Python: this puts the host package
(host/src) first on the path and the project's .venv packages (scripts/setup: numpy,
smpclient, ...) after twister's own, and names the repository and its `tinyfix` command.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
TINYFIX = REPO / ".venv" / "bin" / "tinyfix"

sys.path.insert(0, str(REPO / "host" / "src"))
sys.path += [str(p) for p in (REPO / ".venv" / "lib").glob(
    f"python{sys.version_info.major}.{sys.version_info.minor}/site-packages")]
