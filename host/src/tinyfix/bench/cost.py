# SPDX-License-Identifier: Apache-2.0
"""What the correction costs: instructions per tinyfix_process() call against one TFLM
Invoke() of the demo model, by one method for both, and the module's flash and RAM; and
for the head stage (the re-fitted last layer), its instructions against one Invoke() and
against the model's own last layer in TFLM, and its flash against that layer's.

Instructions: valgrind's callgrind on this host (x86-64) runs callgrind_driver.py once per
figure (in parallel, one run per CPU), collecting only inside the named function: the
tflite-micro wheel's `tflite::micro::MicroInterpreter::Invoke()`, the cffi build's
(modules/tinyfix, -O2) `tinyfix_process` and `tinyfix_head_run` (the head stage alone), and
TFLM's FULLY_CONNECTED kernel (`FullyConnectedEval`) in a one-op model holding the demo
model's final FULLY_CONNECTED with its own tensors (last_layer.py; in the whole model the
kernel also runs the first FULLY_CONNECTED). The count is the collected total over the
number of calls callgrind recorded. The frames are real: field test windows for Invoke(),
the int8 model's raw outputs and feature vectors on them for the rest, with the parameter
sets the scenarios fitted. Flash and RAM come from scripts/bench-core-size
(arm-none-eabi-gcc -Os, Cortex-M4F; its head variant at the demo model's feature count)
and Thumb-2 instructions from scripts/bench_cortexm.py (its own fixed 12-class
configuration). A missing tool skips its part with a printed line.

Targets (issue 9): the head stage costs no more instructions, and its parameters no more
flash, than the model's own last layer.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyfix.bench.context import INT8_MODEL, REPO, Bench
from tinyfix.bench.last_layer import last_layer_model, layer_bytes
from tinyfix.bench.table import Target
from tinyfix.capture import quantize_inputs
from tinyfix.fit import FitResult

DRIVER = Path(__file__).with_name("callgrind_driver.py")
TFLM_PATTERN = "*MicroInterpreter::Invoke*"
TINYFIX_PATTERN = "tinyfix_process"
HEAD_PATTERN = "tinyfix_head_run"
FC_PATTERN = "*FullyConnectedEval*"
HEAD_FEATURES_ENV = "TINYFIX_BENCH_HEAD_FEATURES"
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


def parse_calls(text: str, pattern: str) -> tuple[int, int]:
    """(inclusive instructions, calls) of the recorded calls to functions matching `pattern`
    inside the collected part: the line after each `calls=` line holds those calls'
    inclusive cost (`<position> <Ir>`)."""
    names: dict[str, str] = {}
    inclusive = calls = 0
    pending = cost_next = False
    for line in text.splitlines():
        if cost_next:
            fields = line.split()
            if len(fields) >= 2:
                inclusive += int(fields[1])
            cost_next = False
            continue
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
            pending, cost_next = False, True
    return inclusive, calls


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


def _out_file(work: Path, tag: str) -> Path:
    return work / f"callgrind.{tag}.out"


def callgrind(args: list[str], pattern: str, work: Path, tag: str) -> Count:
    out_file = _out_file(work, tag)
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
    model = bench.int8
    test = bench.windows("field_test")
    x = quantize_inputs(bench.core, model.info, test.x[:max(n, 1)])
    np.save(work / "inputs.npy", x)
    raw = bench.raw(model, "windows:field_test")[:max(n, 1)]
    np.save(work / "raw.npy", np.ascontiguousarray(raw))
    feats = bench.features(model, "windows:field_test")[:max(n, 1)]
    np.save(work / "features.npy", np.ascontiguousarray(feats))
    # (figure key, set name or None, driver arguments, pattern)
    jobs: list[tuple[str, str | None, list[str], str]] = [
        ("tflm_invoke", None, ["tflm", str(INT8_MODEL), str(work / "inputs.npy"), str(n)],
         TFLM_PATTERN)]
    sets = {"classification": bench.classification_fit}
    if "streaming" in bench.fitted:
        sets["streaming"] = bench.fitted["streaming"]
    head = bench.head_fit
    if head.uses_features:
        sets["classification_head"] = head
    for name, result in sets.items():
        (work / f"{name}.json").write_text(_model_json(result))
        (work / f"{name}.bin").write_bytes(result.params.encode())
        args = ["tinyfix", str(work / f"{name}.json"), str(work / f"{name}.bin"),
                str(work / "raw.npy"), str(n)]
        if result.uses_features:
            args.append(str(work / "features.npy"))
        jobs.append(("tinyfix_process", name, args, TINYFIX_PATTERN))
    if model.graph.final is not None:
        (work / "last_layer.tflite").write_bytes(last_layer_model(model.graph))
        jobs.append(("model_last_layer", None, ["tflm", str(work / "last_layer.tflite"),
                                                str(work / "features.npy"), str(n)],
                     FC_PATTERN))

    def one(job: tuple[str, str | None, list[str], str]) -> Count:
        key, name, args, pattern = job
        return callgrind(args, pattern, work, f"{key}.{name}")

    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
        counts = list(pool.map(one, jobs))
    out: dict[str, Any] = {"tinyfix_process": {}}
    for (key, name, _, _), count in zip(jobs, counts, strict=True):
        figure = count.as_dict()
        if name is not None:
            figure["stages"] = list(sets[name].stages_kept)
        if key == "tinyfix_process":
            out[key][name] = figure
        else:
            out[key] = figure
    if head.uses_features:
        # The head stage alone: callgrind's inclusive cost of the calls tinyfix_process
        # made to tinyfix_head_run in the same run.
        text = _out_file(work, "tinyfix_process.classification_head").read_text()
        total, calls = parse_calls(text, HEAD_PATTERN)
        out["head_stage"] = {**Count(HEAD_PATTERN, total, calls).as_dict(),
                             "stages": ["head"],
                             "how": "inclusive cost of the calls from tinyfix_process"}
    else:
        out["head_stage"] = {"skipped": "the fit with features did not keep the head"}
    if "model_last_layer" not in out:
        out["model_last_layer"] = {"skipped": "the model does not end in FULLY_CONNECTED"}
    return out


def head_size(bench: Bench) -> dict[str, Any]:
    """Bytes of the head's parameters as the set stores them against the model's own last
    layer as the .tflite stores it."""
    model = bench.int8
    if model.graph.final is None or bench.head_fit.float_params.head is None:
        return {"skipped": "no head re-fit kept for this model"}
    head = bench.head_fit.float_params.head
    lib = bench.core.lib
    info = model.info
    columns = head.n_columns if head.is_residual else 0
    with_head = int(lib.tinyfix_params_encoded_size(info.n_classes, 0, info.n_features,
                                                    head.n_rows, columns))
    without = int(lib.tinyfix_params_encoded_size(info.n_classes, 0, 0, 0, 0))
    own = layer_bytes(model.graph)
    return {"classes": head.n_rows, "features": head.n_features,
            "head_flash_bytes": head.flash_bytes, "encoded_set_growth_bytes": with_head - without,
            "form": head.describe(), "columns": head.n_columns,
            "own_weights_bytes": own.weights, "own_bias_bytes": own.bias,
            "own_quantization_bytes": own.quantization,
            "own_weights_and_bias_bytes": own.weights_and_bias, "own_total_bytes": own.total}


def core_size(head_features: int | None = None) -> dict[str, Any]:
    """Cortex-M4F figures of scripts/bench-core-size (its head variant built for
    `head_features` features if given), or {"skipped": why}."""
    env = dict(os.environ)
    if head_features:
        env[HEAD_FEATURES_ENV] = str(head_features)
    try:
        done = subprocess.run([str(REPO / "scripts" / "bench-core-size")],
                              capture_output=True, text=True, check=False, timeout=TIMEOUT_S,
                              env=env)
    except (OSError, subprocess.TimeoutExpired) as err:
        return {"skipped": f"scripts/bench-core-size did not run: {err}"}
    text = done.stdout
    if done.returncode != 0 or "skipped" in text:
        said = (text.strip() or done.stderr.strip() or f"exit {done.returncode}").splitlines()
        return {"skipped": said[-1]}
    return parse_core_size(text)


def parse_core_size(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    section = ""
    for line in text.splitlines():
        m = re.match(r"^--- (\S+)", line)
        if m:
            section = m[1]
        m = re.match(r"^\s*(\d+)\s+(\d+)\s+\d+\s+\d+\s+\w+\s+tinyfix_head\.o$", line)
        if m and section.startswith("cortex-m4f-head"):
            out["head_code_bytes"] = int(m[1]) + int(m[2])
        m = re.match(r"^cortex-m4f-head(\d+) core total: flash (\d+) B", line)
        if m:
            out["head_features"], out["head_core_flash_bytes"] = int(m[1]), int(m[2])
        m = re.match(r"^cortex-m4f-head\d+ struct tinyfix_ctx .*: (\d+) B", line)
        if m:
            out["head_ctx_bytes"] = int(m[1])
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
    out["head_size"] = head_size(bench)
    out["cortex_m4f_size"] = core_size(bench.int8.info.n_features or None)
    out["thumb2_instructions"] = cortexm(bench.size.cortexm_frames)
    out["targets"] = [t.as_dict() for t in targets(out)]
    return out


def targets(cost: dict[str, Any]) -> list[Target]:
    """The head stage against the model's own last layer: instructions and flash."""
    out = []
    ins = cost.get("instructions", {})
    head, own = ins.get("head_stage", {}), ins.get("model_last_layer", {})
    if "instructions_per_call" in head and "instructions_per_call" in own:
        h, o = head["instructions_per_call"], own["instructions_per_call"]
        out.append(Target("head stage instructions", "≤ the model's own last layer in TFLM",
                          h <= o, f"{h:,.0f} vs {o:,.0f} instructions per call "
                          f"({h / o:.2f}×; callgrind, x86-64)"))
    size = cost.get("head_size", {})
    if "head_flash_bytes" in size:
        h, o = size["head_flash_bytes"], size["own_weights_and_bias_bytes"]
        out.append(Target(
            "head stage flash", "≤ the model's own last layer (int8 weights + int32 biases)",
            h <= o, f"{h} B vs {o} B ({h / o:.2f}×): {size['form']}; per row the head also "
            f"stores an int32 multiplier and shift ({8 * size['classes']} B), which TFLM "
            f"derives at init into arena RAM from the float scales its .tflite stores (the "
            f"layer there takes {size['own_total_bytes']} B with its "
            f"{size['own_quantization_bytes']} B of quantization parameters)"))
    return out


