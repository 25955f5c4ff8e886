# SPDX-License-Identifier: Apache-2.0
"""The lab command end to end against the simulated device: capture, fit, files, report,
resume after an interruption, refusal of a wrong model, delivery by SET_PARAMS."""

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from tinyfix import cli
from tinyfix.demo_data import gesture_data as gd
from tinyfix.twin import Twin, default_model
from tinyfix.wire import Link, LinkIOError

N_CAL, N_EVAL = 240, 240


@pytest.fixture(scope="module")
def field_data(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("data")
    paths = []
    for name, n, seed in (("cal", N_CAL, gd.SEEDS["field_calib"]),
                          ("eval", N_EVAL, gd.SEEDS["field_test"])):
        d = gd.generate_classification("field", n=n, seed=seed)
        np.savez(root / f"{name}.npz", **d)
        paths.append(root / f"{name}.npz")
    return paths[0], paths[1]


def calibrate(out: Path, data: tuple[Path, Path], *extra: str) -> int:
    return cli.main(["calibrate", "--port", "sim", "--data", str(data[0]), "--eval",
                     str(data[1]), "--out", str(out), *extra])


def test_calibration_improves_the_drifted_device_and_writes_everything(tmp_path, field_data):
    assert calibrate(tmp_path, field_data) == 0
    for name in ("params.yaml", "tinyfix.overlay", "tinyfix.conf", "report.md", "report.json",
                 "predictions.npz", "reliability.png", "confusion.png", "capture.tfcap"):
        assert (tmp_path / name).is_file(), name
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["after"]["accuracy"] > report["before"]["accuracy"] + 0.05
    assert report["after"]["ece"] < report["before"]["ece"]
    assert report["model_crc"] == f"0x{zlib.crc32(default_model().read_bytes()):08x}"
    assert report["stages_kept"]
    pred = np.load(tmp_path / "predictions.npz")
    assert pred["pred"].shape == (N_EVAL,) and pred["confidence"].shape == (N_EVAL,)
    assert 'compatible = "tinyfix,correction"' in (tmp_path / "tinyfix.overlay").read_text()


def test_an_interrupted_capture_resumes_without_losing_or_repeating(tmp_path, field_data,
                                                                    monkeypatch):
    real_infer = Link.infer
    calls = {"n": 0}

    def flaky_infer(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 101:
            raise LinkIOError("cable pulled")
        return real_infer(self, *args, **kwargs)

    monkeypatch.setattr(Link, "infer", flaky_infer)
    assert calibrate(tmp_path, field_data) == 4  # CaptureInterrupted
    size_after_cut = (tmp_path / "capture.tfcap").stat().st_size
    assert size_after_cut > 0
    calls["n"] = 10_000  # no more failures
    monkeypatch.setattr(Link, "infer", lambda self, *a, **k: (
        calls.__setitem__("n", calls["n"] + 1), real_infer(self, *a, **k))[1])
    assert calibrate(tmp_path, field_data) == 0
    # The 100 samples already on disk were not asked for again.
    assert calls["n"] - 10_000 == N_CAL + N_EVAL - 100


def test_a_device_running_another_model_is_refused(tmp_path, field_data, capsys):
    other = tmp_path / "other.tflite"
    other.write_bytes(default_model().read_bytes() + b"\0")
    with Twin() as twin:  # runs the demo model, on a pty like a board's serial port
        code = cli.main(["calibrate", "--port", twin.port, "--model", str(other), "--data",
                         str(field_data[0]), "--out", str(tmp_path)])
    assert code == 3
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "CRC" in err and err.count("\n") == 1


def test_push_delivers_the_set_and_the_device_decides_as_the_host_predicted(tmp_path,
                                                                            field_data, capsys):
    assert calibrate(tmp_path, field_data, "--push") == 0
    out = capsys.readouterr().out
    assert "differ from the host's in 0" in out.replace("\n", " ")


def without_class_names(src: Path, dst: Path, drop_class: int | None = None) -> Path:
    d = dict(np.load(src))
    del d["class_names"]
    if drop_class is not None:
        keep = d["y"] != drop_class
        d = {"x": d["x"][keep], "y": d["y"][keep]}
    np.savez(dst, **d)
    return dst


def test_unnamed_data_without_the_models_last_class_is_fitted_for_every_class(tmp_path,
                                                                             field_data):
    # A field set with no example of a rare class: the labels stop below the model's count.
    data = (without_class_names(field_data[0], tmp_path / "cal.npz", drop_class=5),
            without_class_names(field_data[1], tmp_path / "eval.npz", drop_class=5))
    assert calibrate(tmp_path / "out", data) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["after"]["accuracy"] > report["before"]["accuracy"]
    params = (tmp_path / "out" / "params.yaml").read_text()
    assert "n_classes: 6" in params and "name: '5'" in params


def test_replay_names_decisions_of_classes_the_data_does_not_label(tmp_path, field_data):
    assert calibrate(tmp_path / "out", field_data) == 0
    lab = gd.generate_classification("lab", n=60, seed=3)
    unknown = lab["y"] == 5
    assert unknown.any()
    # Labels stop at 4 (no class_names), yet the model decides class 5 on these inputs.
    y = np.where(unknown, 0, np.minimum(lab["y"], 4))
    np.savez(tmp_path / "replay.npz", x=lab["x"], y=y)
    assert cli.main(["replay", "--params", str(tmp_path / "out" / "params.yaml"), "--model",
                     str(default_model()), "--data", str(tmp_path / "replay.npz"),
                     "--show", "60"]) == 0


def test_names_for_another_class_count_are_refused_before_any_sample_is_sent(tmp_path,
                                                                            field_data, capsys):
    d = dict(np.load(field_data[0]))
    d["class_names"] = d["class_names"][:5]
    keep = d["y"] < 5
    d["x"], d["y"] = d["x"][keep], d["y"][keep]
    np.savez(tmp_path / "five.npz", **d)
    assert calibrate(tmp_path / "out", (tmp_path / "five.npz", field_data[1])) == 1
    err = capsys.readouterr().err
    assert "names 5 classes" in err and "the model has 6" in err
    assert not (tmp_path / "out" / "capture.tfcap").exists()


def test_eval_naming_other_classes_than_the_data_is_refused(tmp_path, field_data, capsys):
    d = dict(np.load(field_data[1]))
    d["class_names"] = d["class_names"][::-1]
    np.savez(tmp_path / "eval.npz", **d)
    assert calibrate(tmp_path / "out", (field_data[0], tmp_path / "eval.npz")) == 1
    assert "--eval names the classes unknown, shake" in capsys.readouterr().err
