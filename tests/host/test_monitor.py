# SPDX-License-Identifier: Apache-2.0
"""The drift monitor end to end on the simulated device: a fit on lab data stores its
references; lab windows keep the device quiet, drifted field windows make it advise."""

from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from tinyfix import cli, params_io
from tinyfix.core import Core
from tinyfix.demo_data import gesture_data as gd
from tinyfix.device import open_device
from tinyfix.monitor import watch


@pytest.fixture(scope="module")
def lab_fit(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lab")
    for name, seed in (("cal", gd.SEEDS["lab_val"]), ("eval", gd.SEEDS["lab_test"])):
        np.savez(root / f"{name}.npz", **gd.generate_classification("lab", n=240, seed=seed))
    code = cli.main(["calibrate", "--port", "sim", "--sim-sensor", "lab", "--data",
                     str(root / "cal.npz"), "--eval", str(root / "eval.npz"), "--out",
                     str(root / "out")])
    assert code == 0
    return root / "out" / "params.yaml"


@pytest.mark.parametrize(("drive", "advised"), [("lab", False), ("field", True)])
def test_drifted_inputs_make_the_device_advise_recalibration(lab_fit, drive, advised):
    with open_device("sim") as device:
        params = params_io.read_params_yaml(lab_fit, Core(), device.model)
        assert params.c.flags & 0x80  # the fit switched the monitor on
        stats = watch(device, Console(quiet=True), params=params, drive=drive, interval=0,
                      count=12, per_poll=32)
    assert stats.monitor_frames == 12 * 32
    assert bool(stats.drift_flags & 0x01) == advised, stats
