# SPDX-License-Identifier: Apache-2.0
"""Does a streaming fit's false-accept target hold on new data? (issue 13)

For two kinds of field stream (the demo's, and one with fewer gestures and a noisier
sensor) and three targets (2, 10, 36 false accepts per hour), the fit is given a
calibration stream long enough for the target (1.5x the shortest stream whose 90 %
interval could meet it, at least 20 min) and judged on an unseen 60 min stream: is the
unseen FA/h inside the predicted interval, and does the fitted chain beat
RecognizeCommands' defaults on both axes (no more false accepts and fewer false rejects)?
Every figure runs through TFLM and the C core; calibration streams are consecutive 20 min
recordings of the same drifted device.

    python -m tinyfix.bench.stream_targets [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import poisson

from tinyfix import metrics
from tinyfix.capture import quantize_inputs
from tinyfix.core import Core, ModelInfo
from tinyfix.demo_data import gesture_data as gd
from tinyfix.fit import FitOptions, FloatParams, fit_streaming, quantize
from tinyfix.fit.det_curve import recognize_commands_defaults
from tinyfix.fit.detections import detections_of
from tinyfix.fit.fa_rate import hours_needed
from tinyfix.fit.frame_labels import model_window_ms
from tinyfix.twin import default_model
from tinyfix.twin.model import ModelGraph
from tinyfix.twin.tflm import TflmRunner

CHUNK_S = 1200.0
TARGETS = (2.0, 10.0, 36.0)
KINDS = {"demo field stream": {},
         "fewer gestures, noisier sensor": {"idle_gap_s": (6.0, 20.0), "extra_noise": 0.6}}


@dataclass(frozen=True)
class Recorded:
    raw: NDArray
    t_ms: NDArray[np.int64]
    events: metrics.Events

    def first(self, minutes: float) -> Recorded:
        end = int(self.t_ms[0] + minutes * 60_000)
        keep = self.t_ms < end
        return Recorded(self.raw[keep], self.t_ms[keep], self.events.within(0, end))


def record(core: Core, graph: ModelGraph, model: ModelInfo, seconds: float, seed: int,
           knobs: dict[str, Any]) -> tuple[Recorded, tuple[int, ...]]:
    """Consecutive chunks of a drifted device's field stream, run through TFLM."""
    raws, times, starts, ends, labels = [], [], [], [], []
    offset, background = 0, ()
    for i in range(math.ceil(seconds / CHUNK_S)):
        d = gd.whole_ms(gd.generate_stream("field", min(CHUNK_S, seconds - i * CHUNK_S),
                                           seed + i, **knobs))
        raw, _ = TflmRunner(graph).run(quantize_inputs(core, model, d["x"]))
        raws.append(raw)
        times.append(d["t_ms"] + offset)
        starts.append(d["event_start_ms"] + offset)
        ends.append(d["event_end_ms"] + offset)
        labels.append(d["event_label"])
        names = [str(n) for n in d["class_names"]]
        background = tuple(names.index(str(b)) for b in np.atleast_1d(d["background"]))
        offset = int(times[-1][-1]) + 250
    events = metrics.Events.of(np.concatenate(starts), np.concatenate(ends),
                               np.concatenate(labels))
    return Recorded(np.concatenate(raws), np.concatenate(times), events), background


def score(core: Core, model: ModelInfo, fp: FloatParams, s: Recorded, bg: tuple[int, ...]
          ) -> metrics.StreamScore:
    params, _ = quantize(core, model, fp)
    t, lab = detections_of(core, model, params, s.raw, s.t_ms, bg)
    return metrics.score_detections(t, lab, s.events, metrics.stream_duration_ms(s.t_ms))


def consistent(got: metrics.StreamScore, low: float, high: float, confidence: float) -> bool:
    """The unseen stream's count is itself a Poisson draw: is it inside the range of counts
    the predicted rate interval allows over that stream's length?"""
    hours = got.duration_ms / metrics.MS_PER_HOUR
    tail = (1.0 - confidence) / 2
    return bool(poisson.ppf(tail, low * hours) <= got.false_accepts
                <= poisson.ppf(1.0 - tail, high * hours))


