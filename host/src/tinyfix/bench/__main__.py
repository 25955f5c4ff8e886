# SPDX-License-Identifier: Apache-2.0
"""`python -m tinyfix.bench` (scripts/bench): run the accuracy-repair benchmark, print every
table and whether each target is met, and write them as JSON and markdown.

Targets are reported, never asserted: a missed target prints a `target missed:` line with
its numbers and the exit status stays 0. Errors a user can act on print one `error:` line.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tinyfix.errors import run_command

SCENARIOS = ("classification", "streaming", "anomaly", "reference")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scripts/bench",
        description="TinyFix accuracy-repair benchmark: classification under drift, "
                    "streaming detection, drifting anomaly scores, the float model as a "
                    "reference, and the cost of the correction. Every TinyFix figure runs "
                    "through the C core.")
    p.add_argument("--quick", action="store_true",
                   help="reduced size for CI (same calibration data, shorter evaluation "
                        "streams, fewer timed calls)")
    p.add_argument("--json", type=Path, metavar="PATH", help="write every table's figures")
    p.add_argument("--markdown", type=Path, metavar="PATH",
                   help="write the tables as markdown, with the command and the date")
    p.add_argument("--only", nargs="+",
                   choices=[*SCENARIOS, "cost", "zoo", "stream_targets", "noisy_line",
                            "fleet"],
                   metavar="PART",
                   help=f"run only these parts ({', '.join(SCENARIOS)}, cost, zoo, "
                        "stream_targets, noisy_line, fleet; default: all but fleet, "
                        "stream_targets only at full size; fleet runs when named: 1,000 "
                        "simulated devices, 40 with --quick)")
    p.add_argument("--soak", action="store_true",
                   help="instead: the soak, mixed traffic against the simulated device "
                        "through a noisy line (see --soak-minutes)")
    p.add_argument("--soak-minutes", type=float, default=10.0, metavar="MIN",
                   help="how long the soak runs (default: %(default)s)")
    p.add_argument("--no-upper-bound", action="store_true",
                   help="skip fine-tuning the retraining upper bound (needs TensorFlow)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _header(args: argparse.Namespace, argv: Sequence[str], seconds: float) -> dict[str, Any]:
    return {
        "command": " ".join(["scripts/bench", *(shlex.quote(a) for a in argv)]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick" if args.quick else "full",
        "host": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                f"{platform.python_version()}",
        "seconds": round(seconds, 1),
    }


def run(args: argparse.Namespace, argv: Sequence[str], out: Callable[[str], None]) -> int:
    from tinyfix.bench import (
        anomaly,
        classification,
        cost,
        noisy_line,
        reference,
        streaming,
        table,
        upper_bound,
    )
    from tinyfix.bench.context import FULL, QUICK, Bench

    started = time.monotonic()
    if args.soak:
        from tinyfix.bench import soak

        figures = soak.run(args.soak_minutes * 60, out=out)
        out(soak.markdown(figures))
        if args.json:
            header = _header(args, argv, time.monotonic() - started)
            table.write_json(args.json, {**header, "soak": figures}, [], None)
            out(f"wrote {args.json}")
        return 0
    parts = list(args.only or [*SCENARIOS, "cost", "zoo", "noisy_line",
                               *(() if args.quick else ("stream_targets",))])
    bench = Bench(QUICK if args.quick else FULL)
    out(f"# TinyFix accuracy-repair benchmark ({bench.size.name} size)\n")
    seconds: dict[str, float] = {}
    if not args.no_upper_bound and {"classification", "streaming"} & set(parts):
        t0 = time.monotonic()
        upper_bound.retrain(bench)
        seconds["upper_bound"] = time.monotonic() - t0
        if bench.retrained is None:
            out(f"upper-bound rows skipped: {bench.retrained_skip}\n")
        else:
            log = bench.retrained_log
            out(f"upper bound: fine-tuned the float model on the field calibration windows "
                f"under {log['python']} (TensorFlow {log['tensorflow']}, {log['epochs_run']} "
                f"epochs, best {log['best_epoch']}) and re-quantized it, "
                f"{seconds['upper_bound']:.0f} s\n")
    runners = {"classification": classification.run, "streaming": streaming.run,
               "anomaly": anomaly.run, "reference": reference.run}
    tables = []
    for name in SCENARIOS:
        if name in parts:
            t = runners[name](bench)
            seconds[name] = t.seconds
            tables.append(t)
            out(t.markdown())
    cost_figures = None
    if "cost" in parts:
        t0 = time.monotonic()
        cost_figures = cost.run(bench)
        seconds["cost"] = time.monotonic() - t0
        out(cost.markdown(cost_figures))
    zoo_rows = None
    if "zoo" in parts:
        from tinyfix.bench import zoo

        t0 = time.monotonic()
        zoo_rows = zoo.run_zoo(args.quick)
        seconds["zoo"] = time.monotonic() - t0
        out(zoo.markdown(zoo_rows))
    line_figures = None
    if "noisy_line" in parts:
        t0 = time.monotonic()
        line_figures = noisy_line.run(args.quick)
        seconds["noisy_line"] = time.monotonic() - t0
        out(noisy_line.markdown(line_figures))
    fleet_figures = None
    if "fleet" in parts:
        from tinyfix.bench import fleet

        t0 = time.monotonic()
        fleet_figures = fleet.run(args.quick)
        seconds["fleet"] = time.monotonic() - t0
        out(fleet.markdown(fleet_figures))
    stream_rows = None
    if "stream_targets" in parts:
        from tinyfix.bench import stream_targets

        t0 = time.monotonic()
        stream_rows = stream_targets.run(args.quick, out=lambda line: None)
        seconds["stream_targets"] = time.monotonic() - t0
        out(stream_targets.markdown(stream_rows))
    targets = [tg for t in tables for tg in t.targets]
    if cost_figures is not None:
        targets += [table.Target(**tg) for tg in cost_figures.get("targets", [])]
    if line_figures is not None:
        targets += [table.Target(**tg) for tg in line_figures["targets"]]
    if fleet_figures is not None:
        targets += [table.Target(**tg) for tg in fleet_figures["targets"]]
    summary = [f"### Targets: {sum(tg.met for tg in targets)} met, "
               f"{sum(not tg.met for tg in targets)} missed", "",
               *(f"- {tg.line()}" for tg in targets), ""]
    total = time.monotonic() - started
    seconds["total"] = total
    summary.append("Run time: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
    out("\n".join(summary) + "\n")
    header = _header(args, argv, total)
    header["seconds_by_part"] = {k: round(v, 1) for k, v in seconds.items()}
    header["sizes"] = bench.size.__dict__
    header["upper_bound"] = (bench.retrained_log if bench.retrained is not None
                             else {"skipped": bench.retrained_skip})
    if zoo_rows is not None:
        header["zoo"] = [r.as_dict() for r in zoo_rows]
    if stream_rows is not None:
        header["stream_targets"] = stream_rows
    if line_figures is not None:
        header["noisy_line"] = line_figures
    if fleet_figures is not None:
        header["fleet"] = fleet_figures
    if args.json:
        table.write_json(args.json, header, tables, cost_figures)
        out(f"wrote {args.json}")
    if args.markdown:
        from tinyfix.bench import zoo as zoo_part

        body = "\n".join([*(t.markdown() for t in tables),
                          cost.markdown(cost_figures) if cost_figures else "",
                          zoo_part.markdown(zoo_rows) if zoo_rows is not None else "",
                          noisy_line.markdown(line_figures) if line_figures else "",
                          _fleet_markdown(fleet_figures),
                          "\n".join(summary)])
        table.write_markdown(args.markdown, header, body)
        out(f"wrote {args.markdown}")
    return 0


def _fleet_markdown(figures: dict[str, Any] | None) -> str:
    if figures is None:
        return ""
    from tinyfix.bench import fleet

    return fleet.markdown(figures)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    return run_command(lambda: run(args, argv, lambda text: print(text, flush=True)),
                       args.debug)


if __name__ == "__main__":
    sys.exit(main())
