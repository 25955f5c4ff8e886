# SPDX-License-Identifier: Apache-2.0
"""Fleet fitting (issue 15): a fleet of simulated devices (`fleet simulate`: the twin with
per-device sensor drift, a quarter of the captures labelled) fitted by `fleet fit` on a
Dask cluster of one, then two, single-threaded worker processes on this machine. Reported:
devices per second and the scaling, each worker's time per device (labelled: the whole
chain with the head re-fit; unlabeled: the label-free path), the peak memory of every
worker and of the scheduler, what the fits did (labelled devices' accuracy before and
after; unlabeled devices' accuracy, from the labels the simulation kept aside, before and
after the label-free set), and how many devices need recalibration.

The scheduler and the workers are their own processes (`python -m distributed.cli.
dask_scheduler`, `... dask_worker --nworkers N --nthreads 1`), as on a cluster, reached with
--scheduler: each process's peak memory is its own (getrusage), not the benchmark's.

Target: two workers at least 1.6x one worker's devices per second.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from tinyfix.bench.table import Target

QUICK_DEVICES, FULL_DEVICES = 40, 1000
LABELLED_FRACTION = 0.25
SAMPLES = 300
WORKERS = (1, 2)
SCALING_TARGET = 1.6
START_TIMEOUT_S = 120.0


def peak_rss_mb() -> float:
    """This process's peak resident memory (runs on a worker or the scheduler)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


@contextlib.contextmanager
def cluster(workers: int, folder: Path) -> Iterator[str]:
    """A scheduler and `workers` worker processes on this machine; yields its address."""
    from distributed import Client

    spec = folder / f"scheduler-{workers}.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", "--no-dashboard", "--scheduler-file", str(spec)], **quiet)
    procs = [scheduler]
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not spec.exists():
            if scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Dask scheduler did not start")
            time.sleep(0.2)
        address = json.loads(spec.read_text())["address"]
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers",
             str(workers), "--nthreads", "1", "--no-dashboard"], **quiet))
        with Client(address) as client:
            client.wait_for_workers(workers, timeout=START_TIMEOUT_S)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _per_device(results: list[dict[str, Any]], labelled: bool) -> float | None:
    times = [r["seconds"] for r in results if r["status"] == "ok" and r["labelled"] == labelled]
    return float(np.mean(times)) if times else None


def fit_run(fleet: Path, out: Path, workers: int, folder: Path) -> dict[str, Any]:
    """fleet fit on a fresh cluster of `workers` processes, and what it cost."""
    from distributed import Client

    from tinyfix.fleet.fit import FleetFitJob, fit_fleet

    with cluster(workers, folder) as address, Client(address) as client:
        outcome = fit_fleet(FleetFitJob(str(fleet), str(out), scheduler=address),
                            Console(quiet=True), client)
        worker_mb = sorted(client.run(peak_rss_mb).values())
        scheduler_mb = client.run_on_scheduler(peak_rss_mb)
    s = outcome.summary
    return {"workers": workers, "devices": s["devices"], "fitted": s["fitted"],
            "seconds": round(outcome.seconds, 1),
            "devices_per_s": round(s["devices"] / outcome.seconds, 3),
            "labelled_s_per_device": _per_device(outcome.results, True),
            "unlabeled_s_per_device": _per_device(outcome.results, False),
            "worker_peak_mb": [round(m) for m in worker_mb],
            "scheduler_peak_mb": round(scheduler_mb),
            "summary": {k: s[k] for k in ("labelled", "unlabeled", "invalid", "failed",
                                          "accuracy_before", "accuracy_after", "mean_gain",
                                          "gain_not_negative")},
            "recalibrate": len(s["recalibrate"]), "results": outcome.results}


def label_free_quality(fleet: Path, out: Path, results: list[dict[str, Any]]
                       ) -> dict[str, Any]:
    """Unlabeled devices scored with the labels the simulation kept aside: the model as it
    is, and the label-free set written for it, through the C core."""
    from tinyfix import params_io
    from tinyfix.core import Core
    from tinyfix.fit.through_core import run_frames
    from tinyfix.fleet import capture_io
    from tinyfix.twin import ModelGraph

    core = Core()
    model = ModelGraph.load(fleet / "model.tflite").model_info(core)
    before, after = [], []
    for r in results:
        if r["status"] != "ok" or r["labelled"]:
            continue
        cap = capture_io.read_capture(str(fleet / "devices" / f"{r['device_id']}.tfcap"), model)
        y = np.load(fleet / "truth" / f"{r['device_id']}.npy").astype(np.int64)
        params = params_io.read_params_yaml(out / r["params"], core, model)
        before.append(float(np.mean(cap.raw.argmax(axis=1) == y)))
        after.append(float(np.mean(run_frames(core, model, params, cap.raw).decision == y)))
    if not before:
        return {"devices": 0}
    gains = np.array(after) - np.array(before)
    return {"devices": len(before), "accuracy_before": float(np.mean(before)),
            "accuracy_after": float(np.mean(after)), "mean_gain": float(np.mean(gains)),
            "worse": int(np.sum(gains < 0))}


