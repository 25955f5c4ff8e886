# SPDX-License-Identifier: Apache-2.0
"""Check the int8 demo model through the real TFLM kernels (the `tflite-micro` package).

Reports the graph (ops, input/output quantization, the penultimate feature tensor that
feeds the final FULLY_CONNECTED), the smallest tensor arena TFLM accepts, and accuracy
on the lab and field test splits. Needs numpy and tflite-micro, not TensorFlow.

    python scripts/demo_data/check_model.py models/gesture/gesture_int8.tflite
"""

from __future__ import annotations

import argparse
import json
import string
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gesture_data as gd

ARENA_BUDGET_BYTES = 24 * 1024
MODEL_BUDGET_BYTES = 32 * 1024
# Headroom over the measured minimum: TFLM's bookkeeping differs between this 64-bit
# host and a 32-bit MCU, and optimized kernels (CMSIS-NN) ask for scratch buffers.
ARENA_HEADROOM_BYTES = 2048


def _runtime() -> ModuleType:
    from tflite_micro.python.tflite_micro import runtime

    return runtime


def _schema() -> ModuleType:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated

    return schema_py_generated


def _enum_names(cls: type) -> dict[int, str]:
    return {
        v: k
        for k, v in vars(cls).items()
        if not k.startswith("_") and isinstance(v, int)
    }


def _tensor_info(
    tensors: list[Any], index: int, types: dict[int, str]
) -> dict[str, Any]:
    t = tensors[index]
    q = t.quantization
    scale = [
        float(s) for s in (q.scale if q is not None and q.scale is not None else [])
    ]
    zp = [
        int(z)
        for z in (q.zeroPoint if q is not None and q.zeroPoint is not None else [])
    ]
    name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
    return {
        "index": index,
        "name": name,
        "shape": [int(d) for d in t.shape],
        "type": types[t.type],
        "scale": scale[0] if len(scale) == 1 else scale,
        "zero_point": zp[0] if len(zp) == 1 else zp,
    }


def describe(model: bytes) -> dict[str, Any]:
    """Ops, inputs, outputs and the penultimate feature tensor of a .tflite graph.

    The penultimate tensor is the int8 input of the last FULLY_CONNECTED when the graph
    ends with it (optionally followed by SOFTMAX); otherwise "penultimate" is None.
    """
    fb = _schema()
    obj = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(model, 0))
    ops_names = _enum_names(fb.BuiltinOperator)
    types = _enum_names(fb.TensorType)
    sub = obj.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in obj.operatorCodes]
    ops = [ops_names[codes[op.opcodeIndex]] for op in sub.operators]
    penultimate = None
    fc_at = len(ops) - 1
    if ops and ops[-1] == "SOFTMAX":
        fc_at -= 1
    if fc_at >= 0 and ops[fc_at] == "FULLY_CONNECTED":
        fc = sub.operators[fc_at]
        penultimate = _tensor_info(sub.tensors, int(fc.inputs[0]), types)
        weights = _tensor_info(sub.tensors, int(fc.inputs[1]), types)
        penultimate["feeds"] = {"op_index": fc_at, "weights_shape": weights["shape"]}
    return {
        "ops": ops,
        "inputs": [_tensor_info(sub.tensors, int(i), types) for i in sub.inputs],
        "outputs": [_tensor_info(sub.tensors, int(i), types) for i in sub.outputs],
        "penultimate": penultimate,
    }


_PROBE = """
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime as rt
path, arena, preserve = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
config = rt.InterpreterConfig.kPreserveAllTensors if preserve else (
    rt.InterpreterConfig.kAllocationRecording)
try:
    interp = rt.Interpreter.from_file(path, arena_size=arena, intrepreter_config=config)
    d = interp.get_input_details(0)
    interp.set_input(np.zeros(d["shape"], d["dtype"]), 0)
    interp.invoke()
except (RuntimeError, ValueError):
    sys.exit(1)
"""


def _fits(model_path: Path, arena: int, preserve: bool) -> bool:
    """Whether TFLM allocates and invokes the model in `arena` bytes.

    Each probe runs in its own process: a failed allocation in preserve-all-tensors
    mode can crash the tflite-micro extension instead of raising.
    """
    cmd = [
        sys.executable,
        "-c",
        _PROBE,
        str(model_path),
        str(arena),
        str(int(preserve)),
    ]
    done = subprocess.run(cmd, capture_output=True, check=False, timeout=120)
    return done.returncode == 0


