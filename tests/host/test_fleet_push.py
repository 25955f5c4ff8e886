# SPDX-License-Identifier: Apache-2.0
"""fleet push against fake SMP devices: every fitted device gets its set once, a refused set
is logged with the device's code and not sent again unless asked, an unreachable device is
retried by the next run, a label-free set is held back unless asked, a device of another
model is sent nothing, one already running the set is left alone, and an interrupted log
resumes."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rich.console import Console

from tinyfix import cli, params_io
from tinyfix.core import Params
from tinyfix.fleet import push as push_mod
from tinyfix.fleet.push import PushIncomplete, PushJob, SmpApi, Targets, push_fleet
from tinyfix.fleet.push_log import PushLog
from tinyfix.twin import ModelGraph, default_model

N = 5


class FakeGroupError(Exception):
    def __init__(self, rc: int, text: str) -> None:
        super().__init__(f"group error {rc}: {text}")
        self.rc, self.text = rc, text


class FakeTransportError(Exception):
    pass


@dataclass
class FakeDevice:
    model_crc: int
    params_crc: int = 0
    refuse: tuple[int, str] | None = None
    reachable: bool = True
    pushes: list[int] = field(default_factory=list)


@dataclass
class FakeFleet:
    """SMP devices by URL, speaking the interface fleet push codes against."""

    core: object
    devices: dict[str, FakeDevice] = field(default_factory=dict)

    @contextlib.contextmanager
    def open_device(self, url: str):
        device = self.devices[url]
        if not device.reachable:
            raise FakeTransportError(f"{url}: no answer")
        fleet = self

        class Handle:
            def info(self) -> dict:
                return {"model_crc": device.model_crc, "params_crc": device.params_crc}

            def push_params(self, blob: bytes) -> dict:
                if device.refuse is not None:
                    raise FakeGroupError(*device.refuse)
                crc = Params.decode(fleet.core, blob).crc
                device.pushes.append(crc)
                device.params_crc = crc
                return {"crc": crc, "persisted": True}

        yield Handle()

    def api(self) -> SmpApi:
        return SmpApi(self.open_device, FakeGroupError, FakeTransportError)


@pytest.fixture
def fits(tmp_path, core) -> tuple[Path, dict[str, int], int]:
    """A fleet fit's output: N fitted devices with distinct sets, one that failed."""
    model = ModelGraph.load(default_model()).model_info(core)
    devices, crcs = [], {}
    for i in range(N):
        params = Params.identity(core, model)
        params.c.class_bias[0] = 1000 * (i + 1)
        params.seal()
        device_id = f"dev-{i}"
        path = f"devices/{device_id}/params.yaml"
        (tmp_path / path).parent.mkdir(parents=True)
        params_io.write_params_yaml(tmp_path / path, params)
        crcs[device_id] = params.crc
        devices.append({"device_id": device_id, "status": "ok", "params": path,
                        "params_crc": f"0x{params.crc:08x}"})
    devices.append({"device_id": "dev-bad", "status": "invalid", "error": "damaged"})
    devices.append({**devices[0], "device_id": "dev-free", "push": False})
    (tmp_path / "fleet.json").write_text(json.dumps({"devices": devices}))
    return tmp_path, crcs, model.model_crc


def fake_fleet(core, model_crc: int) -> FakeFleet:
    devices = {f"fake://dev-{i}": FakeDevice(model_crc) for i in range(N)}
    return FakeFleet(core, {**devices, "fake://dev-free": FakeDevice(model_crc)})


def events(log: Path) -> list[tuple[str, str]]:
    return [(e.device_id, e.event) for e in PushLog(log).entries]


def run(fits_dir: Path, smp: FakeFleet, log: Path, retry: bool = False,
        label_free: bool = False):
    job = PushJob(str(fits_dir), Targets(template="fake://{device_id}"), log, retry,
                  label_free)
    return push_fleet(job, smp.api(), Console(quiet=True))


