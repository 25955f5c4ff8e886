# SPDX-License-Identifier: Apache-2.0
"""Scenario 4: the model zoo. Every generated topology (tinyfix.zoo) through the lab job as a
user runs it: `calibrate --port sim --push` on field-drifted data, the simulated device's
TFLM kernels over the wire (in chunks where a frame is too small).

Per topology: the job's wall time (capture, fit, delivery, check), samples per second over
the twin's pty, the bytes one INFER moves (both directions, every chunk and READ included)
and what that allows at 115200 baud 8N1 and at USB full speed (12 Mbit/s, framing not
counted: an upper bound), the head kept (or why not) against the model's own last layer,
and the agreement of the device's decisions with the host's C-core predictions, which must
be 100 % (the job fails otherwise).
"""

from __future__ import annotations

import io
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from tinyfix.calibrate import CalibrateJob, run
from tinyfix.errors import TinyfixError
from tinyfix.zoo import TOPOLOGIES, build

UART_BYTES_PER_S = 115200 / 10  # 8N1
USB_FS_BYTES_PER_S = 12e6 / 8
LINK_SAMPLES = 20
QUICK = ("fc_small", "kws_wide", "person_detect", "binary_sigmoid", "autoencoder")
SIZES = {"quick": (160, 80), "full": (400, 300)}


@dataclass
class ZooRow:
    name: str
    kind: str
    input_bytes: int
    seconds: float = 0.0
    samples_per_s: float = 0.0
    wire_bytes: int = 0
    requests_per_sample: float = 0.0
    before: float | None = None
    after: float | None = None
    figure: str = "accuracy"
    head: str = ""
    agreement: float | None = None
    # Classifiers: top-1 agreement with the float twin on the evaluation windows, as
    # deployed and after the quantization stage (--reference-model), and that stage's fate.
    float_agreement: str = ""
    error: str = ""

    @property
    def uart_samples_per_s(self) -> float:
        return UART_BYTES_PER_S / self.wire_bytes if self.wire_bytes else 0.0

    @property
    def usb_samples_per_s(self) -> float:
        return USB_FS_BYTES_PER_S / self.wire_bytes if self.wire_bytes else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["uart_115200_samples_per_s"] = self.uart_samples_per_s
        out["usb_fs_samples_per_s"] = self.usb_samples_per_s
        return out


def _link_figures(model: Path, x_bytes: list[bytes], features: bool) -> tuple[float, int, float]:
    """(samples/s over the twin, wire bytes per INFER, requests per INFER)."""
    import serial

    from tinyfix.twin import Twin
    from tinyfix.wire import Link

    with Twin(model=model) as twin:
        port = serial.serial_for_url(twin.port, timeout=0.05)
        try:
            link = Link(port, name="sim")
            link.info()
            start = (link.stats.bytes_tx + link.stats.bytes_rx, link.stats.requests)
            t0 = time.monotonic()
            for x in x_bytes:
                link.infer(x, features=features)
            elapsed = max(time.monotonic() - t0, 1e-9)
            moved = link.stats.bytes_tx + link.stats.bytes_rx - start[0]
            requests = link.stats.requests - start[1]
        finally:
            port.close()
    n = len(x_bytes)
    return n / elapsed, round(moved / n), requests / n


def _head_text(result: Any, graph: Any) -> str:
    from tinyfix.fit.head_source import head_source

    head = next((s for s in result.stages if s.name == "head"), None)
    source = head_source(graph, result.model, 4096)
    own = f"{source.own_bytes} B" if not isinstance(source, str) else "n/a"
    if head is None:
        return "no head stage (an autoencoder)" if result.task == "autoencoder" else "none"
    if head.kept and result.float_params.head is not None:
        h = result.float_params.head
        form = f"residual {h.n_columns}/{h.n_features}" if h.is_residual else "whole layer"
        return f"kept: {form}, {h.flash_bytes} B vs own {own}"
    return "not kept: " + head.reason.split(":")[0] + f" (own layer {own})"