def min_arena(model_path: Path, preserve: bool = False, hi: int = 64 * 1024) -> int:
    """Smallest arena (16-byte steps) in which TFLM allocates and invokes the model."""
    lo = 0
    if not _fits(model_path, hi, preserve):
        raise RuntimeError(f"model does not run in a {hi}-byte arena")
    while hi - lo > 16:
        mid = (lo + hi) // 2 // 16 * 16
        if _fits(model_path, mid, preserve):
            hi = mid
        else:
            lo = mid
    return hi


def quantize(
    x: NDArray[np.floating], scale: float, zero_point: int
) -> NDArray[np.int8]:
    q = np.round(np.asarray(x, np.float64) / scale) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def run_tflm(
    model: bytes, x: NDArray[np.floating], features: bool = True
) -> tuple[NDArray[np.int8], NDArray[np.int8] | None]:
    """TFLM's raw int8 outputs (N, C) and, if asked, penultimate features (N, F)."""
    rt = _runtime()
    info = describe(model)
    config = (
        rt.InterpreterConfig.kPreserveAllTensors
        if features
        else rt.InterpreterConfig.kAllocationRecording
    )
    interp = rt.Interpreter.from_bytes(
        model, arena_size=64 * 1024, intrepreter_config=config
    )
    inp = info["inputs"][0]
    xq = quantize(x, inp["scale"], inp["zero_point"])
    pen = info["penultimate"]
    outs = np.empty((len(x), int(np.prod(info["outputs"][0]["shape"]))), np.int8)
    feats = (
        np.empty((len(x), int(np.prod(pen["shape"]))), np.int8)
        if features and pen
        else None
    )
    for i, row in enumerate(xq):
        interp.set_input(row.reshape(inp["shape"]), 0)
        interp.invoke()
        outs[i] = np.asarray(interp.get_output(0)).reshape(-1)
        if feats is not None:
            got = interp.GetTensor(pen["index"], 0)
            feats[i] = np.asarray(got["tensor_data"]).reshape(-1)
    return outs, feats


def check(
    model_path: Path, datasets: dict[str, dict[str, NDArray[Any]]]
) -> dict[str, Any]:
    """Everything the model card needs from TFLM: graph, arena, accuracy per split."""
    model = model_path.read_bytes()
    info = describe(model)
    report: dict[str, Any] = {
        "model_bytes": len(model),
        **info,
        "arena_bytes": min_arena(model_path),
        "arena_bytes_preserve_all": min_arena(model_path, preserve=True),
        "accuracy": {},
        "confusion": {},
    }
    report["arena_recommended_bytes"] = report["arena_bytes"] + ARENA_HEADROOM_BYTES
    n_classes = len(gd.CLASS_NAMES)
    for name, data in datasets.items():
        outs, feats = run_tflm(model, data["x"])
        pred = outs.argmax(axis=1)
        y = np.asarray(data["y"])
        report["accuracy"][name] = float(np.mean(pred == y))
        cm = np.zeros((n_classes, n_classes), dtype=int)
        np.add.at(cm, (y, pred), 1)
        report["confusion"][name] = cm.tolist()
        if feats is not None and name == "lab_test":
            report["penultimate_active_fraction"] = float(
                np.mean(feats > report["penultimate"]["zero_point"])
            )
    return report


def _fmt_q(t: dict[str, Any]) -> str:
    return f"scale {t['scale']:.6g}, zero point {t['zero_point']}"


def _confusion_table(cm: list[list[int]]) -> list[str]:
    lines = ["| true \\ predicted | " + " | ".join(gd.CLASS_NAMES) + " |"]
    lines.append("|---" * (len(gd.CLASS_NAMES) + 1) + "|")
    for name, counts in zip(gd.CLASS_NAMES, cm, strict=True):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in counts) + " |")
    return lines


