# SPDX-License-Identifier: Apache-2.0
"""`tinyfix calibrate --smp URL`: capture over MCUmgr, fit label-free, push, check.

The device is the twin on its field sensor, serving the firmware's C group over SMP/UDP;
the capture is the windows it classifies on its own, so the fit has raw outputs and no
labels, and the labelled lab windows (--data) calibrate it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinyfix import cli, params_io
from tinyfix.core import Core
from tinyfix.demo_data import gesture_data as gd
from tinyfix.smp.client import open_device
from tinyfix.twin.smp_server import SmpServer
from tinyfix.twin.twin import Twin

OTHER_MODEL = Path(__file__).parents[1] / "app" / "models" / "large_input_int8.tflite"


@pytest.fixture()
def served():
    twin = Twin(sensor="field")
    server = SmpServer(twin)
    server.start()
    yield twin, server
    server.stop()
    assert server.error is None


def test_calibrate_over_smp_fits_the_devices_capture_and_pushes_the_set(served, tmp_path):
    twin, server = served
    np.savez(tmp_path / "lab.npz", **gd.generate_classification("lab", 120, gd.SEEDS["lab_val"]))
    out = tmp_path / "out"
    assert cli.main(["calibrate", "--smp", server.url, "--windows", "60", "--data",
                     str(tmp_path / "lab.npz"), "--push", "--out", str(out)]) == 0
    captured = np.load(out / "capture.npz")
    assert captured["scores"].shape == (60, twin.model_info.n_classes)
    assert int(captured["model_crc"]) == twin.graph.crc
    written = params_io.read_params_yaml(out / "params.yaml", Core())
    with open_device(server.url) as dev:
        assert dev.info()["params_crc"] == written.crc  # the device runs what was fitted
    assert (out / "unlabeled.md").is_file()


def test_calibrate_over_smp_refuses_a_model_the_device_does_not_run(served, tmp_path, capsys):
    _, server = served
    assert cli.main(["calibrate", "--smp", server.url, "--windows", "10", "--model",
                     str(OTHER_MODEL), "--out", str(tmp_path / "out")]) == 1
    assert "give the device's .tflite with --model" in capsys.readouterr().err
    assert not (tmp_path / "out" / "capture.npz").exists()
