# SPDX-License-Identifier: Apache-2.0
"""The CI fleet: 20 simulated devices, half labelled, one capture damaged and one manifest
for another model, fitted on a 2-worker LocalCluster. Every good device gets a set the C
core takes for the fleet's model, the two bad ones are reported per device while the rest
go on, labelled drifted devices gain accuracy, the devices the drift harms most are
flagged for recalibration and the least drifted are not, and the report is written. The command line
fits a listed part of the fleet on the same cluster through --scheduler."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from rich.console import Console

from tinyfix import cli, params_io
from tinyfix.core import Core
from tinyfix.fleet import capture_io
from tinyfix.fleet.cluster import dask_client
from tinyfix.fleet.fit import FleetFitJob, fit_fleet
from tinyfix.fleet.simulate import SimulationSpec, simulate_fleet
from tinyfix.twin import ModelGraph

DEVICES = 20
MONITOR = 0x80
DAMAGED, WRONG_MODEL = "sim-05", "sim-11"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fleet")
    simulate_fleet(SimulationSpec(devices=DEVICES, out=str(root), labelled_fraction=0.5,
                                  samples=200, seed=3), Console(quiet=True))
    capture = root / "devices" / f"{DAMAGED}.tfcap"
    data = bytearray(capture.read_bytes())
    data[len(data) // 2] ^= 0x5A  # a record in the middle: damage, not a torn tail
    capture.write_bytes(bytes(data))
    manifest = root / "devices" / f"{WRONG_MODEL}.json"
    m = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**m, "model_crc": "0x0badc0de"}))
    return root


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def outcome(fleet, client, tmp_path_factory):
    out = tmp_path_factory.mktemp("fits")
    return fit_fleet(FleetFitJob(str(fleet), str(out)), Console(quiet=True), client), out


def by_id(results):
    return {r["device_id"]: r for r in results}


def test_bad_devices_are_reported_and_the_rest_fitted(outcome):
    result, _ = outcome
    found = by_id(result.results)
    assert len(found) == DEVICES
    assert found[DAMAGED]["status"] == "invalid" and "damaged" in found[DAMAGED]["error"]
    assert found[WRONG_MODEL]["status"] == "invalid"
    assert "0x0badc0de" in found[WRONG_MODEL]["error"]
    good = [r for r in result.results if r["device_id"] not in (DAMAGED, WRONG_MODEL)]
    assert all(r["status"] == "ok" for r in good), [r["error"] for r in good]
    assert result.summary["fitted"] == DEVICES - 2 and result.summary["invalid"] == 2


def test_every_fitted_device_has_a_set_for_the_fleets_model(outcome, fleet):
    result, out = outcome
    core = Core()
    model = ModelGraph.load(fleet / "model.tflite").model_info(core)
    for r in result.results:
        written = json.loads((out / "devices" / r["device_id"] / "result.json").read_text())
        assert written["status"] == r["status"]
        if r["status"] != "ok":
            assert not (out / "devices" / r["device_id"] / "params.yaml").exists()
            continue
        params = params_io.read_params_yaml(out / r["params"], core, model)
        assert f"0x{params.crc:08x}" == r["params_crc"]
        assert params.c.flags & MONITOR  # the device's drift monitor gets its references
        assert r["push"] == r["labelled"]  # label-free sets are held back from push


def test_labelled_drifted_devices_gain_accuracy(outcome):
    result, _ = outcome
    labelled = [r for r in result.results if r["status"] == "ok" and r["labelled"]]
    assert len(labelled) >= 8
    drifted = [r for r in labelled if r["simulated"]["drift"] > 0.5]
    assert drifted
    for r in drifted:
        assert r["after"]["accuracy"] >= r["before"]["accuracy"], r["device_id"]
        assert r["stages_kept"], r["device_id"]
    gains = [r["after"]["accuracy"] - r["before"]["accuracy"] for r in labelled]
    assert np.mean(gains) > 0.05


def true_accuracy(fleet: Path, result: dict, model) -> float:
    """The model as it is on the device's windows, labelled or not (the simulation keeps
    the unlabeled devices' labels aside; no fit reads them)."""
    cap = capture_io.read_capture(str(fleet / "devices" / f"{result['device_id']}.tfcap"),
                                  model)
    y = cap.labels if result["labelled"] else np.load(
        fleet / "truth" / f"{result['device_id']}.npy")
    return float(np.mean(cap.raw.argmax(axis=1) == y))


