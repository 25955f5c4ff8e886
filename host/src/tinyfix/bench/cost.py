# SPDX-License-Identifier: Apache-2.0
"""What the correction costs: instructions per tinyfix_process() call against one TFLM
Invoke() of the demo model, by one method for both, and the module's flash and RAM.

Instructions: valgrind's callgrind on this host (x86-64) runs callgrind_driver.py twice,
collecting only inside `tflite::micro::MicroInterpreter::Invoke()` (the tflite-micro wheel's
build) and inside `tinyfix_process` (the cffi build of modules/tinyfix, -O2); the count is
the collected total over the number of calls callgrind recorded. The frames are real: field
test windows for Invoke(), the int8 model's raw outputs on them for tinyfix_process, with the
parameter sets the scenarios fitted. Flash and RAM come from scripts/bench-core-size
(arm-none-eabi-gcc -Os, Cortex-M4F) and Thumb-2 instructions from scripts/bench_cortexm.py
(its own fixed 12-class configuration). A missing tool skips its part with a printed line.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyfix.bench.context import INT8_MODEL, REPO, Bench
from tinyfix.capture import quantize_inputs
from tinyfix.fit import FitResult

DRIVER = Path(__file__).with_name("callgrind_driver.py")
TFLM_PATTERN = "*MicroInterpreter::Invoke*"
TINYFIX_PATTERN = "tinyfix_process"
TIMEOUT_S = 900
_NAMED = re.compile(r"^c?fn=\((\d+)\)(?: (.*))?$")


@dataclass(frozen=True)
class Count:
    """Instructions callgrind collected inside the toggled function over its calls."""

    pattern: str
    total: int
    calls: int
    top: tuple[tuple[str, int], ...] = ()

    @property
    def per_call(self) -> float:
        return self.total / self.calls if self.calls else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "instructions_total": self.total,
                "calls": self.calls, "instructions_per_call": self.per_call,
                "top_functions": [{"function": f, "instructions": n} for f, n in self.top]}


def parse_callgrind(text: str, pattern: str) -> tuple[int, int]:
    """(collected instructions, recorded calls of functions matching `pattern`) from a
    callgrind output file (names are compressed: `cfn=(7) name` once, then `cfn=(7)`)."""
    names: dict[str, str] = {}
    total = calls = 0
    pending = False
    for line in text.splitlines():
        if line.startswith("summary:") or (line.startswith("totals:") and not total):
            total = int(line.split()[1])
        m = _NAMED.match(line)
        if m:
            ident, name = m.groups()
            if name:
                names[ident] = name
            pending = line.startswith("cfn=") and fnmatch.fnmatchcase(names.get(ident, ""),
                                                                       pattern)
            continue
        if pending and line.startswith("calls="):
            calls += int(line.split("=", 1)[1].split()[0])
            pending = False
    return total, calls


def _top_functions(out_file: Path, n: int = 3) -> tuple[tuple[str, int], ...]:
    """The functions callgrind_annotate ranks first (shows what was counted)."""
    if shutil.which("callgrind_annotate") is None:
        return ()
    done = subprocess.run(["callgrind_annotate", str(out_file)], capture_output=True,
                          text=True, check=False)
    rows = []
    for line in done.stdout.splitlines():
        m = re.match(r"^\s*([\d,]+) \([\s\d.]+%\)\s+\S*?:(.+?)(?: \[.*\])?$", line)
        if m and "PROGRAM TOTALS" not in line:
            rows.append((m.group(2).strip()[:120], int(m.group(1).replace(",", ""))))
    return tuple(rows[:n])


def callgrind(args: list[str], pattern: str, work: Path, tag: str) -> Count:
    out_file = work / f"callgrind.{tag}.out"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
           f"--toggle-collect={pattern}", sys.executable, str(DRIVER), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    if done.returncode != 0 or not out_file.is_file():
        tail = " ".join(done.stderr.strip().splitlines()[-2:])
        raise RuntimeError(f"valgrind failed (exit {done.returncode}): {tail}")
    total, calls = parse_callgrind(out_file.read_text(), pattern)
    return Count(pattern, total, calls, _top_functions(out_file))


def _model_json(result: FitResult) -> str:
    return json.dumps(dataclasses.asdict(result.model))


def instructions(bench: Bench, work: Path) -> dict[str, Any]:
    n = bench.size.callgrind_calls
    test = bench.windows("field_test")
    x = quantize_inputs(bench.core, bench.int8.info, test.x[:max(n, 1)])
    np.save(work / "inputs.npy", x)
    raw = bench.raw(bench.int8, "windows:field_test")[:max(n, 1)]
    np.save(work / "raw.npy", np.ascontiguousarray(raw))
    out: dict[str, Any] = {
        "tflm_invoke": callgrind(["tflm", str(INT8_MODEL), str(work / "inputs.npy"), str(n)],
                                 TFLM_PATTERN, work, "tflm").as_dict()}
    sets = {"classification": bench.classification_fit}
    if "streaming" in bench.fitted:
        sets["streaming"] = bench.fitted["streaming"]
    out["tinyfix_process"] = {}
    for name, result in sets.items():
        (work / f"{name}.json").write_text(_model_json(result))
        (work / f"{name}.bin").write_bytes(result.params.encode())
        count = callgrind(["tinyfix", str(work / f"{name}.json"), str(work / f"{name}.bin"),
                           str(work / "raw.npy"), str(n)], TINYFIX_PATTERN, work, name)
        out["tinyfix_process"][name] = {**count.as_dict(),
                                        "stages": list(result.stages_kept)}
    return out


def core_size() -> dict[str, Any]:
    """Cortex-M4F figures of scripts/bench-core-size, or {"skipped": why}."""
    try:
        done = subprocess.run([str(REPO / "scripts" / "bench-core-size")],
                              capture_output=True, text=True, check=False, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        return {"skipped": f"scripts/bench-core-size did not run: {err}"}
    text = done.stdout
    if done.returncode != 0 or "skipped" in text:
        said = (text.strip() or done.stderr.strip() or f"exit {done.returncode}").splitlines()
        return {"skipped": said[-1]}
    return parse_core_size(text)


def parse_core_size(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in text.splitlines():
        m = re.match(r"^cortex-m4f core total: flash (\d+) B .*static RAM (\d+) B", line)
        if m:
            out["core_flash_bytes"], out["static_ram_bytes"] = int(m[1]), int(m[2])
        m = re.match(r"^cortex-m4f struct tinyfix_ctx .*: (\d+) B", line)
        if m:
            out["ctx_bytes"] = int(m[1])
        m = re.match(r"^cortex-m4f linked with every API call .*flash (\d+) B", line)
        if m:
            out["linked_flash_bytes"] = int(m[1])
        m = re.match(r"^cortex-m4f-minimal linked with every API call .*flash (\d+) B", line)
        if m:
            out["minimal_linked_flash_bytes"] = int(m[1])
    if "core_flash_bytes" not in out:
        return {"skipped": "scripts/bench-core-size printed no Cortex-M4F total"}
    return out


def cortexm(frames: int) -> dict[str, Any]:
    """Thumb-2 instructions per tinyfix_process from scripts/bench_cortexm.py."""
    if shutil.which("arm-none-eabi-gcc") is None:
        return {"skipped": "arm-none-eabi-gcc not installed (scripts/setup --cross)"}
    try:
        done = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_cortexm.py"),
                               str(frames)], capture_output=True, text=True, check=False,
                              timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        return {"skipped": f"scripts/bench_cortexm.py did not run: {err}"}
    if done.returncode != 0:
        tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
        return {"skipped": f"scripts/bench_cortexm.py failed (exit {done.returncode}): "
                           f"{' '.join(tail)}"}
    return parse_cortexm(done.stdout)


def parse_cortexm(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in text.splitlines():
        m = re.match(r"^(cortex-m\w+): tinyfix_process, (.*?): median (\d+) instructions", line)
        if m:
            out[m[1]] = int(m[3])
            out["configuration"] = m[2]
    if not out:
        return {"skipped": "scripts/bench_cortexm.py printed no instruction count"}
    return out


def run(bench: Bench) -> dict[str, Any]:
    """Every cost figure; parts whose tool is missing carry {"skipped": why}."""
    out: dict[str, Any] = {}
    if shutil.which("valgrind") is None:
        out["instructions"] = {"skipped": "valgrind not installed (scripts/setup --cross)"}
    else:
        with tempfile.TemporaryDirectory(prefix="tinyfix-cost-") as tmp:
            try:
                out["instructions"] = instructions(bench, Path(tmp))
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
                out["instructions"] = {"skipped": str(err)}
    out["cortex_m4f_size"] = core_size()
    out["thumb2_instructions"] = cortexm(bench.size.cortexm_frames)
    return out


def markdown(cost: dict[str, Any]) -> str:
    lines = ["### Cost of the correction", "",
             "Instructions: callgrind on the host (x86-64), one method for both: collection "
             "only inside the named function, collected instructions over recorded calls. "
             "Sizes: `scripts/bench-core-size` (arm-none-eabi-gcc -Os, Kconfig defaults). "
             "Thumb-2: `scripts/bench_cortexm.py` (unicorn emulator).", "",
             "| figure | value | how |", "| --- | --- | --- |"]
    skipped = []
    ins = cost.get("instructions", {})
    if "skipped" in ins:
        skipped.append(f"instruction counts skipped: {ins['skipped']}")
    else:
        tflm = ins["tflm_invoke"]
        lines.append(f"| TFLM `Invoke()`, demo int8 model, x86-64 | "
                     f"{tflm['instructions_per_call']:,.0f} instructions | callgrind "
                     f"`--toggle-collect='{tflm['pattern']}'`, {tflm['calls']} calls, "
                     "tflite-micro wheel |")
        for name, c in ins["tinyfix_process"].items():
            share = c["instructions_per_call"] / tflm["instructions_per_call"]
            lines.append(f"| `tinyfix_process`, scenario {name} set "
                         f"({', '.join(c['stages']) or 'identity'}), x86-64 | "
                         f"{c['instructions_per_call']:,.0f} instructions "
                         f"(**{100 * share:.2f}%** of one Invoke) | callgrind "
                         f"`--toggle-collect={c['pattern']}`, {c['calls']} calls, cffi build "
                         "-O2 |")
    size = cost.get("cortex_m4f_size", {})
    if "skipped" in size:
        skipped.append(f"flash/RAM skipped: {size['skipped']}")
    else:
        lines += [
            f"| core flash, Cortex-M4F, every stage (objects summed) | "
            f"{size['core_flash_bytes']:,} B | `scripts/bench-core-size` |",
            f"| core flash linked with every API call, Cortex-M4F | "
            f"{size.get('linked_flash_bytes', 0):,} B | incl. libgcc/libc helpers |",
            f"| static RAM of the core | {size['static_ram_bytes']} B | .data + .bss |",
            f"| `struct tinyfix_ctx` (caller-owned RAM) | {size.get('ctx_bytes', 0):,} B | "
            "Kconfig defaults |",
        ]
    thumb = cost.get("thumb2_instructions", {})
    if "skipped" in thumb:
        skipped.append(f"Thumb-2 count skipped: {thumb['skipped']}")
    else:
        for core_name in ("cortex-m3", "cortex-m4f"):
            if core_name in thumb:
                lines.append(f"| `tinyfix_process`, Thumb-2, {core_name} | "
                             f"{thumb[core_name]:,} instructions (median) | "
                             f"`scripts/bench_cortexm.py`: {thumb['configuration']} |")
    if "skipped" not in ins:
        lines.append("")
        lines.append("- The share of one `Invoke()` is an x86-64 figure: TFLM does not run in "
                     "the Cortex-M emulator here, so there is no Thumb-2 count of `Invoke()` to "
                     "divide by. The Thumb-2 rows are `bench_cortexm.py`'s own 12-class set "
                     "(thresholds, 5-frame vote, anomaly), heavier than the demo's sets.")
    lines += [""] + [f"- {s}" for s in skipped]
    return "\n".join(lines).rstrip() + "\n"
