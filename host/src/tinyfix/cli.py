# SPDX-License-Identifier: Apache-2.0
"""`tinyfix` command line: each subcommand a small function over the library.

Errors a user can act on are TinyfixError: printed as one `error:` line, exit code from the
error (1 by default). Ctrl-C exits 130. Tracebacks only with --debug.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from tinyfix import __version__
from tinyfix.device import DEFAULT_BAUD
from tinyfix.errors import TinyfixError, run_command

if TYPE_CHECKING:
    from tinyfix.calibrate import CalibrateJob
    from tinyfix.capture_job import CaptureJob


def _port_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--port", required=required,
                   help="serial device (/dev/ttyACM0, COM3), any pyserial URL (socket://, "
                        "rfc2217://, loop://), or 'sim' for the built-in simulated device")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD,
                   help="baud rate of a serial port (default: %(default)s)")


def _device_args(p: argparse.ArgumentParser) -> None:
    """--port (the lab link) or --smp (MCUmgr), one of them."""
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port",
                       help="serial device (/dev/ttyACM0, COM3), any pyserial URL (socket://, "
                            "rfc2217://, loop://), or 'sim' for the built-in simulated device")
    where.add_argument("--smp", metavar="URL",
                       help="the device's TinyFix MCUmgr group instead of the lab link: "
                            "serial:///dev/ttyACM0, udp://HOST[:PORT] or ble://NAME")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD,
                   help="baud rate of a serial port (default: %(default)s)")


def _fit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path,
                   help="the int8 .tflite on the device; the device must report its CRC "
                        "(with --port sim: the model the simulated device runs; default: the "
                        "bundled demo model)")
    p.add_argument("--data", type=Path,
                   help="labelled calibration data (required unless fit --unlabeled): "
                        "classification .npz (x, y), a folder with one "
                        "file or folder per class, or a streaming .npz (t_ms, x or scores, "
                        "events); see README")
    p.add_argument("--eval", type=Path,
                   help="separate evaluation set in the same format (default: hold out "
                        "--eval-fraction of --data)")
    p.add_argument("--eval-fraction", type=float, default=0.3,
                   help="share of --data held out for evaluation without --eval "
                        "(default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("tinyfix-out"),
                   help="folder for params.yaml, tinyfix.overlay, tinyfix.conf, the report "
                        "and the capture file (default: %(default)s)")
    p.add_argument("--target-precision", type=float,
                   help="classification: per-class confidence thresholds reaching this "
                        "precision (off by default)")
    p.add_argument("--target-fa-per-hour", type=float, default=2.0,
                   help="streaming: most false accepts per hour while false rejects are "
                        "minimised: the upper end of the rate's --fa-confidence interval, "
                        "cross-validated over the calibration stream (default: %(default)s)")
    p.add_argument("--fa-confidence", type=float, default=0.9,
                   help="streaming: confidence of the false-accept rate's interval "
                        "(default: %(default)s)")
    p.add_argument("--stream-blocks", type=int, default=5,
                   help="streaming: contiguous time blocks the calibration stream is "
                        "cross-validated over (default: %(default)s)")
    p.add_argument("--target-false-alarm-rate", type=float, default=0.01,
                   help="autoencoders: most normal windows flagged as anomalies "
                        "(default: %(default)s)")
    p.add_argument("--features", action=argparse.BooleanOptionalAction, default=None,
                   help="capture the model's penultimate features for the last-layer re-fit "
                        "(default: yes when the device reports a feature tensor and the "
                        "model's last layer can be read from its .tflite)")
    p.add_argument("--head-budget-bytes", type=int,
                   help="most bytes the re-fitted last layer may take in the parameter set: "
                        "the whole layer when it fits, else a residual on the model's own "
                        "outputs from its most useful features (default: a quarter of the "
                        "model's own layer, at least 1024)")
    p.add_argument("--window-ms", type=int,
                   help="streaming: the model's input window in ms, to label frames from "
                        "event times for the stages before voting (default: input time "
                        "steps at 50 Hz)")
    p.add_argument("--reference-model", type=Path, metavar="FLOAT_TFLITE",
                   help="the float .tflite the int8 model was converted from: measure where "
                        "quantization costs accuracy and fit a 'quantization' stage to the "
                        "float model's outputs (classification; with fit --unlabeled: its "
                        "outputs label the field data)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data splits")
    p.add_argument("--sim-sensor", choices=["lab", "field"], default="field",
                   help="drift profile of the simulated device's sensor (default: %(default)s)")


def _job(args: argparse.Namespace, port: str | None, **device_options: object) -> CalibrateJob:
    """The fit options every fitting command shares, from its parsed arguments."""
    from tinyfix.calibrate import CalibrateJob

    return CalibrateJob(
        data=args.data, out=args.out, port=port, model=args.model, eval=args.eval,
        eval_fraction=args.eval_fraction, seed=args.seed, features=args.features,
        target_precision=args.target_precision, target_fa_per_hour=args.target_fa_per_hour,
        fa_confidence=args.fa_confidence, stream_blocks=args.stream_blocks,
        target_false_alarm_rate=args.target_false_alarm_rate,
        sim_sensor=args.sim_sensor, head_budget_bytes=args.head_budget_bytes,
        window_ms=args.window_ms, reference_model=args.reference_model,
        **device_options)  # type: ignore[arg-type]


def _capture_args(p: argparse.ArgumentParser) -> None:
    """What a guided capture session records (tinyfix capture, calibrate --capture)."""
    p.add_argument("--classes",
                   help="the model's class names, comma-separated, in output order "
                        "(default: the demo's on --port sim, else 0, 1, ...)")
    p.add_argument("--windows", default="20",
                   help="windows per class (e.g. 20), or per named class "
                        "(idle=180,wave=60,...); with --unlabeled: in all "
                        "(default: %(default)s)")
    p.add_argument("--label",
                   help="capture only this class now (another run adds the others); with "
                        "--stream: the class Enter starts an event of")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--stream", action="store_true",
                      help="record consecutive windows for --seconds; keys mark events "
                           "(1-9: start an event of that class, Space: end it)")
    mode.add_argument("--unlabeled", action="store_true", dest="capture_unlabeled",
                      help="record windows without labels (for fit --unlabeled)")
    p.add_argument("--seconds", type=float, default=60.0,
                   help="with --stream: how long to record, in device time "
                        "(default: %(default)s)")
    p.add_argument("--background",
                   help="with --stream: classes that are never events, comma-separated "
                        "(default: the demo's idle and unknown where the model has them)")
    p.add_argument("--auto", action="store_true",
                   help="keep every window without asking (unattended)")
    p.add_argument("--keys", help=argparse.SUPPRESS)  # a fixed key sequence (tests)


def _capture_job(args: argparse.Namespace, out: Path) -> CaptureJob:
    from tinyfix.capture_job import CaptureJob

    def names(text: str | None) -> tuple[str, ...] | None:
        return None if text is None else tuple(n.strip() for n in text.split(",") if n.strip())

    mode = "stream" if args.stream else "unlabeled" if args.capture_unlabeled else "windows"
    return CaptureJob(port=args.port, out=out, baud=args.baud, model=args.model,
                      classes=names(args.classes), windows=args.windows, label=args.label,
                      mode=mode, seconds=args.seconds, background=names(args.background),
                      auto=args.auto, keys=args.keys, features=args.features,
                      sim_sensor=args.sim_sensor)


def cmd_capture(args: argparse.Namespace, console: Console) -> int:
    from tinyfix.capture_job import run_capture

    if args.smp is not None:
        from tinyfix.smp import commands

        if not args.capture_unlabeled:
            raise TinyfixError("--smp records the windows the device classifies on its own, "
                               "without labels: add --unlabeled (and --windows N)")
        if not args.windows.isdigit():
            raise TinyfixError("--smp --unlabeled takes --windows N (windows in all)")
        commands.capture(args.smp, int(args.windows), args.out, console, args.features)
        return 0
    run_capture(_capture_job(args, args.out), console)
    return 0


def cmd_calibrate(args: argparse.Namespace, console: Console) -> int:
    from tinyfix.calibrate import run

    if args.smp is not None:
        return _calibrate_over_smp(args, console)
    if args.capture:
        from tinyfix.capture_job import run_capture

        if args.data is not None:
            raise TinyfixError("--capture records the data: give --capture or --data, not both")
        if args.capture_unlabeled:
            raise TinyfixError("calibrate --capture fits labelled windows or a stream; "
                               "record unlabeled data with tinyfix capture --unlabeled")
        args.data = run_capture(_capture_job(args, args.out / "capture.npz"), console)
    if args.data is None:
        raise TinyfixError("calibrate needs --data (or --capture to record it first)")
    if args.flash and args.board is None:
        raise TinyfixError("--flash needs --board")
    run(_job(args, args.port, baud=args.baud, board=args.board, app=args.app,
             flash=args.flash, push=args.push), console)
    return 0


def _calibrate_over_smp(args: argparse.Namespace, console: Console) -> int:
    from tinyfix.smp.calibrate import SmpCalibrateJob, run
    from tinyfix.unlabeled_job import UnlabeledJob

    if args.capture or args.stream:
        raise TinyfixError("--smp records the windows the device classifies on its own, "
                           "without labels: leave out --capture/--stream (--data, if given, "
                           "is the labelled lab reference of the label-free fit)")
    if not args.windows.isdigit():
        raise TinyfixError("--smp takes --windows N (windows to capture in all)")
    if args.flash and args.board is None:
        raise TinyfixError("--flash needs --board")
    # --data is the lab reference of the label-free fit of what the device captures.
    fit = UnlabeledJob(args.out / "capture.npz", args.out, args.model, args.data, args.eval,
                       reference_model=args.reference_model)
    run(SmpCalibrateJob(args.smp, int(args.windows), fit, push=args.push, flash=args.flash,
                        board=args.board, app=args.app), console)
    return 0


def cmd_fit(args: argparse.Namespace, console: Console) -> int:
    """Offline: recorded scores, or inputs run through the simulated device."""
    from tinyfix import datasets
    from tinyfix.calibrate import run

    if args.unlabeled is not None:
        from tinyfix.unlabeled_job import UnlabeledJob, run_unlabeled

        if args.data is not None:
            raise TinyfixError("--unlabeled fits without labels: give --data or --unlabeled, "
                               "not both")
        run_unlabeled(UnlabeledJob(args.unlabeled, args.out, args.model, args.reference_data,
                                   args.eval, args.unlabeled_set, args.reference_model),
                      console)
        return 0
    if args.data is None:
        raise TinyfixError("fit needs --data (labelled) or --unlabeled")
    stream = datasets.is_streaming_file(args.data)
    data = datasets.load_streaming(args.data) if stream else datasets.load_classification(
        args.data)
    port = None if data.scores is not None else "sim"
    if port is None and args.model is None:
        raise TinyfixError("recorded scores need --model (the .tflite they came from)")
    run(_job(args, port), console)
    return 0


def cmd_replay(args: argparse.Namespace, console: Console) -> int:
    """Run a parameter set through the C core over windows or a stream."""
    from tinyfix.replay import replay

    replay(args.params, args.model, args.data, args.show, console)
    return 0


def cmd_info(args: argparse.Namespace, console: Console) -> int:
    from tinyfix.calibrate import _device_info_table
    from tinyfix.device import open_device

    if args.smp is not None:
        import zlib

        from tinyfix.smp import commands

        crc = None if args.model is None else zlib.crc32(args.model.read_bytes())
        commands.info(args.smp, console, crc)
        return 0
    with open_device(args.port, baud=args.baud, model=args.model) as device:
        console.print(_device_info_table(device))
        stats = device.link.device_stats()
        console.print(stats)
    return 0


def cmd_push(args: argparse.Namespace, console: Console) -> int:
    from tinyfix import params_io
    from tinyfix.calibrate import push_params
    from tinyfix.core import Core
    from tinyfix.device import open_device

    if args.smp is not None:
        from tinyfix.smp import commands

        # The device checks the set's model CRC and its ranges itself, as SET_PARAMS does.
        commands.push(args.smp, params_io.read_params_yaml(args.params, Core()).encode(),
                      console)
        return 0
    with open_device(args.port, baud=args.baud) as device:
        params = params_io.read_params_yaml(args.params, Core(), device.model)
        push_params(device, params, console)
    return 0


def cmd_monitor(args: argparse.Namespace, console: Console) -> int:
    from tinyfix import params_io
    from tinyfix.core import Core
    from tinyfix.device import open_device
    from tinyfix.monitor import watch

    if args.smp is not None:
        from tinyfix.smp import commands

        if args.params is not None or args.drive is not None:
            raise TinyfixError("--smp watches STATS only: --params and --drive need --port")
        commands.monitor(args.smp, console, args.interval, args.count)
        return 0
    with open_device(args.port, baud=args.baud, sim_sensor=args.drive or "field") as device:
        params = None
        if args.params is not None:
            params = params_io.read_params_yaml(args.params, Core(), device.model)
        watch(device, console, params=params, drive=args.drive, interval=args.interval,
              count=args.count)
    return 0


def _cluster_args(p: argparse.ArgumentParser, what: str, workers_default: str) -> None:
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help=f"{what} on this Dask cluster (its workers need tinyfix installed) "
                        "instead of a LocalCluster on this machine")
    p.add_argument("--workers", type=int,
                   help="worker processes of the LocalCluster (default: "
                        f"{workers_default})")


def cmd_fleet_fit(args: argparse.Namespace, console: Console) -> int:
    from tinyfix.fleet.device_fit import FitSettings
    from tinyfix.fleet.fit import FleetFitJob, fit_fleet

    if args.scheduler is not None and args.workers is not None:
        raise TinyfixError("--workers sizes a LocalCluster; with --scheduler the cluster "
                           "has its own workers")
    if not 0.0 < args.eval_fraction < 1.0:
        raise TinyfixError(f"--eval-fraction must be in (0, 1), got {args.eval_fraction}")
    settings = FitSettings(eval_fraction=args.eval_fraction, seed=args.seed,
                           target_precision=args.target_precision)
    outcome = fit_fleet(FleetFitJob(args.captures, args.out, args.scheduler, args.workers,
                                    args.model, args.reference, settings), console)
    return 0 if outcome.summary["fitted"] else 1


def cmd_fleet_simulate(args: argparse.Namespace, console: Console) -> int:
    from tinyfix.fleet.simulate import SimulationSpec, simulate_fleet

    spec = SimulationSpec(devices=args.devices, out=args.out,
                          labelled_fraction=args.labelled_fraction, samples=args.samples,
                          seed=args.seed, max_drift=args.max_drift)
    if args.samples < 10:
        raise TinyfixError(f"--samples must be at least 10, got {args.samples}")
    if args.scheduler is None and not args.workers:
        simulate_fleet(spec, console)
        return 0
    from tinyfix.fleet.cluster import dask_client

    with dask_client(args.scheduler, args.workers) as client:
        simulate_fleet(spec, console, client)
    return 0


def cmd_fleet_collect(args: argparse.Namespace, console: Console) -> int:
    from tinyfix.fleet.collect import CollectJob, collect_fleet
    from tinyfix.fleet.push import Targets, default_smp
    from tinyfix.twin import default_model

    if args.smp_map is not None:
        if args.ids is not None:
            raise TinyfixError("--ids goes with --smp; the map names its devices")
        targets = Targets.from_map(args.smp_map)
        assert targets.mapping is not None
        ids = list(targets.mapping)
    else:
        if not args.ids:
            raise TinyfixError("--smp URL_TEMPLATE needs --ids a,b,c")
        targets, ids = Targets(template=args.smp), [i.strip() for i in args.ids.split(",")]
    counts = collect_fleet(CollectJob(args.out, ids, targets, args.windows,
                                      args.model or default_model(), args.reference,
                                      args.again), default_smp(), console)
    return 0 if counts["failed"] == 0 else 3


def cmd_fleet_push(args: argparse.Namespace, console: Console) -> int:
    from tinyfix.fleet import urls
    from tinyfix.fleet.push import PushJob, Targets, default_smp, push_fleet

    targets = (Targets.from_map(args.smp_map) if args.smp_map is not None
               else Targets(template=args.smp))
    log = args.log
    if log is None:
        if not urls.is_local(args.fits):
            raise TinyfixError("--fits is not a local folder: give --log (a local file the "
                               "push appends to)")
        log = Path(urls.local_path(args.fits)) / "push.jsonl"
    push_fleet(PushJob(args.fits, targets, log, args.retry_refused, args.label_free),
               default_smp(), console)
    return 0


def _fleet_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    fleet = sub.add_parser("fleet", help="many devices: simulate a fleet, fit every device "
                                         "on Dask, push the sets over SMP (docs/fleet.md)")
    cmds = fleet.add_subparsers(dest="fleet_command", required=True)

    p = cmds.add_parser("fit", help="fit every device of a fleet folder on a Dask cluster, "
                                    "write one parameter set per device and a fleet report")
    p.add_argument("--captures", required=True, metavar="URL",
                   help="the fleet folder (fleet.yaml, manifests, captures): a path or any "
                        "fsspec URL (s3://, gs://, ... with their fsspec backends installed)")
    p.add_argument("--out", required=True, metavar="URL",
                   help="where devices/<id>/params.yaml and result.json, fleet.json, "
                        "report.md and the plots go (path or fsspec URL)")
    _cluster_args(p, "fit", "the CPU count")
    p.add_argument("--model", metavar="URL",
                   help="the int8 .tflite the devices run (default: fleet.yaml's)")
    p.add_argument("--reference", metavar="URL",
                   help="manifest of a labelled lab capture of the model, the drift "
                        "reference (default: fleet.yaml's)")
    p.add_argument("--eval-fraction", type=float, default=0.3,
                   help="share of a labelled capture held out for the before/after figures "
                        "(default: %(default)s)")
    p.add_argument("--target-precision", type=float,
                   help="per-class confidence thresholds reaching this precision (labelled "
                        "devices; off by default)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data splits")
    p.set_defaults(func=cmd_fleet_fit)

    p = cmds.add_parser("simulate", help="write a fleet of simulated devices (the twin with "
                                         "per-device sensor drift), with manifests")
    p.add_argument("--devices", type=int, required=True, metavar="N")
    p.add_argument("--out", required=True, metavar="URL", help="the fleet folder to write")
    p.add_argument("--labelled-fraction", type=float, default=0.25,
                   help="share of devices whose capture is labelled (default: %(default)s)")
    p.add_argument("--samples", type=int, default=300, metavar="K",
                   help="captured windows per device (default: %(default)s)")
    p.add_argument("--max-drift", type=float, default=2.0,
                   help="largest drift factor of a device's sensor, 1 being one field "
                        "device's tolerances (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the whole fleet")
    _cluster_args(p, "simulate", "none: in this process")
    p.set_defaults(func=cmd_fleet_simulate)

    p = cmds.add_parser("collect", help="capture every device over SMP into a fleet folder "
                                        "(manifests and captures that fleet fit reads)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--smp-map", type=Path, metavar="FILE",
                       help="YAML or JSON mapping each device id to its SMP URL")
    where.add_argument("--smp", metavar="URL_TEMPLATE",
                       help="SMP URL of every device with {device_id} filled in (with --ids)")
    p.add_argument("--ids", help="with --smp: the device ids, comma-separated")
    p.add_argument("--windows", type=int, default=300, metavar="N",
                   help="windows each device captures (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="URL", help="the fleet folder to write")
    p.add_argument("--model", type=Path,
                   help="the int8 .tflite the devices run (default: the bundled demo model)")
    p.add_argument("--reference", metavar="URL",
                   help="manifest of a labelled lab capture, written into fleet.yaml as the "
                        "drift reference")
    p.add_argument("--again", action="store_true",
                   help="capture devices the folder already has again")
    p.set_defaults(func=cmd_fleet_collect)
    p = cmds.add_parser("push", help="send each fitted device its set over SMP, resumable")
    p.add_argument("--fits", required=True, metavar="URL",
                   help="the --out of fleet fit (fleet.json, devices/<id>/params.yaml)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--smp-map", type=Path, metavar="FILE",
                       help="YAML or JSON mapping each device id to its SMP URL")
    where.add_argument("--smp", metavar="URL_TEMPLATE",
                       help="SMP URL of every device with {device_id} filled in, e.g. "
                            "udp://{device_id}.local:1337")
    p.add_argument("--log", type=Path,
                   help="the push log (JSON lines, appended; a rerun skips what it says "
                        "is done) (default: <fits>/push.jsonl for a local --fits)")
    p.add_argument("--retry-refused", action="store_true",
                   help="send again the sets devices refused before")
    p.add_argument("--label-free", action="store_true",
                   help="also send the label-free sets of unlabeled devices (held back by "
                        "default: nothing checked them, and under sensor drift the prior "
                        "shift costs accuracy)")
    p.set_defaults(func=cmd_fleet_push)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tinyfix", description=__doc__.split("\n")[0])
    top.add_argument("--version", action="version", version=f"tinyfix {__version__}")
    top.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("calibrate", help="capture from a device, fit, write overlay and report")
    _device_args(p)
    _fit_args(p)
    p.add_argument("--capture", action="store_true",
                   help="first record the data from the device's own sensor in a guided "
                        "session (as tinyfix capture, into <out>/capture.npz), then fit it")
    _capture_args(p)
    p.add_argument("--board", help="west board for --flash, e.g. nrf52840dk/nrf52840")
    p.add_argument("--app", type=Path, default=Path("app"),
                   help="application folder for --flash (default: %(default)s)")
    deliver = p.add_mutually_exclusive_group()
    deliver.add_argument("--flash", action="store_true",
                         help="rebuild with the overlay and conf, flash, and check on the device "
                              "(with --smp: a sysbuild MCUboot image delivered over SMP, "
                              "confirmed only when it reports the new set, else rolled back)")
    deliver.add_argument("--push", action="store_true",
                         help="send the parameters with SET_PARAMS (with --smp: the group's "
                              "PARAMS write), persisted, and check")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("fit", help="fit offline from recorded scores or the simulated device")
    _fit_args(p)
    p.add_argument("--unlabeled", type=Path,
                   help="label-free: field captures (.npz with x or scores; labels unread) "
                        "to adapt to: class priors by EM and an input correction")
    p.add_argument("--reference-data", type=Path,
                   help="with --unlabeled: labelled lab data (.npz with x, y) to calibrate "
                        "the outputs and to match input statistics to")
    p.add_argument("--unlabeled-set",
                   choices=["auto", "prior", "inputs", "both", "teacher", "teacher+inputs"],
                   default="auto",
                   help="with --unlabeled: the set to write (default: %(default)s: with "
                        "--reference-model the teacher-labelled chain, on corrected inputs "
                        "when there is an input correction; else the input correction when "
                        "there are inputs, else the prior shift)")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("capture", help="record labelled windows (or a stream) from the "
                                       "device's own sensor, guided, into a data set")
    _device_args(p)
    p.add_argument("--out", type=Path, required=True, metavar="DATA.npz",
                   help="the data set to write; the session file DATA.tfsession beside it "
                        "keeps every kept window, and the same command resumes it")
    p.add_argument("--model", type=Path,
                   help="check the device runs this .tflite (with --port sim: the model it "
                        "runs)")
    p.add_argument("--features", action=argparse.BooleanOptionalAction, default=None,
                   help="also record the model's feature vectors (default: when the device "
                        "reports a feature tensor)")
    p.add_argument("--sim-sensor", choices=["lab", "field"], default="field",
                   help="drift profile of the simulated device's sensor (default: %(default)s)")
    _capture_args(p)
    p.set_defaults(func=cmd_capture)

    p = sub.add_parser("replay", help="run params.yaml through the C core over windows "
                                      "(decisions) or a stream (detections)")
    p.add_argument("--params", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True, help="the int8 .tflite")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--show", type=int, default=20, help="rows to print (default: %(default)s)")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("info", help="show what a device reports")
    _device_args(p)
    p.add_argument("--model", type=Path, help="also check the device runs this model")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("monitor", help="watch the device's drift monitor live")
    _device_args(p)
    p.add_argument("--params", type=Path,
                   help="first apply this params.yaml (not persisted), e.g. a fit with the "
                        "monitor's references")
    p.add_argument("--drive", choices=["lab", "field"],
                   help="also stream generated demo windows from a lab or drifted sensor")
    p.add_argument("--interval", type=float, default=0.5,
                   help="seconds between polls (default: %(default)s)")
    p.add_argument("--count", type=int, help="stop after this many polls")
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser("push", help="send params.yaml to a device at run time (SET_PARAMS)")
    _device_args(p)
    p.add_argument("--params", type=Path, required=True)
    p.set_defaults(func=cmd_push)

    _fleet_parsers(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    console = Console()
    return run_command(lambda: args.func(args, console), args.debug)


if __name__ == "__main__":
    sys.exit(main())
