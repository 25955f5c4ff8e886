# SPDX-License-Identifier: Apache-2.0
"""The sanitizer builds of the C core (TINYFIX_SANITIZE): scripts/test runs the whole suite
under ASan and UBSan, scripts/check-core-compile the golden tests under UBSan. These tests
make sure such a run really loads an instrumented core, and that a bad access aborts it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinyfix import ccore

MODE = ccore.sanitizer()
pytestmark = pytest.mark.skipif(
    MODE is None, reason="not a sanitizer run (TINYFIX_SANITIZE unset); scripts/test runs "
                         "the suite under ASan and UBSan")


def test_the_loaded_core_is_the_instrumented_build():
    module = ccore.load("fixed")
    assert f"fixed-{MODE}-" in str(Path(module.__file__).parent.name)
    maps = Path("/proc/self/maps").read_text()
    assert "libubsan" in maps or "libasan" in maps  # gcc puts UBSan in libasan with ASan


@pytest.mark.skipif(MODE != "address", reason="needs the AddressSanitizer build")
def test_an_out_of_bounds_write_through_the_core_aborts_the_process():
    # The core is told a 4-byte buffer holds 64: ASan must stop the decoder's 5th write.
    code = """
import ctypes
from tinyfix import ccore
m = ccore.load("fixed")
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
dst = m.ffi.cast("uint8_t *", libc.malloc(4))
src = bytes([21]) + bytes(range(1, 21))
print("decoded", m.lib.tinyfix_wire_cobs_decode(src, len(src), dst, 64))
"""
    # The report on stderr, wherever this run's ASAN_OPTIONS send reports.
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=0"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120)
    assert run.returncode != 0 and "decoded" not in run.stdout
    assert "AddressSanitizer: heap-buffer-overflow" in run.stderr
    assert "tinyfix_wire_cobs_decode" in run.stderr