def markdown(cost: dict[str, Any]) -> str:
    lines = ["### Cost of the correction", "",
             "Instructions: callgrind on the host (x86-64), one method for every figure: "
             "collection only inside the named function, collected instructions over "
             "recorded calls, on field test windows (their raw outputs and feature vectors "
             "for the core). The model's own last layer: TFLM's FULLY_CONNECTED kernel in a "
             "one-op .tflite made of the model's final layer (its own tensors, outputs "
             "bit-exact with the whole model's). Sizes: `scripts/bench-core-size` "
             "(arm-none-eabi-gcc -Os, Kconfig defaults; the head variant at the demo model's "
             "feature count). Thumb-2: `scripts/bench_cortexm.py` (unicorn emulator).", "",
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
            scenario = name.replace("_head", " + head")
            lines.append(f"| `tinyfix_process`, scenario {scenario} set "
                         f"({', '.join(c['stages']) or 'identity'}), x86-64 | "
                         f"{c['instructions_per_call']:,.0f} instructions "
                         f"(**{100 * share:.2f}%** of one Invoke) | callgrind "
                         f"`--toggle-collect={c['pattern']}`, {c['calls']} calls, cffi build "
                         "-O2 |")
        lines += _head_lines(cost, tflm["instructions_per_call"])
    head_size = cost.get("head_size", {})
    if "head_flash_bytes" in head_size:
        hs = head_size
        lines += [
            f"| head parameters in the set (flash) | {hs['head_flash_bytes']} B | "
            f"{hs['form']}; the encoded set grows by {hs['encoded_set_growth_bytes']} B |",
            f"| the model's own last layer in the .tflite (flash) | "
            f"{hs['own_weights_and_bias_bytes']} B weights + biases "
            f"({hs['own_total_bytes']} B with {hs['own_quantization_bytes']} B of quantization "
            f"parameters) | int8 weights {hs['own_weights_bytes']} B, int32 biases "
            f"{hs['own_bias_bytes']} B, float32 scales and int64 zero points |",
        ]
    elif "skipped" in head_size:
        skipped.append(f"head sizes skipped: {head_size['skipped']}")
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
        if "head_core_flash_bytes" in size:
            f = size["head_features"]
            lines += [
                f"| core flash with the head stage, Cortex-M4F | "
                f"{size['head_core_flash_bytes']:,} B "
                f"(+{size['head_core_flash_bytes'] - size['core_flash_bytes']:,} B; "
                f"`tinyfix_head.o` {size.get('head_code_bytes', 0)} B) | "
                f"`CONFIG_TINYFIX_MAX_FEATURES={f}` (the demo model's features), head "
                "adaptation included |",
                f"| `struct tinyfix_ctx` with the head stage | {size['head_ctx_bytes']:,} B "
                f"(+{size['head_ctx_bytes'] - size.get('ctx_bytes', 0):,} B) | "
                f"`MAX_FEATURES={f}`, `MAX_CLASSES=16`: the applied set's head, adapted "
                "weights (int16 each) and the last feature vector |",
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
    if "form" in head_size:
        lines.append(f"- The kept head is {head_size['form']} ({head_size['head_flash_bytes']} "
                     "B in the parameter set).")
    lines += [f"- {Target(**t).line()}" for t in cost.get("targets", [])]
    return "\n".join(lines).rstrip() + "\n"


def _head_lines(cost: dict[str, Any], invoke: float) -> list[str]:
    ins = cost["instructions"]
    head, own = ins.get("head_stage", {}), ins.get("model_last_layer", {})
    lines = []
    if "instructions_per_call" in own:
        o = own["instructions_per_call"]
        lines.append(f"| the model's own last layer in TFLM (`FULLY_CONNECTED` kernel, final "
                     f"layer), x86-64 | {o:,.0f} instructions ({100 * o / invoke:.2f}% of one "
                     f"Invoke) | callgrind `--toggle-collect='{own['pattern']}'`, "
                     f"{own['calls']} calls, one-op .tflite of the model's final "
                     "FULLY_CONNECTED (same tensors) |")
    if "instructions_per_call" in head:
        h = head["instructions_per_call"]
        versus = (f", **{h / own['instructions_per_call']:.2f}×** the model's own last layer"
                  if "instructions_per_call" in own else "")
        lines.append(f"| head stage alone (`tinyfix_head_run`), scenario classification + "
                     f"head set, x86-64 | {h:,.0f} instructions (**{100 * h / invoke:.2f}%** "
                     f"of one Invoke{versus}) | callgrind, inclusive cost of the "
                     f"{head['calls']} calls `tinyfix_process` made to `{head['pattern']}` in "
                     "the run above |")
    return lines
