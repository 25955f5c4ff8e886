#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Generate the firmware's built-in replay windows and what the host twin expects of them.

The windows come from scripts/demo_data/gesture_data.py (one per class from the lab split,
one per class from the drifted field device), as Q16.16 sensor samples, the unit the
firmware's sensor path produces. For each window the file also carries what the host
computes through the same code the device runs:

- the int8 model input, from tinyfix_input_correct() of the C core built for the host
  (input stage off, so this is the core's quantization alone);
- the raw int8 outputs and the penultimate features, from the real TFLM kernels of the
  `tflite-micro` package;
- top class, its Q15 confidence and the decision, from tinyfix_process() of the C core with
  the identity parameter set (what a build without a tinyfix overlay applies).

The firmware compares its own numbers with these and prints the match status, so a twister
run shows whether the device is bit-exact to the host twin.

    .venv/bin/python scripts/gen_replay_windows.py            # rewrite app/src/replay_windows.*
    .venv/bin/python scripts/gen_replay_windows.py --check    # exit 1 if they are stale
"""

from __future__ import annotations

import argparse
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "demo_data"))
sys.path.insert(0, str(ROOT / "host" / "src"))

import check_model  # noqa: E402
import gesture_data as gd  # noqa: E402

MODEL = ROOT / "models" / "gesture" / "gesture_int8.tflite"
OUT_DIR = ROOT / "app" / "src"
# Seeds of the replay windows: new ones, so that no window is in the model's training data.
SEED_LAB = 5001
SEED_FIELD = 5002
Q16 = 65536


def to_q16(x: np.ndarray) -> np.ndarray:
    """m/s^2 to Q16.16, rounded half away from zero, as tinyfix.core.q16()."""
    x = np.asarray(x, np.float64)
    return (np.sign(x) * np.floor(np.abs(x) * Q16 + 0.5)).astype(np.int32)


def windows() -> list[tuple[str, int, np.ndarray]]:
    """(name, label, float (64, 3) window) for one window per class and split."""
    balanced = {name: 1.0 for name in gd.CLASS_NAMES}
    out = []
    for split, seed in (("lab", SEED_LAB), ("field", SEED_FIELD)):
        data = gd.generate_classification(split, len(gd.CLASS_NAMES), seed, class_mix=balanced)
        for i in np.argsort(data["y"], kind="stable"):
            label = int(data["y"][i])
            out.append((f"{split}/{gd.CLASS_NAMES[label]}", label, data["x"][i]))
    return out


def expected(model: bytes, wins: list[tuple[str, int, np.ndarray]]) -> dict[str, object]:
    from tflite_micro.python.tflite_micro import runtime as rt

    from tinyfix.core import Core, Corrector, ModelInfo, Params

    info = check_model.describe(model)
    inp, out, pen = info["inputs"][0], info["outputs"][0], info["penultimate"]
    if pen is None:
        raise SystemExit("gen_replay_windows: the model does not end in FULLY_CONNECTED")
    n_classes = int(np.prod(out["shape"]))
    n_features = int(np.prod(pen["shape"]))
    model_info = ModelInfo(
        model_crc=zlib.crc32(model) & 0xFFFFFFFF,
        n_classes=n_classes,
        output_type="int8",
        output_scale=out["scale"],
        output_zero_point=out["zero_point"],
        n_channels=int(inp["shape"][-1]),
        input_scale=inp["scale"],
        input_zero_point=inp["zero_point"],
        n_features=n_features,
        feature_zero_point=pen["zero_point"],
    )
    core = Core("fixed")
    # One context per window: the firmware quantizes each window afresh too (the input
    # stage is off, so no statistics carry over).
    interp = rt.Interpreter.from_bytes(
        model, arena_size=64 * 1024, intrepreter_config=rt.InterpreterConfig.kPreserveAllTensors
    )
    fix = Corrector(core, model_info, Params.identity(core, model_info))
    rows = []
    for _, _, x in wins:
        samples = to_q16(x)
        xq = Corrector(core, model_info).input_correct(samples)
        interp.set_input(xq.reshape(inp["shape"]), 0)
        interp.invoke()
        raw = np.asarray(interp.get_output(0)).reshape(-1).astype(np.int8)
        feat = np.asarray(interp.GetTensor(pen["index"], 0)["tensor_data"]).reshape(-1)
        res = fix.process(raw)
        rows.append({
            "samples": samples.reshape(-1),
            "input": xq.reshape(-1),
            "raw": raw,
            "features": feat.astype(np.int8),
            "top_class": res.top_class,
            "top_prob": res.top_prob,
            "decision": res.decision,
        })
    return {"info": model_info, "rows": rows, "n_features": n_features}


def _c_array(values: np.ndarray, per_line: int, indent: str) -> str:
    vals = [str(int(v)) for v in values]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    return (",\n" + indent).join(lines)


def render(model: bytes, wins: list[tuple[str, int, np.ndarray]],
           exp: dict[str, object]) -> tuple[str, str]:
    info = exp["info"]
    rows = exp["rows"]
    n = len(wins)
    frames, channels = gd.WINDOW_SAMPLES, 3
    header = f"""/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Generated by scripts/gen_replay_windows.py. Do not edit: rerun the script after the model
 * or the data generator changes (the firmware reports stale expectations by model CRC).
 */

#ifndef REPLAY_WINDOWS_H_
#define REPLAY_WINDOWS_H_

#include <stdint.h>

/** Model these expectations were computed for: zlib.crc32 of gesture_int8.tflite. */
#define REPLAY_MODEL_CRC32 0x{info.model_crc:08X}u
/** gesture_data.generate_classification() seeds of the lab and field windows. */
#define REPLAY_SEED_LAB {SEED_LAB}
#define REPLAY_SEED_FIELD {SEED_FIELD}

#define REPLAY_N_WINDOWS {n}
#define REPLAY_WINDOW_FRAMES {frames}
#define REPLAY_CHANNELS {channels}
#define REPLAY_N_CLASSES {info.n_classes}
#define REPLAY_N_FEATURES {exp["n_features"]}

/** One window and what the host twin computes for it. */
struct replay_window {{
	/** "lab/<class>" or "field/<class>". */
	const char *name;
	/** True class. */
	int16_t label;
	/** Sensor samples, Q16.16 m/s^2, [frame][x, y, z]. */
	int32_t samples[REPLAY_WINDOW_FRAMES * REPLAY_CHANNELS];
	/** The int8 model input the C core's quantization makes of them. */
	int8_t input[REPLAY_WINDOW_FRAMES * REPLAY_CHANNELS];
	/** Raw int8 outputs of TFLM (tflite-micro package). */
	int8_t raw[REPLAY_N_CLASSES];
	/** Penultimate int8 features (input of the last FULLY_CONNECTED). */
	int8_t features[REPLAY_N_FEATURES];
	/** tinyfix_process() with identity parameters: top class, its Q15 confidence, decision. */
	int16_t top_class;
	uint16_t top_prob;
	int16_t decision;
}};

extern const struct replay_window replay_windows[REPLAY_N_WINDOWS];

#endif /* REPLAY_WINDOWS_H_ */
"""
    body = []
    ind = "\t\t\t"
    for (name, label, _), row in zip(wins, rows, strict=True):
        body.append(f"""\t{{
\t\t.name = "{name}",
\t\t.label = {label},
\t\t.samples = {{
{ind}{_c_array(row["samples"], 6, ind)},
\t\t}},
\t\t.input = {{
{ind}{_c_array(row["input"], 12, ind)},
\t\t}},
\t\t.raw = {{{_c_array(row["raw"], 12, "")}}},
\t\t.features = {{
{ind}{_c_array(row["features"], 12, ind)},
\t\t}},
\t\t.top_class = {row["top_class"]},
\t\t.top_prob = {row["top_prob"]},
\t\t.decision = {row["decision"]},
\t}},""")
    source = f"""/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Generated by scripts/gen_replay_windows.py from models/gesture/gesture_int8.tflite
 * (CRC32 0x{info.model_crc:08X}) and scripts/demo_data/gesture_data.py, seeds lab {SEED_LAB},
 * field {SEED_FIELD} (field device seed {gd.SEEDS["field_device"]}). Expected outputs: tflite-micro
 * (TFLM reference kernels) and the tinyfix C core built for the host. Do not edit.
 */

#include "replay_windows.h"

const struct replay_window replay_windows[REPLAY_N_WINDOWS] = {{
{chr(10).join(body)}
}};
"""
    return header, source


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR,
                        help="where replay_windows.c/.h go (default: %(default)s)")
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the files differ from what would be written")
    args = parser.parse_args(argv)
    model = MODEL.read_bytes()
    wins = windows()
    header, source = render(model, wins, expected(model, wins))
    targets = {args.out_dir / "replay_windows.h": header,
               args.out_dir / "replay_windows.c": source}
    if args.check:
        stale = [p for p, text in targets.items() if not p.is_file() or p.read_text() != text]
        for p in stale:
            print(f"gen_replay_windows: {p} is stale; rerun scripts/gen_replay_windows.py")
        return 1 if stale else 0
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
