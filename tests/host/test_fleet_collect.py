# SPDX-License-Identifier: Apache-2.0
"""`tinyfix fleet collect`: a fleet captured over SMP is a fleet `fleet fit` takes.

Three twins serve the firmware's C group over SMP/UDP (two on drifted field sensors, one
running another model) and one address answers nothing. The two good devices get a
manifest and a capture of exactly the windows asked for, with their SMP address; the
other two are reported and skipped, a rerun keeps what was collected, and `fleet fit`
fits the collected devices as it fits simulated ones.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from tinyfix import cli
from tinyfix.core import Core
from tinyfix.fleet import capture_io
from tinyfix.fleet.fit import FleetFitJob, fit_fleet
from tinyfix.twin import ModelGraph, default_model
from tinyfix.twin.smp_server import SmpServer
from tinyfix.twin.twin import Twin

OTHER_MODEL = Path(__file__).parents[1] / "app" / "models" / "large_input_int8.tflite"
WINDOWS = 40


def _closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def devices():
    twins = {"field-a": Twin(sensor="field", seed=4), "field-b": Twin(sensor="field", seed=9),
             "other-model": Twin(model=OTHER_MODEL)}
    servers = {name: SmpServer(t) for name, t in twins.items()}
    urls = {name: s.start() for name, s in servers.items()}
    urls["gone"] = f"udp://127.0.0.1:{_closed_udp_port()}"
    yield urls
    for s in servers.values():
        s.stop()
        assert s.error is None


@pytest.fixture(scope="module")
def collected(devices, tmp_path_factory):
    root = tmp_path_factory.mktemp("collect")
    smp_map = root / "devices.yaml"
    smp_map.write_text(yaml.safe_dump(devices))
    fleet = root / "fleet"
    code = cli.main(["fleet", "collect", "--smp-map", str(smp_map), "--windows",
                     str(WINDOWS), "--out", str(fleet)])
    return fleet, smp_map, code


def test_reachable_devices_of_the_model_are_collected_the_rest_reported(collected, devices,
                                                                         capsys):
    fleet, _, code = collected
    assert code == 3  # some devices failed
    model = ModelGraph.load(default_model())
    assert yaml.safe_load((fleet / "fleet.yaml").read_text())["model_crc"] == f"0x{model.crc:08x}"
    manifests = sorted(p.stem for p in (fleet / "devices").glob("*.json"))
    assert manifests == ["field-a", "field-b"]
    for device_id in manifests:
        m = json.loads((fleet / "devices" / f"{device_id}.json").read_text())
        assert m["smp"] == devices[device_id] and m["labelled"] is False
        assert m["firmware"].startswith("twin")
        cap = capture_io.read_capture(str(fleet / "devices" / m["capture"]),
                                      model.model_info(Core()))
        assert len(cap) == WINDOWS and not cap.labelled
        assert cap.features is not None and cap.features.shape == (WINDOWS, 24)


def test_a_rerun_keeps_the_collected_devices(collected):
    fleet, smp_map, _ = collected
    before = (fleet / "devices" / "field-a.tfcap").read_bytes()
    smp_map_good = smp_map.with_name("good.yaml")
    data = yaml.safe_load(smp_map.read_text())
    smp_map_good.write_text(yaml.safe_dump({k: data[k] for k in ("field-a", "field-b")}))
    assert cli.main(["fleet", "collect", "--smp-map", str(smp_map_good), "--windows",
                     str(WINDOWS), "--out", str(fleet)]) == 0
    assert (fleet / "devices" / "field-a.tfcap").read_bytes() == before


def test_fleet_fit_fits_the_collected_devices(collected, tmp_path):
    fleet, _, _ = collected
    outcome = fit_fleet(FleetFitJob(str(fleet), str(tmp_path / "fits"), workers=1),
                        Console(quiet=True))
    assert outcome.summary["fitted"] == 2
    for device_id in ("field-a", "field-b"):
        assert (tmp_path / "fits" / "devices" / device_id / "params.yaml").is_file()