_CARD = string.Template(
    """<!-- SPDX-License-Identifier: Apache-2.0 -->
# Gesture demo model

Generated by `scripts/train_demo_model.py` (TensorFlow $tf_version, tflite-micro for
the TFLM figures); every number below comes from that run. Data:
`scripts/demo_data/gesture_data.py`; seeds and generator settings: `seeds.json`.

## What it does
Classifies a 1.28 s window of a hand-held 3-axis accelerometer.

- Classes, in output order: $classes. `idle` and `unknown` are background
  (never stream events).
- Input: tensor $in_index `$in_name`, shape $in_shape, $in_type: 64 samples at
  50 Hz, axes x, y, z, body-frame specific force in m/s^2 (lying still screen up,
  z reads +9.81). Sensor full scale +/-$fs_g g (+/-$fs_mps2 m/s^2).
  Quantization: $in_q; real = scale * (q - zero point).
- Output: tensor $out_index `$out_name`, shape $out_shape, $out_type logits (no
  softmax). Quantization: $out_q.

## Graph
- Ops in order: $ops.
- Penultimate features (the int8 input of the final FULLY_CONNECTED, which a
  last-layer re-fit reads): tensor $pen_index, shape $pen_shape, $pen_type, $pen_q.
  It is a fused ReLU output, so values are >= the zero point. Name:
  `$pen_name`.
- Final layer: FULLY_CONNECTED, weights $fc_shape int8, int32 bias, logits out.
- $params parameters; int8 flatbuffer $model_bytes bytes (budget $model_budget);
  the float reference is `gesture_float.tflite`.
- CRC32 (zlib) of `gesture_int8.tflite`: $crc (`GESTURE_MODEL_DATA_CRC32` in
  `gesture_model_data.h`).

## Memory
- Smallest tensor arena TFLM accepts: $arena bytes (reference kernels, found by
  bisection on an x86-64 host).
- With every tensor preserved (TFLM's preserve-all-tensors mode, one way to read
  the penultimate features after `Invoke()`): $arena_preserve bytes.
- Recommended arena: $arena_rec bytes, the minimum plus $headroom for 32-bit
  bookkeeping differences and CMSIS-NN scratch buffers. Budget: $arena_budget bytes
  (qemu_cortex_m3 has 64 KB RAM).

## Accuracy
Lab test: $n_lab windows, classes balanced, bench sensors calibrated to within about
$lab_offset m/s^2 offset and $lab_gain gain. Field test: $n_field windows from one
drifted device, `field_profile($device_seed)`:

- offset $f_offset m/s^2 ($f_offset_mg mg);
- tempco $f_tempco mm/s^2 per K, die at $f_temp C (reference $ref_temp C);
- gain $f_gain;
- mounting rotation $f_mount deg about x, y, z;
- noise $f_noise m/s^2 rms (lab $lab_noise), $f_bits-bit readings (lab $lab_bits);
- output data rate $f_rate, sample jitter $f_jitter ms rms;
- class mix $f_mix (lab: balanced).

$table

TFLite's and TFLM's int8 kernels round some intermediate values differently, so a
few windows can differ between the two int8 rows.

TFLM int8, lab test (rows: true class):

$cm_lab

TFLM int8, field test:

$cm_field

## Training
- $n_train lab windows (seed $seed_train), early stopping on $n_val lab validation
  windows (seed $seed_val); label smoothing $smoothing; Keras seed $train_seed.
- $epochs epochs in $train_s s on 2 CPU cores.
- Full-integer post-training quantization (int8 input and output); representative
  set: $n_rep lab training windows (seed $rep_seed).
- Rerun: `python scripts/train_demo_model.py` (needs `tensorflow-cpu` and
  `tflite-micro`). Check without TensorFlow:
  `python scripts/demo_data/check_model.py models/gesture/gesture_int8.tflite`.
"""
)


