# SPDX-License-Identifier: Apache-2.0
"""One device's fit, as a Dask task: read its manifest and capture, fit, write its
parameter set and result, and return the result (small: the report is built from it).

Labelled captures go through the chain `tinyfix fit` runs on recorded scores (fit_classification
with the feature vectors and the model's last layer, the monitor's references, the
before/after evaluation on a held-out share); unlabeled ones through the label-free path
(fit_unlabeled on the raw outputs, calibrated on the fleet's labelled reference capture:
with no model inputs in a capture that is the prior shift). Whatever goes wrong with one
device is caught and returned as its result: the rest of the fleet goes on.

A labelled fit keeps a stage only when it helps on held-out windows, so its set is marked
for push. A label-free prior set is not: without labels nothing checks it, and under
sensor drift it costs accuracy (docs/benchmark.md: the single-device "prior (EM)" row and
the fleet's unlabeled devices), so fleet push sends it only when asked (--label-free).
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tinyfix import params_io
from tinyfix.core import Core, ModelInfo, Params
from tinyfix.datasets import stratified_split
from tinyfix.errors import TinyfixError
from tinyfix.fit import FitOptions, LabReference, fit_classification, fit_unlabeled
from tinyfix.fit.head_source import HeadSource, head_source
from tinyfix.fit.monitor import add_monitor
from tinyfix.fleet import drift, urls
from tinyfix.fleet.capture_io import DeviceCapture, read_capture
from tinyfix.fleet.manifest import DeviceManifest, ManifestError, device_id_of, read_manifest
from tinyfix.fleet.recalibration import RecalibrationRule
from tinyfix.report import json_safe
from tinyfix.twin.model import ModelGraph

OK, INVALID, FAILED = "ok", "invalid", "failed"
LABEL_FREE_NOTE = ("a label-free prior shift, unchecked without labels and known to cost "
                   "accuracy under sensor drift: fleet push sends it only with --label-free")


@dataclass(frozen=True)
class FleetModel:
    """The fleet's model as the tasks name it (the graph itself is loaded once a worker)."""

    url: str
    crc: int
    classes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class FitSettings:
    eval_fraction: float = 0.3
    seed: int = 0
    target_precision: float | None = None
    rule: RecalibrationRule = field(default_factory=RecalibrationRule)


@dataclass
class Loaded:
    graph: ModelGraph
    info: ModelInfo
    head: HeadSource | str


@lru_cache(maxsize=2)
def core() -> Core:
    return Core()


@lru_cache(maxsize=4)
def load_model(url: str) -> Loaded:
    """The model, read and described once per worker process."""
    graph = ModelGraph.from_bytes(urls.read_bytes(url), name=url.rsplit("/", 1)[-1])
    info = graph.model_info(core())
    return Loaded(graph, info, head_source(graph, info, FitOptions().device.max_features))


def load_reference(manifest_url: str, model: FleetModel) -> drift.FleetReference:
    """The fleet's reference from its labelled lab capture (a task: it goes to every fit)."""
    loaded = load_model(model.url)
    manifest = read_manifest(manifest_url)
    manifest.check_model(model.crc)
    capture = read_capture(manifest.capture, loaded.info)
    _check_capture(manifest, capture)
    if not capture.labelled:
        raise TinyfixError(f"{manifest_url}: the reference capture must be labelled")
    return drift.reference_of(core(), loaded.info, capture.raw, capture.labels)


def result_url(out: str, device_id: str) -> str:
    return urls.join(out, "devices", device_id, "result.json")


def params_path(device_id: str) -> str:
    """Where a device's set goes, relative to the output folder."""
    return f"devices/{device_id}/params.yaml"


def failure(manifest_url: str, status: str, error: str, device_id: str | None = None,
            **known: Any) -> dict[str, Any]:
    return {"device_id": device_id or device_id_of(manifest_url), "manifest": manifest_url,
            "status": status, "error": error, "recalibrate": None, "reasons": [], **known}


def _check_capture(manifest: DeviceManifest, capture: DeviceCapture) -> None:
    if capture.model_crc != manifest.model_crc:
        raise ManifestError(f"{manifest.device_id}: the capture is of model "
                            f"0x{capture.model_crc:08x}, the manifest says "
                            f"0x{manifest.model_crc:08x}")
    if manifest.labelled and not capture.labelled:
        missing = int(np.sum(capture.labels < 0))
        raise ManifestError(f"{manifest.device_id}: the manifest says labelled, but {missing} "
                            f"of {len(capture)} windows have no label")


