#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The lab command: `host/calibrate.py --port /dev/ttyACM0 --model M.tflite --data D.npz`.

A thin shim over `tinyfix calibrate` (see `--help`). From a checkout it uses the repository's
.venv (made by scripts/setup) when the running Python lacks the package.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV_PYTHON = HERE.parent / ".venv" / "bin" / "python"

try:
    from tinyfix.cli import main
except ImportError:
    if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != VENV_PYTHON.parents[1].resolve():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), __file__, *sys.argv[1:]])
    sys.exit("error: the tinyfix package is not installed: run scripts/setup, or "
             "pip install -e host")

if __name__ == "__main__":
    sys.exit(main(["calibrate", *sys.argv[1:]]))
