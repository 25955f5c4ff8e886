# SPDX-License-Identifier: Apache-2.0
"""A fleet on disk: one capture per device (the capture file format, capture_store) and a
small manifest beside it, listed by a `fleet.yaml` (docs/fleet.md).

    fleet.yaml                     format, model, model_crc, reference, devices, classes
    model.tflite                   the int8 model every device runs
    reference.json + .tfcap        a labelled lab capture: what a healthy device looks like
    devices/<id>.json + <id>.tfcap one manifest and one capture per device

A device manifest (JSON, or YAML) names its device, the CRC32 of the model it runs, its
firmware version, whether its capture is labelled, and where the capture is (relative to
the manifest, or a URL); optionally its SMP address and its build's sizes. Paths in
fleet.yaml are relative to the fleet folder. Everything is read through fsspec (urls), so a
fleet can sit in a local folder or an object store.

A manifest that does not fit the fleet (another model, a missing field, a capture of
another model) is a ManifestError of that one device; only a fleet.yaml that cannot be
used stops the whole fleet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from tinyfix.errors import TinyfixError
from tinyfix.fit.options import DeviceLimits
from tinyfix.fleet import urls

FLEET_FORMAT = "tinyfix-fleet/1"
DEVICE_FORMAT = "tinyfix-device/1"
FLEET_FILE = "fleet.yaml"
DEFAULT_DEVICES = "devices/*.json"
# A device id names files and log lines: no path separators, no leading dot.
DEVICE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@+-]{0,127}$")
LIMIT_KEYS = ("max_vote_frames", "max_anomaly_window", "max_features", "max_head_weights")


class ManifestError(TinyfixError):
    """One device's manifest or capture does not fit the fleet."""


def parse_crc(value: Any, where: str) -> int:
    """A CRC32 given as "0x1a2b3c4d" or an integer."""
    try:
        crc = int(value, 16) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: expected a CRC32 such as 0x1a2b3c4d, got "
                            f"{value!r}") from None
    if isinstance(value, bool) or not 0 <= crc <= 0xFFFFFFFF:
        raise ManifestError(f"{where}: {value!r} is not a CRC32")
    return crc


def _load(text: str, url: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)  # JSON is YAML: one reader for both
    except yaml.YAMLError as exc:
        raise ManifestError(f"{url}: neither JSON nor YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{url}: expected a mapping")
    return data


@dataclass(frozen=True)
class DeviceManifest:
    """One device's manifest, its capture's URL resolved."""

    device_id: str
    model_crc: int
    firmware: str
    labelled: bool
    capture: str
    url: str = ""
    smp: str | None = None  # the device's SMP address, for fleet push
    limits: dict[str, int] = field(default_factory=dict)  # its build's sizes (INFO)
    simulated: dict[str, Any] | None = None  # fleet simulate: how the device was made

    @classmethod
    def parse(cls, data: dict[str, Any], url: str) -> DeviceManifest:
        fmt = data.get("format", DEVICE_FORMAT)
        if fmt != DEVICE_FORMAT:
            raise ManifestError(f"{url}: format {fmt!r} is not {DEVICE_FORMAT!r}")
        missing = [k for k in ("device_id", "model_crc", "firmware", "labelled", "capture")
                   if k not in data]
        if missing:
            raise ManifestError(f"{url}: missing {', '.join(missing)}")
        device_id = str(data["device_id"])
        if not DEVICE_ID.match(device_id):
            raise ManifestError(f"{url}: device_id {device_id!r} must be letters, digits and "
                                "_.:@+- (no path separators)")
        if not isinstance(data["labelled"], bool):
            raise ManifestError(f"{url}: labelled must be true or false")
        limits = data.get("limits") or {}
        if not isinstance(limits, dict) or set(limits) - set(LIMIT_KEYS):
            raise ManifestError(f"{url}: limits may only give {', '.join(LIMIT_KEYS)}")
        try:
            sizes = {k: int(v) for k, v in limits.items()}
        except (TypeError, ValueError):
            raise ManifestError(f"{url}: limits must be integers") from None
        smp = data.get("smp")
        return cls(device_id=device_id, model_crc=parse_crc(data["model_crc"], f"{url}: model_crc"),
                   firmware=str(data["firmware"]), labelled=data["labelled"],
                   capture=urls.join(urls.parent(url), str(data["capture"])), url=url,
                   smp=None if smp is None else str(smp),
                   limits=sizes,
                   simulated=data.get("simulated"))

    def as_dict(self, capture: str | None = None) -> dict[str, Any]:
        """The manifest as written; `capture` as it should appear (default: the URL)."""
        out: dict[str, Any] = {"format": DEVICE_FORMAT, "device_id": self.device_id,
                               "model_crc": f"0x{self.model_crc:08x}",
                               "firmware": self.firmware, "labelled": self.labelled,
                               "capture": capture or self.capture}
        if self.smp is not None:
            out["smp"] = self.smp
        if self.limits:
            out["limits"] = dict(self.limits)
        if self.simulated is not None:
            out["simulated"] = self.simulated
        return out

    def device_limits(self) -> DeviceLimits:
        """The sizes a set must stay within: the build's, where the manifest gives them."""
        return DeviceLimits(**self.limits)

    def check_model(self, fleet_crc: int) -> None:
        if self.model_crc != fleet_crc:
            raise ManifestError(f"{self.device_id}: runs model 0x{self.model_crc:08x}, the "
                                f"fleet's model is 0x{fleet_crc:08x}")


