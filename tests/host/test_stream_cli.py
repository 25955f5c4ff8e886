# SPDX-License-Identifier: Apache-2.0
"""Streams from the command line: `tinyfix fit` on a recorded stream writes the operating
point with its interval and the DET curves (report.json arrays, det.png), and `tinyfix
replay` lists the detections of the fitted set with the same figures."""

import json
from pathlib import Path

import numpy as np
import pytest

from tinyfix import cli
from tinyfix.demo_data import gesture_data as gd
from tinyfix.twin import default_model


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("stream")
    for name, seconds, seed in (("cal", 900.0, 3003), ("eval", 300.0, 3002)):
        np.savez(root / f"{name}.npz",
                 **gd.whole_ms(gd.generate_stream("field", seconds, seed)))
    out = root / "out"
    assert cli.main(["fit", "--data", str(root / "cal.npz"), "--eval", str(root / "eval.npz"),
                     "--model", str(default_model()), "--out", str(out), "--no-features",
                     "--target-fa-per-hour", "36"]) == 0
    return root, out


def test_the_report_carries_the_operating_point_and_the_det_curves(fitted):
    _, out = fitted
    report = json.loads((out / "report.json").read_text())
    point = report["operating_point"]
    assert point["target_fa_per_hour"] == 36 and point["confidence"] == 0.9
    assert point["low"] <= point["fa_per_hour"] <= point["high"]
    assert point["meets_target"] == (point["chosen"]["high"] <= 36)
    assert point["events"] > 50 and point["blocks"] == 5
    assert set(report["det"]) == {"calibration", "evaluation"}
    for curves in report["det"].values():
        names = list(curves)
        assert names[:2] == ["raw top-1", "RecognizeCommands defaults"]
        assert len(names) == 3 and names[2].startswith("TinyFix (fitted")
        for c in curves.values():
            assert len(c["threshold"]) == len(c["fa_per_hour"]) == len(c["false_reject_rate"])
    fitted_eval = list(report["det"]["evaluation"].values())[2]
    mark = fitted_eval["marked"]
    assert fitted_eval["fa_per_hour"][mark] == pytest.approx(
        report["after"]["false_accepts_per_hour"])
    assert (out / "det.png").stat().st_size > 10_000
    text = (out / "report.md").read_text()
    assert "## Operating point" in text and "## DET curves" in text


def test_replay_lists_the_detections_of_the_fitted_set_on_a_stream(fitted, capsys):
    root, out = fitted
    capsys.readouterr()
    assert cli.main(["replay", "--params", str(out / "params.yaml"), "--model",
                     str(default_model()), "--data", str(root / "eval.npz"),
                     "--show", "500"]) == 0
    text = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert "hit (event" in text and "raw top-1" in text
    assert f"{report['after']['false_accepts_per_hour']:.1f}" in text
    assert f"{report['before']['false_accepts_per_hour']:.1f}" in text