def _labelled(loaded: Loaded, capture: DeviceCapture, options: FitOptions,
              settings: FitSettings) -> tuple[Params, dict[str, Any]]:
    c = core()
    y = capture.labels
    cal, ev = stratified_split(y, settings.eval_fraction, settings.seed)
    f = capture.features

    def part(a: NDArray | None, idx: NDArray) -> NDArray | None:
        return None if a is None else a[idx]

    result = fit_classification(capture.raw[cal], y[cal], loaded.info, options, c,
                                features=part(f, cal), head=loaded.head)
    add_monitor(result, capture.raw[cal], None, features=part(f, cal))
    evaluation = result.evaluate(capture.raw[ev], y[ev], features=part(f, ev))
    return result.params, {
        "set": "labelled fit", "stages": [s.as_dict() for s in result.stages],
        "stages_kept": result.stages_kept, "n_fit": result.n_fit,
        "n_heldout": result.n_heldout, "n_eval": int(ev.size),
        "before": evaluation.before, "after": evaluation.after,
        "clipped": [str(x) for x in result.clipped], "push": True}


def _unlabeled(loaded: Loaded, capture: DeviceCapture, options: FitOptions,
               reference: drift.FleetReference | None) -> tuple[Params, dict[str, Any]]:
    c = core()
    lab = (LabReference() if reference is None else
           LabReference(y=reference.labels, raw=reference.raw))
    fit = fit_unlabeled(loaded.info, capture.raw, lab=lab, options=options, core=c)
    adapted = fit.sets["prior"]  # a capture holds no model inputs: the prior shift
    params = adapted.params.copy()
    add_monitor(drift.sealed(c, loaded.info, params, adapted.float_params), capture.raw,
                None)
    return params, {"set": "label-free prior shift",
                    "stages": [s.as_dict() for s in adapted.stages],
                    "stages_kept": [s.name for s in adapted.stages if s.kept],
                    "before": None, "after": None, "push": False,
                    "push_note": LABEL_FREE_NOTE}


def fit_device(manifest_url: str, model: FleetModel, reference: drift.FleetReference | None,
               out: str, settings: FitSettings) -> dict[str, Any]:
    """Fit one device and write `devices/<id>/params.yaml` and `result.json` under `out`;
    returns the result. Never raises for a device's own problem."""
    started = time.perf_counter()
    where = {"worker": f"{socket.gethostname()}:{os.getpid()}"}
    try:
        manifest = read_manifest(manifest_url)
    except TinyfixError as exc:
        return _finish(failure(manifest_url, INVALID, str(exc), **where), out, started)
    known = {"labelled": manifest.labelled, "firmware": manifest.firmware,
             "model_crc": f"0x{manifest.model_crc:08x}", "simulated": manifest.simulated,
             **where}
    try:
        manifest.check_model(model.crc)
        loaded = load_model(model.url)
        capture = read_capture(manifest.capture, loaded.info)
        _check_capture(manifest, capture)
    except TinyfixError as exc:
        return _finish(failure(manifest_url, INVALID, str(exc), manifest.device_id, **known),
                       out, started)
    try:
        result = _fit(manifest, loaded, capture, model, reference, out, settings)
    except Exception as exc:  # one device's failure must not stop the fleet
        text = str(exc) if isinstance(exc, TinyfixError) else (
            f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}")
        return _finish(failure(manifest_url, FAILED, text, manifest.device_id,
                               samples=len(capture), **known), out, started)
    return _finish({"device_id": manifest.device_id, "manifest": manifest_url, "status": OK,
                    "error": None, "samples": len(capture), **known, **result}, out, started)


def _fit(manifest: DeviceManifest, loaded: Loaded, capture: DeviceCapture, model: FleetModel,
         reference: drift.FleetReference | None, out: str, settings: FitSettings
         ) -> dict[str, Any]:
    options = FitOptions(seed=settings.seed, target_precision=settings.target_precision,
                         device=manifest.device_limits())
    if manifest.labelled:
        params, found = _labelled(loaded, capture, options, settings)
    else:
        params, found = _unlabeled(loaded, capture, options, reference)
    figures = drift.figures(core(), loaded.info, capture.raw, reference)
    accuracy = None if found["before"] is None else found["before"]["accuracy"]
    reasons = settings.rule.reasons(figures, accuracy,
                                    None if reference is None else reference.accuracy)
    urls.write_text(urls.join(out, params_path(manifest.device_id)),
                    params_io.params_to_yaml(params, model.classes))
    return {**found, "params": params_path(manifest.device_id),
            "params_crc": f"0x{params.crc:08x}", "drift": figures,
            "recalibrate": bool(reasons), "reasons": reasons}


def _finish(result: dict[str, Any], out: str, started: float) -> dict[str, Any]:
    result["seconds"] = time.perf_counter() - started
    result = json_safe(result)
    try:
        urls.write_text(result_url(out, result["device_id"]),
                        json.dumps(result, indent=2) + "\n")
    except TinyfixError as exc:
        result["status"], result["error"] = FAILED, f"result not written: {exc}"
    return result