def model_card(
    report: dict[str, Any],
    acc: dict[str, dict[str, float]],
    training: dict[str, Any],
    crc: int,
) -> str:
    """MODEL_CARD.md text from the TFLM report and the training script's accuracies."""
    inp, out, pen = report["inputs"][0], report["outputs"][0], report["penultimate"]
    field = gd.field_profile(gd.SEEDS["field_device"])
    lab = gd.lab_profile()
    g = gd.GRAVITY_MPS2

    def vec(values: Sequence[float], fmt: str) -> str:
        return ", ".join(format(v, fmt) for v in values)

    rows = [
        ("float (Keras)", "keras_float"),
        ("float .tflite, TFLite interpreter", "tflite_float"),
        ("int8 .tflite, TFLite interpreter", "tflite_int8"),
        ("int8 .tflite, TFLM (tflite-micro)", "tflm_int8"),
    ]
    table = ["| model | lab test | field test | lost |", "|---|---|---|---|"]
    for label, key in rows:
        lab_acc, field_acc = acc["lab_test"][key], acc["field_test"][key]
        lost = 100 * (lab_acc - field_acc)
        table.append(f"| {label} | {lab_acc:.1%} | {field_acc:.1%} | {lost:.1f} pts |")
    sizes = training["sizes"]
    return _CARD.substitute(
        tf_version=training["tensorflow"],
        classes=", ".join(f"{i} `{n}`" for i, n in enumerate(gd.CLASS_NAMES)),
        in_index=inp["index"],
        in_name=inp["name"],
        in_shape=inp["shape"],
        in_type=inp["type"],
        in_q=_fmt_q(inp),
        fs_g=f"{gd.FULL_SCALE_MPS2 / g:.0f}",
        fs_mps2=f"{gd.FULL_SCALE_MPS2:.2f}",
        out_index=out["index"],
        out_name=out["name"],
        out_shape=out["shape"],
        out_type=out["type"],
        out_q=_fmt_q(out),
        ops=", ".join(report["ops"]),
        pen_index=pen["index"],
        pen_shape=pen["shape"],
        pen_type=pen["type"],
        pen_q=_fmt_q(pen),
        pen_name=pen["name"],
        fc_shape=pen["feeds"]["weights_shape"],
        params=training["params"],
        model_bytes=report["model_bytes"],
        model_budget=MODEL_BUDGET_BYTES,
        crc=f"0x{crc:08X}",
        arena=report["arena_bytes"],
        arena_preserve=report["arena_bytes_preserve_all"],
        arena_rec=report["arena_recommended_bytes"],
        headroom=ARENA_HEADROOM_BYTES,
        arena_budget=ARENA_BUDGET_BYTES,
        n_lab=sizes["lab_test"],
        n_field=sizes["field_test"],
        lab_offset=f"{lab.offset_spread_mps2:.2f}",
        lab_gain=f"{lab.gain_spread:.0%}",
        device_seed=gd.SEEDS["field_device"],
        f_offset=vec(field.offset_mps2, "+.2f"),
        f_offset_mg=vec([v / g * 1000 for v in field.offset_mps2], "+.0f"),
        f_tempco=vec([v * 1000 for v in field.tempco_mps2_per_c], "+.1f"),
        f_temp=f"{field.temp_c:.0f} +/- {field.temp_spread_c:.0f}",
        ref_temp=f"{gd.REFERENCE_TEMP_C:.0f}",
        f_gain=vec(field.gain, ".3f"),
        f_mount=vec(field.mount_deg, "+.1f"),
        f_noise=field.noise_mps2,
        lab_noise=lab.noise_mps2,
        f_bits=field.resolution_bits,
        lab_bits=lab.resolution_bits,
        f_rate=f"{field.rate_error:+.1%}",
        f_jitter=field.jitter_ms,
        f_mix=", ".join(f"{k} {v:.0%}" for k, v in gd.FIELD_CLASS_MIX.items()),
        table="\n".join(table),
        cm_lab="\n".join(_confusion_table(report["confusion"]["lab_test"])),
        cm_field="\n".join(_confusion_table(report["confusion"]["field_test"])),
        n_train=sizes["lab_train"],
        seed_train=gd.SEEDS["lab_train"],
        n_val=sizes["lab_val"],
        seed_val=gd.SEEDS["lab_val"],
        smoothing=training["label_smoothing"],
        train_seed=training["train_seed"],
        epochs=training["epochs_run"],
        train_s=training["train_seconds"],
        n_rep=training["representative_n"],
        rep_seed=training["representative_seed"],
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="int8 .tflite")
    parser.add_argument(
        "--n",
        type=int,
        default=1800,
        help="windows per test split (default: %(default)s)",
    )
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    datasets = {
        "lab_test": gd.generate_classification("lab", args.n, gd.SEEDS["lab_test"]),
        "field_test": gd.generate_classification(
            "field", args.n, gd.SEEDS["field_test"]
        ),
    }
    try:
        report = check(args.model, datasets)
    except (OSError, RuntimeError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    ok = (
        report["model_bytes"] <= MODEL_BUDGET_BYTES
        and report["arena_recommended_bytes"] <= ARENA_BUDGET_BYTES
        and report["penultimate"] is not None
    )
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