def test_every_device_gets_its_set_once_and_a_refusal_is_logged_with_its_code(fits, core,
                                                                             tmp_path):
    fits_dir, crcs, model_crc = fits
    smp = fake_fleet(core, model_crc)
    smp.devices["fake://dev-2"].refuse = (7, "set for another build")
    log = tmp_path / "push.jsonl"
    with pytest.raises(PushIncomplete, match="1 of 5 devices"):
        run(fits_dir, smp, log)
    for i in (0, 1, 3, 4):
        assert smp.devices[f"fake://dev-{i}"].pushes == [crcs[f"dev-{i}"]]
    refused = [e for e in PushLog(log).entries if e.event == "refused"]
    assert [(e.device_id, e.rc, e.text) for e in refused] == [("dev-2", 7,
                                                               "set for another build")]
    with pytest.raises(PushIncomplete):  # the refused set is not sent again...
        run(fits_dir, smp, log)
    assert all(len(d.pushes) <= 1 for d in smp.devices.values())
    assert events(log).count(("dev-2", "refused")) == 1
    smp.devices["fake://dev-2"].refuse = None  # ...unless asked, once the device takes it
    counts = run(fits_dir, smp, log, retry=True)
    assert counts == {"skipped": 4, "pushed": 1, "held back": 1}
    assert smp.devices["fake://dev-2"].pushes == [crcs["dev-2"]]
    assert sum(ev == "pushed" for _, ev in events(log)) == N


def test_an_unreachable_device_is_retried_by_the_next_run(fits, core, tmp_path):
    fits_dir, crcs, model_crc = fits
    smp = fake_fleet(core, model_crc)
    smp.devices["fake://dev-4"].reachable = False
    log = tmp_path / "push.jsonl"
    with pytest.raises(PushIncomplete):
        run(fits_dir, smp, log)
    assert ("dev-4", "unreachable") in events(log)
    smp.devices["fake://dev-4"].reachable = True
    assert run(fits_dir, smp, log) == {"skipped": 4, "pushed": 1, "held back": 1}
    assert smp.devices["fake://dev-4"].pushes == [crcs["dev-4"]]


def test_a_device_of_another_model_gets_nothing_and_a_current_one_is_left_alone(fits, core,
                                                                              tmp_path):
    fits_dir, crcs, model_crc = fits
    smp = fake_fleet(core, model_crc)
    smp.devices["fake://dev-0"].model_crc = 0x0BADC0DE
    smp.devices["fake://dev-1"].params_crc = crcs["dev-1"]
    log = tmp_path / "push.jsonl"
    with pytest.raises(PushIncomplete, match="1 of 5"):
        run(fits_dir, smp, log)
    assert smp.devices["fake://dev-0"].pushes == [] == smp.devices["fake://dev-1"].pushes
    found = dict(events(log))
    assert found["dev-0"] == "wrong model" and found["dev-1"] == "active"


def test_a_label_free_set_is_held_back_unless_asked(fits, core, tmp_path):
    fits_dir, crcs, model_crc = fits
    smp = fake_fleet(core, model_crc)
    log = tmp_path / "push.jsonl"
    assert run(fits_dir, smp, log)["held back"] == 1
    assert smp.devices["fake://dev-free"].pushes == []
    assert run(fits_dir, smp, log, label_free=True) == {"skipped": N, "pushed": 1}
    assert smp.devices["fake://dev-free"].pushes == [crcs["dev-0"]]


def test_a_torn_last_log_line_is_ignored_and_the_run_resumes(fits, core, tmp_path):
    fits_dir, _, model_crc = fits
    smp = fake_fleet(core, model_crc)
    log = tmp_path / "push.jsonl"
    run(fits_dir, smp, log)
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:2]) + lines[2][:15])  # died while writing the third
    again = fake_fleet(core, model_crc)
    counts = run(fits_dir, again, log)
    assert counts == {"skipped": 2, "pushed": 3, "held back": 1}
    pushed = [url for url, d in again.devices.items() if d.pushes]
    assert len(pushed) == 3


def test_the_command_line_pushes_with_a_map_and_exits_3_when_a_set_is_refused(
        fits, core, tmp_path, monkeypatch, capsys):
    fits_dir, _, model_crc = fits
    smp = fake_fleet(core, model_crc)
    smp.devices["fake://dev-3"].refuse = (5, "no space")
    monkeypatch.setattr(push_mod, "default_smp", smp.api)
    smp_map = tmp_path / "map.yaml"
    smp_map.write_text("".join(f"dev-{i}: fake://dev-{i}\n" for i in range(N)))
    code = cli.main(["fleet", "push", "--fits", str(fits_dir), "--smp-map", str(smp_map)])
    assert code == 3
    assert "1 of 5 devices were not updated" in capsys.readouterr().err
    assert ("dev-3", "refused") in events(fits_dir / "push.jsonl")
