# SPDX-License-Identifier: Apache-2.0
"""Every model shape a user may bring, end to end: the zoo's generated models (large inputs,
large last layers, 1x1-conv heads, binary, float I/O, 16x8, 64 classes, an autoencoder) go
through `tinyfix calibrate --port sim --push` (the simulated device's TFLM kernels over the
wire, in chunks where a frame is too small), and the device must then decide exactly as the
host's report predicted, sample for sample. The hybrid model is refused with its one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinyfix import cli
from tinyfix.core import Core
from tinyfix.zoo import build
from tinyfix.zoo.runner import TflmModel

# name -> (calibration windows, evaluation windows); small, so CI stays fast.
TOPOLOGIES = {
    "fc_small": (240, 120),
    "fc_softmax": (240, 120),
    "ds_cnn": (300, 120),
    "kws_wide": (240, 100),
    "resnet8": (240, 100),
    "person_detect": (200, 80),
    "wakeword_stream": (240, 100),
    "cnn_256": (300, 120),
    "classes_64": (400, 120),
    "binary_logit": (240, 120),
    "binary_sigmoid": (240, 120),
    "float_io": (240, 120),
    "int16x8": (240, 120),
    "autoencoder": (300, 200),
    "stateful": (240, 120),
}


@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("zoo")


def _files(folder: Path, name: str) -> tuple[Path, Path, Path]:
    zm = build(name, seed=0)
    zm.save(folder)
    model = folder / f"{name}_int8.tflite"
    n_cal, n_eval = TOPOLOGIES[name]
    cal, ev = folder / f"{name}_cal.npz", folder / f"{name}_eval.npz"
    zm.save_dataset(cal, n=n_cal, seed=1, drift="field")
    zm.save_dataset(ev, n=n_eval, seed=2, drift="field")
    return model, cal, ev


@pytest.mark.parametrize("name", list(TOPOLOGIES))
def test_calibrate_runs_end_to_end_and_the_device_decides_as_the_report(zoo_dir, name,
                                                                         capsys):
    model, cal, ev = _files(zoo_dir, name)
    out = zoo_dir / f"out_{name}"
    # --push sends the set (in chunks when large) and checks every evaluation decision of
    # the simulated device against the host's prediction: it fails on any difference.
    assert cli.main(["calibrate", "--port", "sim", "--model", str(model), "--data", str(cal),
                     "--eval", str(ev), "--out", str(out), "--push"]) == 0
    said = capsys.readouterr().out
    assert "differ from the host's in 0" in said
    report = json.loads((out / "report.json").read_text())
    for figure in report["after"].values():
        assert figure is None or np.isfinite(figure)
    if name == "autoencoder":
        assert report["task"] == "autoencoder" and "roc_auc" in report["after"]
        assert report["after"]["roc_auc"] > 0.9  # the score separates anomalies
        return
    # Stages are kept only when they help on held-out data: never worse than one sample.
    n_eval = TOPOLOGIES[name][1]
    assert report["after"]["accuracy"] >= report["before"]["accuracy"] - 1.5 / n_eval
    head = next(s for s in report["stages"] if s["stage"] == "head")
    if name == "int16x8":
        assert "int8 layers only" in head["reason"]
    elif name == "kws_wide":
        # A 4000 x 4 layer (16 KB): any head tried stays within the default budget.
        assert "whole layer" not in head["reason"].split(";")[-1] or not head["kept"]
        assert "within a budget of 4004 B" in head["reason"]


def test_fit_runs_on_recorded_inputs_through_the_simulated_device(zoo_dir):
    model, cal, ev = _files(zoo_dir, "person_detect")
    out = zoo_dir / "fit_person"
    assert cli.main(["fit", "--model", str(model), "--data", str(cal), "--eval", str(ev),
                     "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "classification"
    assert (out / "tinyfix.overlay").is_file() and (out / "tinyfix.conf").is_file()


def test_the_simulated_devices_raw_outputs_are_tflms_own(zoo_dir):
    """What the fit sees through the wire is what TFLM computes for the model directly."""
    from tinyfix.capture import quantize_inputs
    from tinyfix.twin import ModelGraph, TflmRunner

    core = Core()
    for name in ("person_detect", "binary_sigmoid", "float_io"):
        zm = build(name, seed=0)
        graph = ModelGraph.from_bytes(zm.tflite, name)
        x, _ = zm.dataset(n=8, seed=5, drift="lab")
        q = quantize_inputs(core, graph.model_info(core), x)
        raw, _ = TflmRunner(graph).run(q)
        direct = TflmModel(zm.tflite).run_raw(q)  # another interpreter, no wire, no twin
        if graph.dequantized:  # the float output is the int8 one, dequantized exactly
            step, zp = graph.output.scale, graph.output.zero_point
            expected = ((raw.astype(np.float32) - zp) * np.float32(step)).astype(np.float32)
            assert np.array_equal(direct.reshape(expected.shape), expected)
        else:
            assert np.array_equal(direct.reshape(raw.shape), raw)


def test_a_dynamic_range_model_is_refused_with_what_to_do(zoo_dir, capsys):
    hybrid = zoo_dir / "hybrid_int8.tflite"
    hybrid.write_bytes(build("hybrid", seed=0).tflite)
    _, cal, _ = _files(zoo_dir, "fc_small")
    assert cli.main(["fit", "--model", str(hybrid), "--data", str(cal), "--out",
                     str(zoo_dir / "hybrid_out")]) != 0
    err = capsys.readouterr().err
    assert "dynamic-range" in err and "representative_dataset" in err and len(
        err.strip().splitlines()) == 1


def test_a_model_that_keeps_state_is_captured_one_sample_at_a_time(zoo_dir):
    """Each sample of a classification set is its own sequence: captured from a reset state
    (what TFLM gives it alone), not mixed with the sample sent before it."""
    from dataclasses import replace

    from rich.console import Console

    from tinyfix.calibrate import CalibrateJob, fresh_state
    from tinyfix.capture import capture, quantize_inputs, raw_outputs
    from tinyfix.device import open_device
    from tinyfix.errors import TinyfixError
    from tinyfix.wire import Cap

    model, cal, _ = _files(zoo_dir, "stateful")
    zm = build("stateful", seed=0)
    x, y = zm.dataset(n=40, seed=5, drift="field")
    quiet = Console(quiet=True)
    job = CalibrateJob(port="sim", model=model, data=cal, out=zoo_dir / "stateful_capture")
    with open_device("sim", model=model) as device:
        assert fresh_state(job, device, quiet)
        q = quantize_inputs(Core(), device.model, x)
        alone = TflmModel(zm.tflite).run_raw(q).reshape(len(q), -1)
        captured = {}
        for fresh in (True, False):
            store = capture(device, q, y, job.out / f"fresh_{fresh}.tfcap", fresh_state=fresh,
                            console=quiet)
            captured[fresh] = raw_outputs(store, device.model, np.arange(len(q)))
            store.close()
        assert np.array_equal(captured[True], alone)
        # Without the reset every output carries its predecessor: the model is stateful.
        assert np.mean(np.any(captured[False] != alone, axis=1)) > 0.5
        # A device that cannot reset it is refused before any sample is sent.
        no_reset = replace(device, info=replace(device.info,
                                                caps=device.info.caps & ~Cap.MODEL_RESET))
        with pytest.raises(TinyfixError, match="keeps state between invocations"):
            fresh_state(job, no_reset, quiet)
