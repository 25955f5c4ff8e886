# SPDX-License-Identifier: Apache-2.0
"""The lab job: capture the device's raw outputs, fit, write the parameter files and the
report, and optionally deliver the parameters (SET_PARAMS, or rebuild and flash with west)
and check on the device that it now decides exactly as the host predicted."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from tinyfix import datasets, params_io
from tinyfix.capture import capture, feature_vectors, quantize_inputs, raw_outputs
from tinyfix.core import Core, ModelInfo, Params
from tinyfix.device import Device, open_device
from tinyfix.errors import TinyfixError
from tinyfix.fit import (
    DeviceLimits,
    Evaluation,
    FitOptions,
    FitResult,
    fit_classification,
    fit_streaming,
)
from tinyfix.fit.det_curve import DetCurve
from tinyfix.fit.frame_labels import model_window_ms
from tinyfix.fit.head_source import HeadSource, head_source
from tinyfix.fit.monitor import add_monitor
from tinyfix.fit.quant_error import agreement, measure
from tinyfix.fit.recon import evaluate_autoencoder, fit_autoencoder
from tinyfix.fit.streaming import evaluation_curves
from tinyfix.quant_report import QuantizationReport
from tinyfix.reference import ReferenceModel, ReferenceRun
from tinyfix.report import print_summary, write_report
from tinyfix.twin.model import ModelGraph
from tinyfix.wire.protocol import Cap

# DET curves per stream ("calibration", "evaluation"); empty for windows.
DetCurves = dict[str, list[DetCurve]]


@dataclass
class CalibrateJob:
    """Everything one run needs (the command line's options, validated)."""

    data: Path
    out: Path
    port: str | None = "sim"
    model: Path | None = None
    eval: Path | None = None
    baud: int = 115200
    board: str | None = None
    app: Path = Path("app")
    flash: bool = False
    push: bool = False
    # Capture the model's feature vectors (for the last-layer re-fit): True, False, or None
    # (default) for "when the device reports a feature tensor and the model's last layer can
    # be read from its .tflite", i.e. whenever the head stage could use them.
    features: bool | None = None
    head_budget_bytes: int | None = None
    window_ms: int | None = None  # streaming head: the model's input window
    eval_fraction: float = 0.3
    seed: int = 0
    target_precision: float | None = None
    target_fa_per_hour: float = 2.0
    fa_confidence: float = 0.9
    stream_blocks: int = 5
    target_false_alarm_rate: float = 0.01
    sim_sensor: str = "field"
    # The float .tflite the int8 model was converted from (classification): measure the
    # quantization error and fit the "quantization" stage to it (fit.quantization_stage).
    reference_model: Path | None = None


@dataclass
class Outcome:
    result: FitResult
    evaluation: Evaluation
    files: list[Path]


def _device_info_table(device: Device) -> Table:
    info = device.info
    table = Table(title=f"device on {device.port_name}", show_header=False)
    table.add_row("firmware", f"{info.fw_version} on {info.board} (protocol {info.proto_version})")
    table.add_row("model CRC", f"0x{info.model_crc:08x}")
    table.add_row("input", f"{info.input.shape} dtype {info.input.dtype} "
                           f"scale {info.input.scale:.6g} zero point {info.input.zero_point}")
    table.add_row("output", f"{info.output.shape} dtype {info.output.dtype} "
                            f"scale {info.output.scale:.6g} zero point {info.output.zero_point}")
    table.add_row("classes", str(info.n_classes))
    table.add_row("parameter set", f"0x{info.params_crc:08x} (format {info.params_format})")
    caps = [c.name.lower().replace("_", " ") for c in Cap if c and info.caps & c and c.name]
    table.add_row("offers", ", ".join(caps) or "nothing beyond INFER")
    return table


Captured = tuple[NDArray, NDArray, NDArray | None, NDArray | None]


def _raw_pair(job: CalibrateJob, device: Device | None, core: Core,
              cal: datasets.ClassificationData | datasets.StreamingData,
              ev: datasets.ClassificationData | datasets.StreamingData, labels: NDArray,
              console: Console, features: bool = False, fresh_state: bool = False
              ) -> Captured:
    """Raw outputs (and feature vectors, if asked and the device has them) of the
    calibration and evaluation sets: recorded scores as given, else captured (or resumed)
    through the device in one capture file (`fresh_state`: see capture())."""
    if cal.scores is not None and ev.scores is not None:
        # Feature vectors recorded beside the scores (tinyfix capture), unless --no-features.
        cal_f, ev_f = getattr(cal, "features", None), getattr(ev, "features", None)
        if job.features is not False and cal_f is not None and ev_f is not None:
            return cal.scores, ev.scores, cal_f, ev_f
        return cal.scores, ev.scores, None, None
    if device is None:
        raise TinyfixError(f"{job.data} holds model inputs, not recorded scores: give --port "
                           "(a device, a pyserial URL, or sim)")
    if cal.x is None or ev.x is None:
        raise TinyfixError("give both sets as model inputs (x) or both as recorded scores")
    inputs = quantize_inputs(core, device.model, np.concatenate([cal.x, ev.x]))
    raw, feats = _captured(job, device, inputs, labels, console, features, fresh_state)
    n = len(cal)
    if feats is None:
        return raw[:n], raw[n:], None, None
    return raw[:n], raw[n:], feats[:n], feats[n:]


def _captured(job: CalibrateJob, device: Device, inputs: NDArray, labels: NDArray,
              console: Console, features: bool, fresh_state: bool
              ) -> tuple[NDArray, NDArray | None]:
    """Raw outputs (and features) of every input, captured or resumed in the capture file."""
    store = capture(device, inputs, labels, job.out / "capture.tfcap",
                    features=features, fresh_state=fresh_state, console=console)
    try:
        everything = np.arange(len(inputs))
        raw = raw_outputs(store, device.model, everything)
        return raw, feature_vectors(store, device.model, everything) if features else None
    finally:
        store.close()


def _graph(job: CalibrateJob, device: Device | None) -> ModelGraph | None:
    """The model's graph: the --model file, or the simulated device's bundled model."""
    if job.model is not None:
        return ModelGraph.load(job.model)
    if device is not None and job.port == "sim":
        from tinyfix.twin import default_model

        return ModelGraph.load(default_model())
    return None


def _head(job: CalibrateJob, device: Device | None, core: Core, model: ModelInfo
          ) -> tuple[HeadSource | str, bool]:
    """The model's last layer (or why the head stage cannot replace it), and whether to
    capture feature vectors."""
    head = head_source(_graph(job, device), model,
                       _options(job, device=device).device.max_features)
    if job.features is not None:
        return head, job.features
    return head, device is not None and model.n_features > 0 and isinstance(head, HeadSource)


def _model(job: CalibrateJob, device: Device | None, core: Core) -> ModelInfo:
    """The model's quantization: from the device, else read from the .tflite."""
    if device is not None:
        return device.model
    if job.model is None:
        raise TinyfixError("recorded scores need the model's quantization: give --model or "
                           "--port")
    return ModelGraph.load(job.model).model_info(core)


def fresh_state(job: CalibrateJob, device: Device, console: Console) -> bool:
    """Whether every sample must start from a reset model: the model keeps state between
    invocations (an LSTM's variable tensors, resource variables), as its graph or the
    device says. Samples of a classification set are independent sequences."""
    graph = _graph(job, device)
    offered = bool(device.info.caps & Cap.MODEL_RESET)
    if graph is not None and graph.state and not offered:
        raise TinyfixError(f"{graph.name} keeps state between invocations ({graph.state}), "
                           "and the device cannot reset it: every sample's output would "
                           "depend on the ones sent before it. Flash this release's app "
                           "(its model runner resets such models)")
    if offered:
        what = graph.state if graph is not None and graph.state else "the device says so"
        console.print(f"the model keeps state between invocations ({what}): every sample "
                      "runs from a reset state")
    return offered


def device_limits(device: Device | None, rebuild: bool = False) -> DeviceLimits:
    """The build sizes a set must stay within: the device's, as its INFO reports them,
    unless the firmware is rebuilt for the set (--flash: tinyfix.conf sizes the build)."""
    info = device.info if device is not None else None
    if info is None or rebuild or not info.max_anomaly_window:
        return DeviceLimits()
    return DeviceLimits(max_vote_frames=info.max_window,
                        max_anomaly_window=info.max_anomaly_window,
                        max_features=info.max_features,
                        max_head_weights=info.max_head_weights or None)


def _options(job: CalibrateJob, graph: ModelGraph | None = None,
             device: Device | None = None) -> FitOptions:
    """The fit's options, sized to the device's build when its INFO says (else defaults)."""
    # The simulated device stands in for any build (its core has the host's sizes).
    limits = device_limits(device, rebuild=job.flash or job.port == "sim")
    window = job.window_ms
    if window is None and graph is not None:
        try:
            window = model_window_ms(graph.input.shape, FitOptions.sample_rate_hz)
        except TinyfixError:
            window = None
    return FitOptions(seed=job.seed, target_precision=job.target_precision,
                      target_fa_per_hour=job.target_fa_per_hour,
                      fa_confidence=job.fa_confidence, stream_blocks=job.stream_blocks,
                      target_false_alarm_rate=job.target_false_alarm_rate,
                      head_budget_bytes=job.head_budget_bytes, frame_window_ms=window,
                      device=limits)


Loader = Callable[[Path], datasets.ClassificationData]


def _splits(job: CalibrateJob, load: Loader) -> tuple[datasets.ClassificationData,
                                                      datasets.ClassificationData,
                                                      datasets.ClassificationData]:
    """(all of --data, calibration part, evaluation part): --eval, or a held-out share."""
    data = load(job.data)
    if job.eval is not None:
        return data, data, load(job.eval)
    cal, ev = datasets.split_classification(data, job.eval_fraction, job.seed)
    return data, cal, ev


def _class_names(data: datasets.ClassificationData, ev: datasets.ClassificationData,
                 model: ModelInfo) -> tuple[str, ...]:
    """The model's class names, checked against both sets before any sample is sent."""
    names = data.names_for_model(model.n_classes)
    eval_names = ev.names_for_model(model.n_classes)
    if data.names_given and ev.names_given and eval_names != names:
        raise TinyfixError(f"--eval names the classes {', '.join(eval_names)}, --data "
                           f"{', '.join(names)}")
    return names


def _classification(job: CalibrateJob, device: Device | None, core: Core,
                    console: Console) -> tuple[FitResult, Evaluation, tuple[str, ...], DetCurves]:
    data, cal, ev = _splits(job, datasets.load_classification)
    model = _model(job, device, core)
    names = _class_names(data, ev, model)
    head, want_features = _head(job, device, core, model)
    raw_cal, raw_ev, f_cal, f_ev = _raw_pair(
        job, device, core, cal, ev, np.concatenate([cal.y, ev.y]), console, want_features,
        fresh_state=device is not None and fresh_state(job, device, console))
    reference = _reference(job, device, model)
    ref_cal = ref_ev = None
    if reference is not None:
        if cal.x is None or ev.x is None:
            raise TinyfixError("--reference-model runs the float model on the inputs: --data "
                               "(and --eval) must hold model inputs (x), not recorded scores")
        ref_cal, ref_ev = (run_reference(reference, part.x, console, what)
                           for part, what in ((cal, "calibration"), (ev, "evaluation")))
    result = fit_classification(raw_cal, cal.y, model, _options(job, device=device), core,
                                features=f_cal, head=head,
                                reference=None if ref_cal is None else ref_cal.probs)
    add_monitor(result, raw_cal, cal.x, features=f_cal)
    if reference is not None and ref_cal is not None and ref_ev is not None:
        result.quantization = _quantization_report(
            job, device, core, result, reference, (raw_cal, ref_cal, f_cal, cal.y),
            (raw_ev, ref_ev, f_ev), names, head)
    return result, result.evaluate(raw_ev, ev.y, features=f_ev), names, {}


def _reference(job: CalibrateJob, device: Device | None, model: ModelInfo
               ) -> ReferenceModel | None:
    """The float reference model, checked against the int8 model the device runs."""
    if job.reference_model is None:
        return None
    reference = ReferenceModel.load(job.reference_model)
    graph = _graph(job, device)
    if graph is not None:
        reference.check_graph(graph)
    elif device is not None:
        reference.check_matches(device.info.input.shape, model.outputs, model.kind,
                                "the device's model")
    return reference


def run_reference(reference: ReferenceModel, x: NDArray, console: Console, what: str
                  ) -> ReferenceRun:
    """The float model on `x`, with a progress bar."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(f"float model ({reference.name}) on the {what} inputs",
                            total=len(x))
        return reference.run(x, lambda done: bar.update(task, completed=done))


def _quantization_report(job: CalibrateJob, device: Device | None, core: Core,
                         result: FitResult, reference: ReferenceModel,
                         cal: tuple[NDArray, ReferenceRun, NDArray | None, NDArray],
                         ev: tuple[NDArray, ReferenceRun, NDArray | None],
                         names: tuple[str, ...], head: HeadSource | str
                         ) -> QuantizationReport:
    """The int8 model against the float model on the calibration inputs, and the agreement
    on the evaluation set before and after the fit."""
    raw_cal, ref_cal, f_cal, y_cal = cal
    raw_ev, ref_ev, f_ev = ev
    model = result.model
    graph = _graph(job, device)
    scale, zero_point, note = 0.0, 0, reference.features_match(model.n_features)
    if isinstance(head, HeadSource):
        scale, zero_point = head.feature_scale, head.feature_zero_point
    elif graph is not None and graph.feature is not None:
        scale, zero_point = graph.feature.scale, graph.feature.zero_point
    elif not note:
        note = "the int8 model's feature quantization is not known (give --model)"
    measured = measure(core, model, result.baseline_kind or result.output_kind, raw_cal,
                       ref_cal, names, y_cal, f_cal, scale, zero_point, note)
    evaluation = {"the int8 model as it is": agreement(core, model, result.baseline_params(),
                                                       raw_ev, ref_ev)}
    if result.quantization_params is not None:
        compensated = result.quantization_params
        evaluation["after the quantization stage"] = agreement(
            core, model, compensated, raw_ev, ref_ev,
            f_ev if compensated.c.n_features else None)
    evaluation["the fitted set"] = agreement(core, model, result.params, raw_ev, ref_ev,
                                             f_ev if result.uses_features else None)
    return QuantizationReport(reference.name, measured, evaluation=evaluation)


def _autoencoder(job: CalibrateJob, device: Device | None, core: Core,
                 console: Console) -> tuple[FitResult, Evaluation, tuple[str, ...], DetCurves]:
    """An anomaly detector by reconstruction error: inputs through the device, the
    adaptive threshold fitted on the device's own outputs (scores computed by the C core,
    as the device computes them)."""
    data, cal, ev = _splits(job, datasets.load_anomaly)
    model = _model(job, device, core)
    if device is None:
        raise TinyfixError("an autoencoder is fitted from its inputs and outputs: give --port "
                           "(a device, a pyserial URL, or sim) and inputs (x) in --data")
    assert cal.x is not None and ev.x is not None
    inputs = quantize_inputs(core, model, np.concatenate([cal.x, ev.x]))
    raw, _ = _captured(job, device, inputs, np.concatenate([cal.y, ev.y]), console,
                       features=False, fresh_state=fresh_state(job, device, console))
    n = len(cal)
    result = fit_autoencoder(inputs[:n], raw[:n], cal.y, model, _options(job, device=device),
                             core)
    return result, evaluate_autoencoder(result, inputs[n:], raw[n:], ev.y), data.class_names, {}


def _streaming(job: CalibrateJob, device: Device | None, core: Core,
               console: Console) -> tuple[FitResult, Evaluation, tuple[str, ...], DetCurves]:
    data = datasets.load_streaming(job.data)
    if job.eval is not None:
        cal, ev = data, datasets.load_streaming(job.eval)
    else:
        cal, ev = datasets.split_stream(data, job.eval_fraction)
    no_labels = np.zeros(len(cal) + len(ev), dtype=np.int64)  # streams have no frame labels
    model = _model(job, device, core)
    head, want_features = _head(job, device, core, model)
    raw_cal, raw_ev, f_cal, f_ev = _raw_pair(job, device, core, cal, ev, no_labels, console,
                                             want_features)
    result = fit_streaming(raw_cal, cal.t_ms, cal.events, model, data.background,
                           _options(job, _graph(job, device), device), core, features=f_cal,
                           head=head)
    add_monitor(result, raw_cal, cal.x, features=f_cal)
    console.print(f"operating point: {result.stream_report.point.describe()}")
    evaluation = result.evaluate(raw_ev, t_ms=ev.t_ms, events=ev.events, features=f_ev)
    det = {"calibration": result.stream_report.curves,
           "evaluation": evaluation_curves(result, raw_ev, ev.t_ms, ev.events, f_ev)}
    return result, evaluation, data.class_names, det


def verify_on_device(device: Device, params: Params, inputs: NDArray[np.int8],
                     expected: NDArray, console: Console, fresh_state: bool = False) -> int:
    """Check the device's active set and that its decisions equal the host's predictions;
    returns the number of samples where they differ (`fresh_state`: as captured)."""
    info = device.link.info()
    if info.params_crc != params.crc:
        raise TinyfixError(f"the device reports parameter set 0x{info.params_crc:08x}, "
                           f"expected 0x{params.crc:08x}")
    differ = 0
    for x, want in zip(inputs, expected, strict=True):
        if device.link.infer(x.tobytes(), reset_model=fresh_state).decision != int(want):
            differ += 1
    console.print(f"device check: parameter set 0x{params.crc:08x} active; decisions on "
                  f"{len(inputs)} evaluation samples differ from the host's in {differ}")
    return differ


def push_params(device: Device, params: Params, console: Console) -> None:
    rsp = device.link.set_params(params.encode(), persist=True)
    console.print(f"SET_PARAMS: device now runs 0x{rsp.params_crc:08x}"
                  f"{' (persisted)' if rsp.persisted else ' (not persisted on this device)'}")


def require_west(board: str | None) -> str:
    """The board --flash builds for, once west is there to build it."""
    if shutil.which("west") is None:
        raise TinyfixError("--flash needs west on PATH (a Zephyr workspace)")
    if board is None:
        raise TinyfixError("--flash needs --board, e.g. --board nrf52840dk/nrf52840")
    return board


def run_west(cmd: list[str], out: Path, console: Console) -> None:
    """Run one west command in view; a failure says where the parameter files are."""
    console.print(f"$ {' '.join(cmd)}")
    done = subprocess.run(cmd, check=False)
    if done.returncode != 0:
        raise TinyfixError(f"{cmd[1]} failed with exit code {done.returncode}; the "
                           f"parameter files are in {out}")


def west_flash(job: CalibrateJob, console: Console) -> None:
    board = require_west(job.board)
    overlay, conf = (job.out / "tinyfix.overlay").resolve(), (job.out / "tinyfix.conf").resolve()
    build = ["west", "build", "-b", board, str(job.app), "-d", str(job.out / "build"),
             "--", f"-DEXTRA_DTC_OVERLAY_FILE={overlay}", f"-DEXTRA_CONF_FILE={conf}"]
    for cmd in (build, ["west", "flash", "-d", str(job.out / "build")]):
        run_west(cmd, job.out, console)


def run(job: CalibrateJob, console: Console) -> Outcome:
    core = Core()
    device = None
    if job.port is not None:
        device = open_device(job.port, baud=job.baud, model=job.model, sim_sensor=job.sim_sensor)
        console.print(_device_info_table(device))
    try:
        streaming = datasets.is_streaming_file(job.data)
        kind = _model(job, device, core).kind
        if job.reference_model is not None and (streaming or kind == "autoencoder"):
            raise TinyfixError("--reference-model works on classification data (windows with "
                               f"labels, or fit --unlabeled); {job.data} is "
                               f"{'a stream' if streaming else 'for an autoencoder'}")
        fit = (_autoencoder if kind == "autoencoder" else
               _streaming if streaming else _classification)
        result, evaluation, names, det = fit(job, device, core, console)
        files = params_io.write_outputs(job.out, result.params, names)
        context = {"data": str(job.data), "evaluation": str(job.eval or
                   f"held-out {job.eval_fraction:.0%} of the data"),
                   "device": device.port_name if device else "none (recorded scores)"}
        files += write_report(job.out, result, evaluation, class_names=names, context=context,
                              det=det or None)
        print_summary(console, result, evaluation)
        console.print(f"wrote {', '.join(p.name for p in files)} to {job.out}")
        if device is not None and (job.push or job.flash) and fit is not _streaming:
            if job.flash:
                device.close()
                west_flash(job, console)
                device = _reopen(job)
            else:
                push_params(device, result.params, console)
            _verify_classification(job, device, core, result, evaluation, console)
        return Outcome(result, evaluation, files)
    finally:
        if device is not None:
            device.close()


def _reopen(job: CalibrateJob, attempts: int = 20) -> Device:
    assert job.port is not None
    for _ in range(attempts):
        try:
            return open_device(job.port, baud=job.baud, model=job.model)
        except TinyfixError:
            time.sleep(0.5)  # the board is rebooting and its USB port re-enumerating
    return open_device(job.port, baud=job.baud, model=job.model)


def _verify_classification(job: CalibrateJob, device: Device, core: Core, result: FitResult,
                           evaluation: Evaluation, console: Console) -> None:
    """Every evaluation decision of the device against the host's (the C core's) for the
    same inputs, in order (an autoencoder's adaptive threshold depends on it)."""
    load = (datasets.load_anomaly if result.task == "autoencoder"
            else datasets.load_classification)
    _, _, data = _splits(job, load)
    if data.x is None:
        return
    inputs = quantize_inputs(core, device.model, data.x)
    differ = verify_on_device(device, result.params, inputs, evaluation.predictions["pred"],
                              console, fresh_state(job, device, Console(quiet=True)))
    if differ:
        raise TinyfixError(f"the device decided differently from the host on {differ} samples")