def read_manifest(url: str) -> DeviceManifest:
    return DeviceManifest.parse(_load(urls.read_text(url), url), url)


def device_id_of(url: str) -> str:
    """A best guess at the device a manifest URL is for (before it could be read)."""
    name = url.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".json", ".yaml", ".yml"):
        name = name.removesuffix(suffix)
    return name


@dataclass(frozen=True)
class FleetSpec:
    """fleet.yaml, its paths resolved to URLs."""

    root: str
    model: str
    devices: tuple[str, ...]  # manifest URLs
    model_crc: int | None = None
    reference: str | None = None  # a labelled lab capture's manifest URL
    classes: tuple[str, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": FLEET_FORMAT, "model": self.model}
        if self.model_crc is not None:
            out["model_crc"] = f"0x{self.model_crc:08x}"
        if self.reference is not None:
            out["reference"] = self.reference
        if self.classes is not None:
            out["classes"] = list(self.classes)
        out["devices"] = list(self.devices)
        return out


def _devices(root: str, listed: Any) -> tuple[str, ...]:
    """Manifest URLs from fleet.yaml's `devices`: a glob, or a list of paths and globs."""
    patterns = [listed] if isinstance(listed, str) else listed
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise TinyfixError(f"{urls.join(root, FLEET_FILE)}: devices must be a glob or a list "
                           "of manifest paths")
    found: list[str] = []
    for pattern in patterns:
        if any(c in pattern for c in "*?["):
            found += urls.glob(root, pattern)
        else:
            found.append(urls.join(root, pattern))
    return tuple(dict.fromkeys(found))


def read_fleet(root: str, model: str | None = None, reference: str | None = None
               ) -> FleetSpec:
    """The fleet at `root`: its fleet.yaml, or, without one, every *.json manifest in the
    folder (then `model` must name the model). `model` and `reference` override fleet.yaml's."""
    spec_url = urls.join(root, FLEET_FILE)
    if not urls.exists(spec_url):
        if model is None:
            raise TinyfixError(f"{root} has no {FLEET_FILE}: give --model (the .tflite the "
                               "devices run)")
        devices = tuple(urls.glob(root, "*.json"))
        if reference is not None:
            devices = tuple(d for d in devices if d != reference)
        return FleetSpec(root, model, devices, reference=reference)
    data = _load(urls.read_text(spec_url), spec_url)
    if data.get("format", FLEET_FORMAT) != FLEET_FORMAT:
        raise TinyfixError(f"{spec_url}: format {data.get('format')!r} is not {FLEET_FORMAT!r}")
    if model is None and "model" not in data:
        raise TinyfixError(f"{spec_url}: missing model (the .tflite the devices run)")
    crc = data.get("model_crc")
    classes = data.get("classes")
    if classes is not None and not isinstance(classes, list):
        raise TinyfixError(f"{spec_url}: classes must be a list of names")
    ref = reference or data.get("reference")
    return FleetSpec(
        root=root, model=model or urls.join(root, str(data["model"])),
        devices=_devices(root, data.get("devices", DEFAULT_DEVICES)),
        model_crc=None if crc is None else parse_crc(crc, f"{spec_url}: model_crc"),
        reference=None if ref is None else urls.join(root, str(ref)),
        classes=None if classes is None else tuple(str(c) for c in classes))


def write_fleet(root: str, *, model: str, model_crc: int, devices: str = DEFAULT_DEVICES,
                reference: str | None = None, classes: tuple[str, ...] | None = None) -> str:
    """Write fleet.yaml (paths relative to `root`); returns its URL."""
    data: dict[str, Any] = {"format": FLEET_FORMAT, "model": model,
                            "model_crc": f"0x{model_crc:08x}"}
    if reference is not None:
        data["reference"] = reference
    if classes is not None:
        data["classes"] = list(classes)
    data["devices"] = devices
    url = urls.join(root, FLEET_FILE)
    urls.write_text(url, "# TinyFix fleet (docs/fleet.md)\n"
                    + yaml.safe_dump(data, sort_keys=False))
    return url