def run(quick: bool, console: Console | None = None) -> dict[str, Any]:
    from tinyfix.fleet.simulate import SimulationSpec, simulate_fleet

    console = console or Console(stderr=True)
    n = QUICK_DEVICES if quick else FULL_DEVICES
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fleet = folder / "fleet"
        console.print(f"fleet: simulating {n} devices")
        t0 = time.perf_counter()
        simulate_fleet(SimulationSpec(devices=n, out=str(fleet),
                                      labelled_fraction=LABELLED_FRACTION, samples=SAMPLES),
                       Console(quiet=True))
        simulate_s = time.perf_counter() - t0
        rows = []
        for workers in WORKERS:
            console.print(f"fleet: fitting {n} devices on {workers} worker(s)")
            rows.append(fit_run(fleet, folder / f"fits-{workers}", workers, folder))
        quality = label_free_quality(fleet, folder / f"fits-{WORKERS[-1]}",
                                     rows[-1]["results"])
    same = all(_sets(rows[0]) == _sets(r) for r in rows[1:])
    for r in rows:
        del r["results"]
    figures: dict[str, Any] = {
        "devices": n, "labelled_fraction": LABELLED_FRACTION, "samples": SAMPLES,
        "simulate_s": round(simulate_s, 1),
        "simulated_per_s": round(n / simulate_s, 1), "rows": rows,
        "scaling": round(rows[-1]["devices_per_s"] / rows[0]["devices_per_s"], 2),
        "same_sets": same, "label_free": quality}
    figures["targets"] = [t.as_dict() for t in targets(figures)]
    return figures


def _sets(row: dict[str, Any]) -> dict[str, str | None]:
    return {r["device_id"]: r.get("params_crc") for r in row["results"]}


def targets(figures: dict[str, Any]) -> list[Target]:
    one, two = figures["rows"][0], figures["rows"][-1]
    everyone = all(r["fitted"] == r["devices"] for r in figures["rows"])
    return [
        Target(f"fleet fit of {figures['devices']} devices on 2 workers",
               f"at least {SCALING_TARGET:g}x the devices per second of 1 worker",
               figures["scaling"] >= SCALING_TARGET,
               f"{two['devices_per_s']:.2f} vs {one['devices_per_s']:.2f} devices/s "
               f"({figures['scaling']:.2f}x)"),
        Target("every simulated device fitted, the same set on 1 and 2 workers",
               "all fitted, identical parameter sets", everyone and figures["same_sets"],
               f"{two['fitted']} of {two['devices']} fitted; sets "
               f"{'identical' if figures['same_sets'] else 'DIFFER'}"),
    ]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def markdown(figures: dict[str, Any]) -> str:
    rows = figures["rows"]
    lines = [f"## Fleet fit ({figures['devices']} simulated devices)", "",
             f"`tinyfix fleet simulate` wrote {figures['devices']} devices "
             f"({100 * figures['labelled_fraction']:.0f}% labelled, {figures['samples']} "
             f"windows each) in {figures['simulate_s']:.0f} s ({figures['simulated_per_s']:.0f} "
             "devices/s, one process); `tinyfix fleet fit` fitted them on a Dask scheduler "
             "and single-threaded worker processes of this machine.", "",
             "| workers | devices/s | seconds | labelled fit s/device | unlabeled fit "
             "s/device | peak memory per worker | scheduler peak memory |",
             "| ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for r in rows:
        lab, unl = r["labelled_s_per_device"], r["unlabeled_s_per_device"]
        lines.append(f"| {r['workers']} | {r['devices_per_s']:.2f} | {r['seconds']:.0f} | "
                     f"{'n/a' if lab is None else f'{lab:.2f}'} | "
                     f"{'n/a' if unl is None else f'{unl:.3f}'} | "
                     f"{', '.join(f'{m} MB' for m in r['worker_peak_mb'])} | "
                     f"{r['scheduler_peak_mb']} MB |")
    s, q = rows[-1]["summary"], figures["label_free"]
    lines += ["", f"- scaling, 2 workers against 1: {figures['scaling']:.2f}x; parameter "
              f"sets {'identical' if figures['same_sets'] else 'DIFFERENT'} on 1 and 2 workers",
              f"- labelled devices ({s['labelled']}): accuracy on their held-out windows "
              f"{_pct(s['accuracy_before'])} before, {_pct(s['accuracy_after'])} after; "
              f"{s['gain_not_negative']} of {s['labelled']} not worse",
              f"- unlabeled devices ({q['devices']}), scored with the labels the simulation "
              f"kept aside: {_pct(q.get('accuracy_before'))} before, "
              f"{_pct(q.get('accuracy_after'))} after the label-free prior set; "
              f"{q.get('worse', 0)} worse",
              f"- need recalibration: {rows[-1]['recalibrate']} of {figures['devices']}", ""]
    lines += [f"- {Target(**t).line()}" for t in figures.get("targets", [])]
    return "\n".join(lines) + "\n"


def main() -> None:  # pragma: no cover - a manual entry point
    print(markdown(run(quick=True)))


if __name__ == "__main__":  # pragma: no cover
    main()
