# SPDX-License-Identifier: Apache-2.0
"""`tinyfix fleet fit`: one fit per device on Dask, then the fleet report.

The client lists the manifests and submits one task per device (fleet.device_fit); each
worker reads its device's manifest and capture, fits, and writes the device's parameter
set and result under --out itself, so the captures never pass through the client or the
scheduler. Only the small results come back, as they complete, to the progress bar and
the report. The fleet's reference is loaded once, by a task the device fits depend on.
"""

from __future__ import annotations

import contextlib
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tinyfix.errors import TinyfixError
from tinyfix.fleet import report, urls
from tinyfix.fleet.cluster import dask_client
from tinyfix.fleet.device_fit import (
    FAILED,
    OK,
    FitSettings,
    FleetModel,
    failure,
    fit_device,
    load_reference,
    result_url,
)
from tinyfix.fleet.drift import FleetReference
from tinyfix.fleet.manifest import FleetSpec, read_fleet
from tinyfix.twin.model import ModelGraph

if TYPE_CHECKING:
    from distributed import Client


@dataclass
class FleetFitJob:
    captures: str
    out: str
    scheduler: str | None = None
    workers: int | None = None
    model: str | None = None  # overrides fleet.yaml's
    reference: str | None = None  # a reference manifest, overrides fleet.yaml's
    settings: FitSettings = field(default_factory=FitSettings)


@dataclass
class FleetOutcome:
    results: list[dict[str, Any]]
    summary: dict[str, Any]
    files: list[str]
    seconds: float  # the device fits, from the first submit to the last result


def fleet_model(spec: FleetSpec) -> FleetModel:
    """The fleet's model, checked against fleet.yaml's CRC and class names."""
    data = urls.read_bytes(spec.model)
    crc = zlib.crc32(data)
    if spec.model_crc is not None and spec.model_crc != crc:
        raise TinyfixError(f"{spec.model} has CRC 0x{crc:08x}; fleet.yaml says "
                           f"0x{spec.model_crc:08x}")
    graph = ModelGraph.from_bytes(data, name=spec.model.rsplit("/", 1)[-1])
    if spec.classes is not None and len(spec.classes) != graph.n_classes:
        raise TinyfixError(f"fleet.yaml names {len(spec.classes)} classes; the model has "
                           f"{graph.n_classes}")
    return FleetModel(spec.model, crc, spec.classes)


@contextlib.contextmanager
def _client(job: FleetFitJob, client: Client | None) -> Iterator[Client]:
    if client is not None:
        yield client
    else:
        with dask_client(job.scheduler, job.workers) as made:
            yield made


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("[bold]fleet fit"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[failed]} not fitted"), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, transient=False)


def fit_fleet(job: FleetFitJob, console: Console, client: Client | None = None
              ) -> FleetOutcome:
    """Fit every device of the fleet at job.captures; results and report under job.out."""
    try:
        from distributed import as_completed
    except ImportError as exc:
        raise TinyfixError("the fleet runs on Dask: pip install 'dask[distributed]'") from exc
    job = replace(job, captures=urls.absolute(job.captures), out=urls.absolute(job.out))
    spec = read_fleet(job.captures, job.model and urls.absolute(job.model),
                      job.reference and urls.absolute(job.reference))
    if not spec.devices:
        raise TinyfixError(f"no device manifest in {job.captures}")
    model = fleet_model(spec)
    console.print(f"fleet {job.captures}: {len(spec.devices)} devices, model "
                  f"0x{model.crc:08x}, reference {spec.reference or 'none'}")
    with _client(job, client) as dask:
        reference: FleetReference | None = None
        ref_future = None
        if spec.reference is not None:
            ref_future = dask.submit(load_reference, spec.reference, model, pure=False)
            try:
                reference = ref_future.result()
            except TinyfixError as exc:
                raise TinyfixError(f"the fleet's reference: {exc}") from None
        started = time.perf_counter()
        futures = dask.map(fit_device, list(spec.devices), model=model, reference=ref_future,
                           out=job.out, settings=job.settings, pure=False)
        manifest_of = {f.key: url for f, url in zip(futures, spec.devices, strict=True)}
        results = []
        with _progress(console) as bar:
            task = bar.add_task("fit", total=len(futures), failed=0)
            failed = 0
            for future in as_completed(futures):
                try:
                    result = future.result()
                except Exception as exc:  # the worker died or the task could not run
                    result = failure(manifest_of[future.key], FAILED,
                                     f"{type(exc).__name__}: {exc}")
                    _write_result(job.out, result)
                future.release()
                failed += result["status"] != OK
                results.append(result)
                bar.update(task, advance=1, failed=failed)
        seconds = time.perf_counter() - started
    results.sort(key=lambda r: r["device_id"])
    summary = report.summarize(results, reference, job.settings.rule, seconds)
    context = {"captures": job.captures, "model": f"{spec.model} (0x{model.crc:08x})",
               "cluster": job.scheduler or f"LocalCluster, {job.workers or 'default'} workers"}
    files = report.write_report(job.out, results, summary, job.settings.rule, context)
    report.print_report(console, summary, results)
    console.print(f"wrote {len(results)} device results, {', '.join(files)} to {job.out}")
    return FleetOutcome(results, summary, files, seconds)


def _write_result(out: str, result: dict[str, Any]) -> None:
    import json

    with contextlib.suppress(TinyfixError):
        urls.write_text(result_url(out, result["device_id"]), json.dumps(result, indent=2) + "\n")
