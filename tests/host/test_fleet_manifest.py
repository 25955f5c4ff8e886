# SPDX-License-Identifier: Apache-2.0
"""A fleet folder on disk: manifests parse or say which field is wrong, fleet.yaml lists the
devices through any fsspec URL, a capture round-trips through the capture file format and
a damaged one is refused, the recalibration rule says why, and a simulated fleet is the
same for the same seed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rich.console import Console

from tinyfix import cli
from tinyfix.capture_store import CaptureFileError
from tinyfix.core import ModelInfo
from tinyfix.errors import TinyfixError
from tinyfix.fleet import capture_io, urls
from tinyfix.fleet.manifest import (
    DeviceManifest,
    ManifestError,
    read_fleet,
    read_manifest,
    write_fleet,
)
from tinyfix.fleet.recalibration import RecalibrationRule
from tinyfix.fleet.simulate import SimulationSpec, plan, simulate_fleet

MODEL = ModelInfo(model_crc=0x1234ABCD, n_classes=3, n_features=4)
GOOD = {"device_id": "dev-1", "model_crc": "0x1234abcd", "firmware": "1.0.0",
        "labelled": True, "capture": "dev-1.tfcap"}


def test_a_manifest_resolves_its_capture_beside_it():
    m = DeviceManifest.parse(GOOD, "s3://bucket/fleet/devices/dev-1.json")
    assert m.model_crc == 0x1234ABCD
    assert m.capture == "s3://bucket/fleet/devices/dev-1.tfcap"
    again = DeviceManifest.parse(m.as_dict(capture="dev-1.tfcap"), m.url)
    assert again == m


@pytest.mark.parametrize(("change", "message"), [
    ({"model_crc": "0xzz"}, "model_crc"),
    ({"labelled": "yes"}, "labelled must be true or false"),
    ({"device_id": "../etc"}, "no path separators"),
    ({"format": "other/1"}, "format"),
    ({"limits": {"max_frames": 3}}, "limits may only give"),
])
def test_a_bad_manifest_names_what_is_wrong(change, message):
    with pytest.raises(ManifestError, match=message):
        DeviceManifest.parse({**GOOD, **change}, "m.json")


def test_a_missing_field_is_named():
    data = {k: v for k, v in GOOD.items() if k != "firmware"}
    with pytest.raises(ManifestError, match="missing firmware"):
        DeviceManifest.parse(data, "m.json")


def test_a_manifest_of_another_model_is_refused_for_the_fleet():
    m = DeviceManifest.parse(GOOD, "m.json")
    m.check_model(0x1234ABCD)
    with pytest.raises(ManifestError, match="the fleet's model is 0x00000001"):
        m.check_model(1)


def test_fleet_yaml_lists_devices_through_fsspec():
    root = "memory://fleet-a"
    for i in range(3):
        urls.write_text(f"{root}/devices/d{i}.json", json.dumps({**GOOD, "device_id": f"d{i}"}))
    write_fleet(root, model="model.tflite", model_crc=0x1234ABCD, reference="ref.json",
                classes=("a", "b", "c"))
    spec = read_fleet(root)
    assert [read_manifest(u).device_id for u in spec.devices] == ["d0", "d1", "d2"]
    assert spec.model.endswith("fleet-a/model.tflite")
    assert spec.reference is not None and spec.reference.endswith("fleet-a/ref.json")
    assert spec.model_crc == 0x1234ABCD and spec.classes == ("a", "b", "c")


def test_a_folder_without_fleet_yaml_needs_the_model(tmp_path):
    (tmp_path / "d0.json").write_text(json.dumps(GOOD))
    with pytest.raises(TinyfixError, match="give --model"):
        read_fleet(str(tmp_path))
    spec = read_fleet(str(tmp_path), model=str(tmp_path / "m.tflite"))
    assert [u.rsplit("/", 1)[-1] for u in spec.devices] == ["d0.json"]


def _capture(n: int = 12, labelled: bool = True) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    raw = rng.integers(-128, 128, (n, 3)).astype(np.int8)
    feats = rng.integers(-128, 128, (n, 4)).astype(np.int8)
    labels = rng.integers(0, 3, n) if labelled else np.full(n, capture_io.NO_LABEL)
    return capture_io.encode(raw, labels, feats, MODEL.model_crc, "f"), raw, feats


def test_a_capture_round_trips_through_the_capture_file_format():
    data, raw, feats = _capture()
    got = capture_io.decode(data, "c.tfcap", MODEL)
    assert np.array_equal(got.raw, raw) and np.array_equal(got.features, feats)
    assert got.labelled and got.model_crc == MODEL.model_crc
    unlabeled = capture_io.decode(_capture(labelled=False)[0], "u.tfcap", MODEL)
    assert not unlabeled.labelled


def test_a_damaged_capture_is_refused_and_a_torn_tail_dropped():
    data, raw, _ = _capture()
    broken = bytearray(data)
    broken[len(data) // 2] ^= 0xFF
    with pytest.raises(CaptureFileError, match="damaged"):
        capture_io.decode(bytes(broken), "c.tfcap", MODEL)
    torn = capture_io.decode(data[:-5], "c.tfcap", MODEL)
    assert np.array_equal(torn.raw, raw[:-1])


def test_a_damaged_length_field_is_not_taken_for_a_torn_tail():
    data, _, _ = _capture()
    record = 8 + 14 + 3 + 4  # length, payload (head, raw, features), CRC
    at = len(data) - 6 * record  # the length field of the sixth record from the end
    broken = data[:at] + (1 << 30).to_bytes(4, "little") + data[at + 4:]
    with pytest.raises(CaptureFileError, match="damaged"):
        capture_io.decode(broken, "c.tfcap", MODEL)


def test_a_capture_of_another_output_size_is_refused():
    data, _, _ = _capture()
    with pytest.raises(ManifestError, match="raw output"):
        capture_io.decode(data, "c.tfcap", ModelInfo(model_crc=1, n_classes=4))


def test_the_rule_flags_drift_and_loss_with_reasons():
    rule = RecalibrationRule()
    calm = {"conf_drop": 0.01, "prior_tv": 0.05}
    assert rule.reasons(calm, 0.95, 0.97) == []
    moved = rule.reasons({"conf_drop": 0.2, "prior_tv": 0.4}, None, 0.97)
    assert len(moved) == 2 and "class mix 40.0%" in moved[1]
    assert "points below the reference" in rule.reasons(calm, 0.8, 0.97)[0]
    assert rule.reasons(None, 0.5, None) == []  # no reference: nothing to compare


def test_a_simulated_fleet_is_the_same_for_the_same_seed(tmp_path):
    spec = SimulationSpec(devices=3, out=str(tmp_path / "a"), labelled_fraction=0.34,
                          samples=20, reference_samples=30)
    assert plan(spec) == plan(spec)
    assert [d.labelled for d in plan(spec)].count(True) == 1
    simulate_fleet(spec, Console(quiet=True))
    simulate_fleet(SimulationSpec(**{**spec.__dict__, "out": str(tmp_path / "b")}),
                   Console(quiet=True))
    a, b = tmp_path / "a" / "devices", tmp_path / "b" / "devices"
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    for path in a.iterdir():
        assert path.read_bytes() == (b / path.name).read_bytes()
    spec_read = read_fleet(str(tmp_path / "a"))
    manifests = [read_manifest(u) for u in spec_read.devices]
    assert len(manifests) == 3 and all(m.simulated for m in manifests)
    for m in manifests:
        assert (tmp_path / "a" / "devices" / f"{m.device_id}.tfcap").is_file()
        assert (tmp_path / "a" / "truth" / f"{m.device_id}.npy").is_file() != m.labelled


def test_the_command_line_simulates_a_fleet_the_fit_can_read(tmp_path):
    out = tmp_path / "sim"
    assert cli.main(["fleet", "simulate", "--devices", "2", "--out", str(out), "--samples",
                     "20", "--labelled-fraction", "1"]) == 0
    spec = read_fleet(str(out))
    assert [read_manifest(u).labelled for u in spec.devices] == [True, True]
    assert cli.main(["fleet", "simulate", "--devices", "0", "--out", str(out)]) == 1