def test_the_most_harmed_devices_are_flagged_and_the_least_drifted_are_not(outcome, fleet):
    result, _ = outcome
    model = ModelGraph.load(fleet / "model.tflite").model_info(Core())
    ok = [r for r in result.results if r["status"] == "ok"]
    assert all(r["drift"]["prior_tv"] is not None for r in ok)
    truth = {r["device_id"]: true_accuracy(fleet, r, model) for r in ok}
    worst = sorted(ok, key=lambda r: truth[r["device_id"]])[:5]
    assert sum(r["recalibrate"] for r in worst) >= 4, [(truth[r["device_id"]], r["reasons"])
                                                       for r in worst]
    assert all(r["recalibrate"] for r in ok if truth[r["device_id"]] < 0.8)
    calm = [r for r in ok if r["simulated"]["drift"] < 0.3]
    assert calm and not any(r["recalibrate"] for r in calm), [r["reasons"] for r in calm]
    flagged = [truth[r["device_id"]] for r in ok if r["recalibrate"]]
    others = [truth[r["device_id"]] for r in ok if not r["recalibrate"]]
    assert np.mean(flagged) < np.mean(others) - 0.05
    assert result.summary["recalibrate"] == sorted(r["device_id"] for r in ok
                                                   if r["recalibrate"])


def test_the_report_has_a_row_per_device_and_both_histograms(outcome):
    result, out = outcome
    assert {"fleet.json", "report.md", "drift.png", "gain.png"} <= set(result.files)
    text = (out / "report.md").read_text()
    assert all(f"| sim-{i:02d} |" in text for i in range(DEVICES))
    assert "Recalibration rule" in text
    fleet_json = json.loads((out / "fleet.json").read_text())
    assert len(fleet_json["devices"]) == DEVICES
    assert (out / "drift.png").read_bytes()[:4] == b"\x89PNG"


def test_the_command_line_fits_a_listed_subset_on_an_existing_scheduler(fleet, client,
                                                                        tmp_path, capsys):
    subset = tmp_path / "subset"
    subset.mkdir()
    listed = [str(fleet / "devices" / f"sim-0{i}.json") for i in range(4)]
    (subset / "fleet.yaml").write_text(yaml.safe_dump({
        "format": "tinyfix-fleet/1", "model": str(fleet / "model.tflite"),
        "reference": str(fleet / "reference.json"), "devices": listed}))
    out = tmp_path / "cli"
    code = cli.main(["fleet", "fit", "--captures", str(subset), "--out", str(out),
                     "--scheduler", client.scheduler.address])
    assert code == 0
    summary = json.loads((out / "fleet.json").read_text())["summary"]
    assert summary["devices"] == summary["fitted"] == 4
    assert "need recalibration" in capsys.readouterr().out


def test_a_fleet_simulated_on_dask_is_the_one_simulated_here(client, tmp_path):
    spec = SimulationSpec(devices=4, out=str(tmp_path / "here"), samples=20,
                          reference_samples=30, seed=9)
    simulate_fleet(spec, Console(quiet=True))
    simulate_fleet(SimulationSpec(**{**spec.__dict__, "out": str(tmp_path / "dask")}),
                   Console(quiet=True), client)
    here = sorted((tmp_path / "here").rglob("*.*"))
    # 4 manifests and captures, 3 unlabeled devices' truth, the reference's two files, the
    # model and fleet.yaml
    assert len(here) == 8 + 3 + 2 + 2
    for path in here:
        twin = tmp_path / "dask" / path.relative_to(tmp_path / "here")
        assert twin.read_bytes() == path.read_bytes(), path.name