def run(quick: bool, out: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """One row per stream kind and target; `out` gets each row's line as it is done."""
    core = Core()
    graph = ModelGraph.load(default_model())
    model = graph.model_info(core)
    window = model_window_ms(graph.input.shape, 50.0)
    targets = TARGETS[1:] if quick else TARGETS
    test_s = 900.0 if quick else 3600.0
    rows = []
    for k, (kind, knobs) in enumerate(KINDS.items()):
        need_min = max(20.0, 1.5 * 60 * hours_needed(min(targets)))
        calib, bg = record(core, graph, model, need_min * 60, 5000 + 100 * k, knobs)
        test, _ = record(core, graph, model, test_s, 6000 + 100 * k, knobs)
        identity = FloatParams.identity(model.n_classes, "logits", bg)
        rc = score(core, model, identity.replace(vote=recognize_commands_defaults("logits")),
                   test, bg)
        for target in targets:
            minutes = max(20.0, 1.5 * 60 * hours_needed(target))
            cal = calib.first(minutes)
            started = time.monotonic()
            result = fit_streaming(cal.raw, cal.t_ms, cal.events, model, bg,
                                   FitOptions(target_fa_per_hour=target,
                                              frame_window_ms=window), core)
            seconds = time.monotonic() - started
            point = result.stream_report.point
            got = score(core, model, result.float_params, test, bg)
            rows.append({
                "stream": kind, "target": target, "calib_min": minutes,
                "calib_events": len(cal.events), "fit_s": seconds,
                "stages": result.stages_kept,
                "predicted": point.per_hour, "low": point.low, "high": point.high,
                "predicted_frr": point.false_reject_rate,
                "test_fa_per_hour": got.false_accepts_per_hour,
                "test_frr": got.false_reject_rate, "test_events": got.events,
                "test_min": got.duration_ms / 60000,
                "within": point.low <= got.false_accepts_per_hour <= point.high,
                "consistent": consistent(got, point.low, point.high, point.confidence),
                "rc_fa_per_hour": rc.false_accepts_per_hour, "rc_frr": rc.false_reject_rate,
                "beats_rc": (got.false_accepts_per_hour <= rc.false_accepts_per_hour
                             and got.false_reject_rate < rc.false_reject_rate),
            })
            out(_line(rows[-1]))
    return rows


def _line(r: dict[str, Any]) -> str:
    return (f"| {r['stream']} | {r['target']:g} | {r['calib_min']:.0f} min, "
            f"{r['calib_events']} events | {', '.join(r['stages']) or 'none'} | "
            f"{r['predicted']:.1f} ({r['low']:.1f}-{r['high']:.1f}), "
            f"{100 * r['predicted_frr']:.1f}% | {r['test_fa_per_hour']:.1f}, "
            f"{100 * r['test_frr']:.1f}% ({r['test_min']:.0f} min, {r['test_events']} events)"
            f" | {'yes' if r['within'] else 'no'} | {'yes' if r['consistent'] else 'NO'} | "
            f"{r['rc_fa_per_hour']:.1f}, "
            f"{100 * r['rc_frr']:.1f}% | {'yes' if r['beats_rc'] else 'no'} | "
            f"{r['fit_s']:.0f} s |")


HEADER = ("| stream | target FA/h | calibration | stages | predicted FA/h (90% interval), "
          "false rejects | unseen stream: FA/h, false rejects | FA/h inside the interval | "
          "count consistent with it | RecognizeCommands defaults (unseen) | beats it on both "
          "axes | fit time |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def summary(rows: list[dict[str, Any]]) -> str:
    held = sum(r["test_fa_per_hour"] <= r["target"] for r in rows)
    return (f"{sum(r['within'] for r in rows)} of {len(rows)} unseen false-accept rates "
            f"inside the predicted interval, {sum(r['consistent'] for r in rows)} of "
            f"{len(rows)} unseen counts consistent with it (within the counts the interval "
            f"allows over the unseen stream's length); {held} of {len(rows)} at or below "
            f"their target; "
            f"{sum(r['beats_rc'] for r in rows)} of {len(rows)} beat RecognizeCommands' "
            "defaults on both axes")


def markdown(rows: list[dict[str, Any]]) -> str:
    title = "### Streaming: do false-accept targets hold on unseen streams?"
    return "\n".join([title, "", (__doc__ or "").split("\n\n")[1].replace("\n", " "), "",
                      HEADER, *(_line(r) for r in rows), "", summary(rows), ""])


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tinyfix.bench.stream_targets",
                                description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="targets 10 and 36 only, a 15 min unseen stream")
    p.add_argument("--json", type=Path, help="write the rows here")
    args = p.parse_args(argv)
    print(HEADER, flush=True)
    rows = run(args.quick, out=lambda line: print(line, flush=True))
    print("\n" + summary(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