def run_topology(name: str, folder: Path, n_cal: int, n_eval: int) -> ZooRow:
    from tinyfix.capture import quantize_inputs
    from tinyfix.core import Core
    from tinyfix.twin import ModelGraph

    zm = build(name, seed=0)
    row = ZooRow(name, zm.kind, 0)
    paths = zm.save(folder)
    model = paths["int8"]
    graph = ModelGraph.load(model)
    row.input_bytes = graph.input.nbytes
    cal, ev = folder / f"{name}_cal.npz", folder / f"{name}_eval.npz"
    zm.save_dataset(cal, n=n_cal, seed=1, drift="field")
    zm.save_dataset(ev, n=n_eval, seed=2, drift="field")
    x, _ = zm.dataset(n=LINK_SAMPLES, seed=3, drift="field")
    core = Core()
    inputs = quantize_inputs(core, graph.model_info(core), x)
    features = graph.feature is not None and graph.kind != "autoencoder"
    row.samples_per_s, row.wire_bytes, row.requests_per_sample = _link_figures(
        model, [v.tobytes() for v in inputs], features)
    reference = paths["float"] if zm.kind in ("classifier", "binary") else None
    job = CalibrateJob(data=cal, eval=ev, out=folder / f"out_{name}", port="sim",
                       model=model, push=True, reference_model=reference)
    quiet = Console(file=io.StringIO(), width=120)
    t0 = time.monotonic()
    try:
        outcome = run(job, quiet)
    except TinyfixError as err:
        row.error = str(err)
        return row
    row.seconds = time.monotonic() - t0
    key = "accuracy"
    row.figure = key
    row.before = outcome.evaluation.before.get(key)
    row.after = outcome.evaluation.after.get(key)
    said = quiet.file.getvalue()  # type: ignore[attr-defined]
    row.agreement = 1.0 if "differ from the host's in 0" in said else 0.0
    row.head = _head_text(outcome.result, graph)
    row.float_agreement = _float_text(outcome.result)
    return row


def _float_text(result: Any) -> str:
    """Agreement with the float twin before and after the quantization stage."""
    q = result.quantization
    if q is None:
        return "n/a"
    rows = q.evaluation
    before = rows["the int8 model as it is"]["agreement"]
    after = rows.get("after the quantization stage")
    stage = next(s for s in result.stages if s.name == "quantization")
    if after is None or not stage.kept:
        return f"{100 * before:.1f}% (stage not kept)"
    how = stage.reason.split(" against")[0]
    return f"{100 * before:.1f}% → {100 * after['agreement']:.1f}% ({how})"


def run_zoo(quick: bool) -> list[ZooRow]:
    names = QUICK if quick else tuple(n for n in TOPOLOGIES if n != "hybrid")
    n_cal, n_eval = SIZES["quick" if quick else "full"]
    with tempfile.TemporaryDirectory(prefix="tinyfix-zoo-") as tmp:
        return [run_topology(n, Path(tmp), n_cal, n_eval) for n in names]


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def markdown(rows: list[ZooRow]) -> str:
    lines = [
        "### 4. Model zoo: any model a user brings",
        "",
        "Generated models of every supported shape (`tinyfix.zoo`: random int8 weights, "
        "quantized as the TFLite converter does, field-drifted data), each through "
        "`calibrate --port sim --push`. Samples/s over the twin are measured on its pty; the "
        "115200 baud and USB full-speed figures follow from the bytes one INFER moves "
        "(every WRITE chunk and READ included; device compute time not included). "
        "Agreement: the device's decisions against the host's C-core predictions. "
        "Classifiers run with `--reference-model` (the zoo's float twin of each model, in "
        "LiteRT): the int8 model's top-1 agreement with it on the evaluation windows, as "
        "deployed and after the quantization stage.",
        "",
        "| topology | kind | input B | job s | samples/s (twin) | wire B / INFER | requests "
        "/ INFER | samples/s 115200 | samples/s USB FS | accuracy before → after | head | "
        "agreement | agreement with float |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if r.error:
            lines.append(f"| {r.name} | {r.kind} | {r.input_bytes} | failed: {r.error} "
                         "| | | | | | | | | |")
            continue
        lines.append(
            f"| {r.name} | {r.kind} | {r.input_bytes:,} | {r.seconds:.1f} | "
            f"{r.samples_per_s:,.0f} | {r.wire_bytes:,} | {r.requests_per_sample:.1f} | "
            f"{r.uart_samples_per_s:.2f} | {r.usb_samples_per_s:,.0f} | "
            f"{_pct(r.before)} → {_pct(r.after)} | {r.head} | {_pct(r.agreement)} | "
            f"{r.float_agreement or 'n/a'} |")
    return "\n".join(lines) + "\n"
