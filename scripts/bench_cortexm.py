#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Benchmark, not a test: Thumb-2 instructions per tinyfix_process() call on Cortex-M3 and
Cortex-M4F, counted by running the arm-none-eabi build in the unicorn CPU emulator.

Instructions, not cycles: a Cortex-M3 takes about 1.2-1.5 cycles per instruction on such
code (64-bit multiplies and branches cost more). The frame loop runs in Python, each call is
emulated from its entry to its return, and only the instructions of that call are counted.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
from pathlib import Path

from elftools.elf.elffile import ELFFile
from unicorn import UC_ARCH_ARM, UC_HOOK_CODE, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
from unicorn.arm_const import UC_ARM_REG_LR, UC_ARM_REG_R0, UC_ARM_REG_SP

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {
    "cortex-m3": ["-mcpu=cortex-m3", "-mthumb"],
    "cortex-m4f": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
}
FLASH, RAM, RAM_SIZE = 0x0, 0x20000000, 0x40000
RETURN = 0x0FFFFFF0  # LR for emulated calls: stop when execution reaches it


def build(flags: list[str], out: Path) -> Path:
    mod = ROOT / "modules" / "tinyfix"
    elf = out / "bench.elf"
    link = out / "bench.ld"
    link.write_text(
        "MEMORY { FLASH (rx) : ORIGIN = 0x0, LENGTH = 1M\n"
        "         RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 256K }\n"
        "SECTIONS { .text : { *(.text*) *(.rodata*) } > FLASH\n"
        "  .data : { *(.data*) } > RAM AT > FLASH\n"
        "  .bss (NOLOAD) : { *(.bss*) *(COMMON) } > RAM }\n"
    )
    sources = [str(p) for p in sorted((mod / "src").glob("tinyfix_*.c"))
               if p.name not in ("tinyfix_wire.c", "tinyfix_link.c")]
    subprocess.run(
        ["arm-none-eabi-gcc", *flags, "-std=c99", "-Os", "-ffunction-sections",
         "-fdata-sections", f"-I{mod / 'include'}", f"-I{mod / 'src'}", "-nostartfiles",
         "-Wl,--gc-sections", "-Wl,-e,bench_frame", "-Wl,-u,bench_setup", f"-T{link}",
         "--specs=nano.specs", "--specs=nosys.specs",
         str(ROOT / "tests" / "bench" / "bench_frames.c"), *sources, "-lm",
         "-o", str(elf)],
        check=True,
    )
    return elf


def load(elf_path: Path) -> tuple[Uc, dict[str, int]]:
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
    uc.mem_map(FLASH, 0x100000)
    uc.mem_map(RAM, RAM_SIZE)
    uc.mem_map(RETURN & ~0xFFF, 0x1000)
    with elf_path.open("rb") as f:
        elf = ELFFile(f)
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_filesz"]:
                uc.mem_write(seg["p_paddr"], seg.data())
                if seg["p_vaddr"] != seg["p_paddr"]:
                    uc.mem_write(seg["p_vaddr"], seg.data())
        symbols = {s.name: s["st_value"] for s in elf.get_section_by_name(".symtab").iter_symbols()
                   if s.name}
    return uc, symbols


def call(uc: Uc, address: int, arg: int, counter: list[int]) -> int:
    uc.reg_write(UC_ARM_REG_SP, RAM + RAM_SIZE - 16)
    uc.reg_write(UC_ARM_REG_LR, RETURN | 1)
    uc.reg_write(UC_ARM_REG_R0, arg & 0xFFFFFFFF)
    counter[0] = 0
    uc.emu_start(address | 1, RETURN)
    result = uc.reg_read(UC_ARM_REG_R0)
    return result - (1 << 32) if result & 0x80000000 else result


def measure(name: str, flags: list[str], frames: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        elf = build(flags, Path(tmp))
        size = subprocess.run(["arm-none-eabi-size", str(elf)], check=True, capture_output=True,
                              text=True).stdout.splitlines()[1].split()
        uc, sym = load(elf)
    counter = [0]

    def count(_uc: Uc, _addr: int, _size: int, _data: object) -> None:
        counter[0] += 1

    uc.hook_add(UC_HOOK_CODE, count)
    if call(uc, sym["bench_setup"], 0, counter) != 0:
        sys.exit(f"{name}: bench_setup failed")
    setup = counter[0]
    rng = random.Random(1)
    counts = []
    for i in range(frames):
        uc.mem_write(sym["bench_raw"], bytes(rng.randrange(256) for _ in range(12)))
        if call(uc, sym["bench_frame"], i * 100, counter) != 0:
            sys.exit(f"{name}: tinyfix_process failed")
        counts.append(counter[0])
    counts.sort()
    print(f"{name}: tinyfix_process, 12 classes, 5-frame window: "
          f"median {counts[len(counts) // 2]} instructions per call "
          f"(min {counts[0]}, max {counts[-1]}, {frames} frames); init+set_params {setup}; "
          f"image .text {size[0]} B")


def main() -> None:
    frames = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    for name, flags in TARGETS.items():
        measure(name, flags, frames)


if __name__ == "__main__":
    main()
