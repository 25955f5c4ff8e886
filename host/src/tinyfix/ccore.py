# SPDX-License-Identifier: Apache-2.0
"""Build and load the tinyfix C core for the host, through cffi.

The host never re-implements the correction arithmetic: it compiles the very sources the
firmware links (modules/tinyfix/src/*.c) and calls them. A build is cached by a hash of the
sources, declarations and options, so editing the C rebuilds on the next import.

Variants differ only in compile-time options: "fixed" is the integer path every Cortex-M runs,
"float" the optional FPU path, "device" the integer path at a device's Kconfig sizes. Host
capacities are larger than a device's; parameter blobs do not depend on them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
from functools import cache
from pathlib import Path
from types import ModuleType

from tinyfix.errors import TinyfixError

HOST_CAPACITY = {
    "TINYFIX_MAX_CLASSES": 64,
    "TINYFIX_MAX_VOTE_FRAMES": 64,
    "TINYFIX_MAX_ANOMALY_WINDOW": 256,
    "TINYFIX_MAX_CHANNELS": 64,
    "TINYFIX_MAX_FEATURES": 4096,
    # Any whole last layer of 64 classes x 4096 features: the host evaluates every variant.
    "TINYFIX_MAX_HEAD_WEIGHTS": 64 * 4096,
}
# Kconfig defaults of a device build (the head needs at least one feature for the cdef).
DEVICE_CAPACITY = {
    "TINYFIX_MAX_CLASSES": 16,
    "TINYFIX_MAX_VOTE_FRAMES": 16,
    "TINYFIX_MAX_ANOMALY_WINDOW": 64,
    "TINYFIX_MAX_CHANNELS": 8,
    "TINYFIX_MAX_FEATURES": 32,
}
VARIANTS = {
    "fixed": {**HOST_CAPACITY, "TINYFIX_USE_FLOAT": 0},
    "float": {**HOST_CAPACITY, "TINYFIX_USE_FLOAT": 1},
    "device": {**DEVICE_CAPACITY, "TINYFIX_USE_FLOAT": 0},
}
CDEF_DIR = Path(__file__).parent / "cdefs"
# TINYFIX_SANITIZE=1 (or "address") builds every variant under AddressSanitizer and
# UndefinedBehaviorSanitizer (scripts/test runs the whole suite so). Python itself is not
# instrumented, so the ASan runtime must be loaded first:
# LD_PRELOAD=$(cc -print-file-name=libasan.so). TINYFIX_SANITIZE=undefined: UBSan alone, at
# the normal -O2 and with no preload (scripts/check-core-compile runs the golden tests so).
# Any finding aborts the process: a red run, never a warning in a log.
SANITIZERS = {
    "address": ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                "-fno-omit-frame-pointer", "-g"],
    "undefined": ["-fsanitize=undefined", "-fno-sanitize-recover=all", "-g"],
}


def sanitizer() -> str | None:
    """Which sanitizer build this process uses ("address", "undefined" or None)."""
    mode = os.environ.get("TINYFIX_SANITIZE", "")
    if mode in ("", "0"):
        return None
    mode = "address" if mode == "1" else mode
    if mode not in SANITIZERS:
        raise TinyfixError(f"TINYFIX_SANITIZE={mode!r}: use 1, address or undefined")
    return mode


def module_dir() -> Path:
    """modules/tinyfix of this checkout (or TINYFIX_MODULE_DIR)."""
    env = os.environ.get("TINYFIX_MODULE_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[3] / "modules" / "tinyfix")
    for path in candidates:
        if (path / "include" / "tinyfix" / "tinyfix.h").is_file():
            return path
    raise TinyfixError(
        "cannot find the tinyfix C sources (modules/tinyfix); "
        "set TINYFIX_MODULE_DIR to the module folder"
    )


def zcbor_dir() -> Path:
    """zcbor's C library, from the zcbor package on PyPI (the MCUmgr group's CBOR codec).

    Its C sources are the ones Zephyr's west manifest pins (0.9.1); the package's Python half
    is not imported (it needs an older cbor2 than smpclient's).
    """
    import importlib.util as util

    spec = util.find_spec("zcbor")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location)
        if (path / "src" / "zcbor_decode.c").is_file():
            return path
    raise TinyfixError("the zcbor package (PyPI) is not installed: pip install zcbor")


def _inputs(root: Path) -> tuple[list[Path], list[Path], list[Path]]:
    # src/zephyr/ glue is not in the glob; src/smp/ is the MCUmgr group, with zcbor.
    sources = sorted((root / "src").glob("*.c")) + sorted((root / "src" / "smp").glob("*.c"))
    zcbor = zcbor_dir() / "src"
    sources += [zcbor / name for name in ("zcbor_common.c", "zcbor_decode.c", "zcbor_encode.c")]
    headers = sorted((root / "include" / "tinyfix").glob("*.h"))
    cdefs = sorted(CDEF_DIR.glob("*.h"))
    return sources, headers, cdefs


def _cdef_text(cdefs: list[Path]) -> str:
    # cffi's parser knows no comments in #define lines' values and no SPDX; strip comments.
    lines = []
    for path in cdefs:
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("/*", "*", "//")):
                continue
            lines.append(line)
    return "\n".join(lines)


def _build(variant: str, target: Path, sanitize: str | None) -> None:
    import cffi  # only needed when a build is due

    root = module_dir()
    sources, headers, cdefs = _inputs(root)
    ffi = cffi.FFI()
    ffi.cdef(_cdef_text(cdefs))
    defines = [(k, str(v)) for k, v in VARIANTS[variant].items()]
    includes = "".join(f"#include <tinyfix/{h.name}>\n" for h in headers)
    # zcbor is third-party code: compiled in the preamble, outside our warning flags.
    zcbor_sources = [s for s in sources if s.name.startswith("zcbor_")]
    sources = [s for s in sources if s not in zcbor_sources]
    includes += (
        '#pragma GCC diagnostic push\n'
        '#pragma GCC diagnostic ignored "-Wunused-but-set-variable"\n'
        + "".join(f'#include "{s}"\n' for s in zcbor_sources)
        + '#pragma GCC diagnostic pop\n'
    )
    ffi.set_source(
        f"_tinyfix_{variant}",
        includes,
        sources=[str(s) for s in sources],
        include_dirs=[str(root / "include"), str(root / "src"), str(zcbor_dir() / "include")],
        define_macros=defines,
        extra_compile_args=["-std=c99", "-O1" if sanitize == "address" else "-O2", "-Wall",
                            "-Wextra", "-Werror",
                            # as Zephyr builds (zcbor's float16 code type-puns)
                            "-fno-strict-aliasing", *SANITIZERS.get(sanitize or "", [])],
        extra_link_args=SANITIZERS.get(sanitize or "", []),
        libraries=["m"],
    )
    tmp = Path(tempfile.mkdtemp(prefix="build-", dir=target.parent))
    try:
        ffi.compile(tmpdir=str(tmp), verbose=False)
        built = next(tmp.glob(f"_tinyfix_{variant}*.so"))
        target.mkdir(parents=True, exist_ok=True)
        os.replace(built, target / built.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cache_root() -> Path:
    env = os.environ.get("TINYFIX_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tinyfix"


@cache
def load(variant: str = "fixed") -> ModuleType:
    """The compiled core as a cffi module with `.ffi` and `.lib`, built on first use."""
    if variant not in VARIANTS:
        raise TinyfixError(f"unknown core variant {variant!r}; known: {', '.join(VARIANTS)}")
    root = module_dir()
    sanitize = sanitizer()
    if sanitize == "address" and "libasan" not in Path("/proc/self/maps").read_text():
        raise TinyfixError(
            "TINYFIX_SANITIZE is set but the AddressSanitizer runtime is not loaded: start "
            "Python with LD_PRELOAD=$(cc -print-file-name=libasan.so)")
    digest = hashlib.sha256(repr(sorted(VARIANTS[variant].items())).encode())
    digest.update(sys.version.encode())
    digest.update(repr(SANITIZERS.get(sanitize or "")).encode())
    for group in _inputs(root):
        for path in group:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    kind = f"{variant}-{sanitize}" if sanitize else variant
    target = _cache_root() / f"{kind}-{digest.hexdigest()[:16]}"
    if not any(target.glob("*.so")):
        target.parent.mkdir(parents=True, exist_ok=True)
        _build(variant, target, sanitize)
    so = next(target.glob("*.so"))
    spec = importlib.util.spec_from_file_location(f"_tinyfix_{variant}", so)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
