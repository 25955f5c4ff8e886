# SPDX-License-Identifier: Apache-2.0
"""Shim: the generator lives in the host package as tinyfix.demo_data.gesture_data.

Importing this file (as the scripts beside it do) gives that very module; running it runs
its command line:

    python scripts/demo_data/gesture_data.py --out data/
"""

import sys

from tinyfix.demo_data import gesture_data

if __name__ == "__main__":
    sys.exit(gesture_data.main())
sys.modules[__name__] = gesture_data
