# SPDX-License-Identifier: Apache-2.0
"""The upper-bound rows: the demo's float model fine-tuned on the field calibration windows
and re-quantized, i.e. what retraining would buy with the data TinyFix fits on.

TensorFlow is not a TinyFix dependency, so the training runs in a subprocess
(retrain_tf.py) under the first Python that has it: this interpreter, $TINYFIX_TF_PYTHON,
or the optional venv /work/tfvenv that scripts/train_demo_model.py is run with. Without one
the rows are skipped with a printed reason. The retrained int8 model is then run by the same
TFLM kernels as every other row.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tinyfix.bench.context import FLOAT_MODEL, Bench, Model
from tinyfix.datasets import stratified_split
from tinyfix.errors import TinyfixError
from tinyfix.fit import FitOptions
from tinyfix.twin.model import ModelGraph, schema

TF_VENV_PYTHON = Path("/work/tfvenv/bin/python")
TF_PYTHON_ENV = "TINYFIX_TF_PYTHON"
SCRIPT = Path(__file__).with_name("retrain_tf.py")
TIMEOUT_S = 1800
# The rebuilt Keras model must reproduce the float .tflite's logits to this (float32
# rounding only), else it is not the same model and the row would mean nothing.
REBUILD_TOLERANCE = 1e-3
LAYOUT = ("RESHAPE", "CONV_2D", "CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED",
          "FULLY_CONNECTED")
_HAS_TF = "import importlib.util, sys; sys.exit(importlib.util.find_spec('tensorflow') is None)"


def tf_python() -> tuple[str | None, str]:
    """(interpreter with TensorFlow, or None; where it came from or why there is none)."""
    if importlib.util.find_spec("tensorflow") is not None:
        return sys.executable, "this interpreter"
    env = os.environ.get(TF_PYTHON_ENV)
    tried = []
    for candidate in ([Path(env)] if env else []) + [TF_VENV_PYTHON]:
        tried.append(str(candidate))
        if candidate.is_file() and subprocess.run([str(candidate), "-c", _HAS_TF],
                                                  check=False).returncode == 0:
            return str(candidate), str(candidate)
    return None, (f"TensorFlow is not importable here, nor in {', '.join(tried)} (set "
                  f"{TF_PYTHON_ENV} to a Python that has tensorflow)")


def float_layers(path: Path) -> dict[str, np.ndarray]:
    """The weights of the demo's float .tflite, by layer, as retrain_tf.py wants them."""
    fb = schema()
    data = path.read_bytes()
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    sub = model.subgraphs[0]
    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    ops = []
    for op in sub.operators:
        code = model.operatorCodes[op.opcodeIndex]
        ops.append((names.get(max(code.builtinCode, code.deprecatedBuiltinCode)), op))
    if tuple(name for name, _ in ops) != LAYOUT:
        raise TinyfixError(f"{path.name} is not the demo architecture ({LAYOUT}); cannot "
                           "rebuild it for fine-tuning")

    def const(index: int) -> np.ndarray:
        t = sub.tensors[index]
        raw = model.buffers[t.buffer].data
        if raw is None or t.type != fb.TensorType.FLOAT32:
            raise TinyfixError(f"{path.name}: tensor {index} is not a float32 constant")
        return np.frombuffer(np.asarray(raw, dtype=np.uint8).tobytes(),
                             dtype=np.float32).reshape([int(d) for d in t.shape])

    out: dict[str, np.ndarray] = {}
    layers = [op for name, op in ops if name in ("CONV_2D", "FULLY_CONNECTED")]
    for key, op in zip(("conv1", "conv2", "fc1", "fc2"), layers, strict=True):
        out[f"{key}_w"] = const(int(op.inputs[1]))
        out[f"{key}_b"] = const(int(op.inputs[2]))
    return out


def retrain(bench: Bench, out_dir: Path | None = None) -> None:
    """Fill bench.retrained (or bench.retrained_skip with the reason)."""
    python, where = tf_python()
    if python is None:
        bench.retrained, bench.retrained_skip = None, where
        return
    try:
        bench.retrained, bench.retrained_log = _retrain(bench, python, out_dir)
        bench.retrained_log["python"] = where
    except TinyfixError as err:
        bench.retrained, bench.retrained_skip = None, str(err)


def _retrain(bench: Bench, python: str, out_dir: Path | None) -> tuple[Model, dict[str, Any]]:
    cal = bench.windows("field_calib")
    options = FitOptions()
    # The split fit_classification makes: both sides learn from the same windows and hold
    # out the same ones.
    fit_idx, held_idx = stratified_split(cal.y, options.heldout_fraction, options.seed)
    with tempfile.TemporaryDirectory(prefix="tinyfix-retrain-") as tmp:
        work = out_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        np.savez(work / "in.npz", **float_layers(FLOAT_MODEL), x_fit=cal.x[fit_idx],
                 y_fit=cal.y[fit_idx], x_val=cal.x[held_idx], y_val=cal.y[held_idx],
                 x_rep=cal.x)
        cmd = [python, str(SCRIPT), str(work / "in.npz"), str(work),
               "--epochs", str(bench.size.retrain_epochs)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1"}
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S,
                                  env=env, check=False)
        except subprocess.TimeoutExpired as err:
            raise TinyfixError(f"fine-tuning took longer than {TIMEOUT_S} s") from err
        if done.returncode != 0:
            tail = " ".join(done.stderr.strip().splitlines()[-3:])
            raise TinyfixError(f"fine-tuning failed (exit {done.returncode}): {tail}")
        before = np.load(work / "before.npy")
        original = bench.float32.outputs(bench.core, cal.x[held_idx])
        err = float(np.max(np.abs(before - original)))
        if err > REBUILD_TOLERANCE:
            raise TinyfixError(f"the rebuilt Keras model differs from gesture_float.tflite by "
                               f"{err:.3g} in the logits; not the same model")
        graph = ModelGraph.from_bytes((work / "int8.tflite").read_bytes(), "retrained")
        log = json.loads((work / "log.json").read_text())
    log["rebuild_max_logit_error"] = err
    log["fit_windows"], log["heldout_windows"] = int(fit_idx.size), int(held_idx.size)
    return Model.load("int8 retrained", graph, bench.core), log
