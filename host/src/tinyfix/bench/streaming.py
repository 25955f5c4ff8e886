# SPDX-License-Identifier: Apache-2.0
"""Scenario 2: streaming gesture detection on continuous field streams.

One inference every 250 ms on the newest 1.28 s of a continuous accelerometer stream
(gesture_data.generate_stream): gestures over idle hand-holding and unrelated motion.
Three detectors, every one run by the C core frame by frame:

- raw top-1 transitions: a detection each time the top class becomes a gesture ("before",
  as issue 5 defines it);
- RecognizeCommands-style voting with micro_speech's defaults (1000 ms average, threshold
  200/256, 3 frames, 1500 ms suppression) on the uncorrected softmax;
- TinyFix: the classification correction fitted on the labelled field windows, then voting
  tuned by fit_streaming on a separate field calibration stream for a false-accept target.
  Two operating points: the fit's default target (2 false accepts per hour), and one fifth
  of the raw detector's false-accept rate on the calibration stream (the target's own
  operating point: five times fewer false accepts, as few misses as possible).
- TinyFix with the model's feature vectors (issue 9), at both operating points: the same fit
  given the stream's features and the model's last layer, which tries a head re-fitted on
  frame labels from the event times (fit.frame_labels, over the model's 1.28 s input
  window) as one more chain before voting, kept only if it wins the cross-validation;
  and the scenario-1 fit with the features (its re-fitted head, from the labelled windows)
  with voting tuned after it.

Every streaming fit is cross-validated over contiguous time blocks of its calibration
stream (fit.streaming) and predicts its false-accept rate with a 90 % interval. Targets:
the 5x rows below, and no more false accepts and fewer false rejects than
RecognizeCommands' defaults at the 2 FA/h operating point.

Target: at least 5x fewer false accepts than raw top-1 at an equal or lower false-reject
rate. A detection is a hit if it names the class of an event it falls in (up to 1 s after
the event's end); anything else is a false accept.
"""

from __future__ import annotations

import time

from tinyfix import metrics
from tinyfix.bench.context import BACKGROUND, STREAM_FIELD_CALIB_SEED, Bench, Model
from tinyfix.bench.table import Column, Row, Table, Target, ratio
from tinyfix.core import Params
from tinyfix.fit import (
    FitOptions,
    FitResult,
    FloatParams,
    HeadSource,
    VoteSettings,
    fit_streaming,
    quantize,
)
from tinyfix.fit.detections import detections_of
from tinyfix.fit.quantize import STAGE

FA_RATIO_TARGET = 5.0
DEFAULT_TARGET_FA_PER_HOUR = FitOptions().target_fa_per_hour
COLUMNS = [
    Column("false_accepts_per_hour", "false accepts / h", "rate"),
    Column("false_reject_rate", "false-reject rate", "percent"),
    Column("false_accepts", "false accepts", "count"),
    Column("hits", "hits", "count"),
    Column("events", "events", "count"),
]
IDENTITY_VIA = "TFLM + C core, identity set"
DEFAULT_VOTE_VIA = "TFLM + C core, vote stage at defaults"
FITTED_VIA = "TFLM + C core, fitted set"
FEATURES_VIA = "TFLM (outputs + features) + C core, fitted set"


def _figures(s: metrics.StreamScore) -> dict[str, float]:
    return {**s.as_dict(), "false_accepts": float(s.false_accepts), "hits": float(s.hits),
            "events": float(s.events)}


def _score(bench: Bench, model: Model, params: Params, key: str) -> metrics.StreamScore:
    """Detections of `params` on a stream, with the model's feature vectors when the set
    re-fits the last layer (as the device runs it)."""
    stream = bench.stream(key)
    raw = bench.raw(model, f"stream:{key}")
    feats = (bench.features(model, f"stream:{key}") if params.c.flags & STAGE["head"]
             else None)
    t, label = detections_of(bench.core, model.info, params, raw, stream.t_ms, BACKGROUND,
                             feats)
    return metrics.score_detections(t, label, stream.events,
                                    metrics.stream_duration_ms(stream.t_ms))


def _data(bench: Bench, key: str) -> str:
    s = bench.stream(key)
    where = "lab" if key == "lab" else "field test"
    return f"{where} stream ({s.minutes:.0f} min)"


def default_vote_params(bench: Bench, model: Model) -> Params:
    fp = FloatParams.identity(model.info.n_classes, "logits", BACKGROUND)
    return quantize(bench.core, model.info, fp.replace(vote=VoteSettings()))[0]


def _row(bench: Bench, name: str, model: Model, key: str, params: Params, method: str,
         via: str, role: str = "") -> Row:
    return Row(name, model.label, _data(bench, key), method,
               _figures(_score(bench, model, params, key)), via, role)


def fit(bench: Bench, model: Model, target_fa_per_hour: float,
        start: FloatParams | None, *, features: bool = False,
        head: HeadSource | str | None = None) -> FitResult:
    """Voting (after `start`'s correction, if given) tuned on the field calibration stream;
    with `features`, the stream's feature vectors go to the fit (needed by a start that
    re-fits the last layer), and with `head` the fit also tries re-fitting that layer on
    frame labels over the model's input window."""
    cal = bench.stream("field_calib")
    feats = bench.features(model, "stream:field_calib") if features else None
    return fit_streaming(bench.raw(model, "stream:field_calib"), cal.t_ms, cal.events,
                         model.info, BACKGROUND,
                         FitOptions(target_fa_per_hour=target_fa_per_hour,
                                    frame_window_ms=bench.window_ms),
                         bench.core, start=start, features=feats, head=head)


def _vote_text(result: FitResult) -> str:
    v = result.float_params.vote
    if v is None:
        return "top-1 (voting not kept)"
    return (f"voting: {v.window_ms} ms {v.mode}, ≥ {v.min_count} frames, threshold "
            f"{v.threshold}/256, suppression {v.suppression_ms} ms")


def _fitted_row(bench: Bench, name: str, model: Model, result: FitResult,
                start: FitResult | None, role: str, tinyfix: bool = True) -> Row:
    """A fitted set on the field test stream; `start` is the classification fit whose
    correction it starts from (None: voting on the raw outputs)."""
    score = _score(bench, model, result.params, "field_test")
    before = () if start is None else tuple(start.stages_kept)
    own = tuple(result.stages_kept)
    if "head" in own:  # a head fitted on the stream replaces the start's correction
        before = ()
    stages = before + own
    corrected = ", ".join(s for s in stages if s != "vote")
    return Row(name, model.label, _data(bench, "field_test"),
               (f"corrected ({corrected}), " if corrected else "") + _vote_text(result),
               _figures(score), FEATURES_VIA if result.uses_features else FITTED_VIA, role,
               tinyfix=tinyfix, params_crc=result.params.crc, stages=stages)


def _head_note(result: FitResult, point: str) -> str:
    head = next(s for s in result.stages if s.name == "head")
    if not head.before or not head.after:
        return f"head re-fit on frame labels, {point}: not tried: {head.reason}"
    b, a = head.before, head.after
    detail = head.reason.split("; ", 1)[1].split("; flash")[0] if "; " in head.reason else ""
    return (f"head re-fit on frame labels, {point}: {'kept' if head.kept else 'not kept'}; "
            f"cross-validated on the calibration stream, the starting set with its voting "
            f"gives "
            f"{b['false_accepts_per_hour']:.1f} false accepts/h, false-reject rate "
            f"{100 * b['false_reject_rate']:.1f}%, the head with voting tuned after it "
            f"{a['false_accepts_per_hour']:.1f}/h, {100 * a['false_reject_rate']:.1f}% "
            f"({int(a['events'])} events); {detail}")


def calib_raw_fa_per_hour(bench: Bench) -> float:
    return _score(bench, bench.int8, bench.int8.identity(bench.core, BACKGROUND),
                  "field_calib").false_accepts_per_hour


def _target(name: str, before: dict[str, float], after: dict[str, float]) -> Target:
    fa = ratio(before["false_accepts_per_hour"], after["false_accepts_per_hour"])
    frr_ok = after["false_reject_rate"] <= before["false_reject_rate"]
    return Target(name, f"≥ {FA_RATIO_TARGET:g}× fewer false accepts than raw top-1 at "
                        "equal or better detection",
                  fa >= FA_RATIO_TARGET and frr_ok,
                  f"{before['false_accepts_per_hour']:.1f} → "
                  f"{after['false_accepts_per_hour']:.1f} false accepts/h ({fa:.1f}×), "
                  f"false-reject rate {100 * before['false_reject_rate']:.1f}% → "
                  f"{100 * after['false_reject_rate']:.1f}%"
                  + ("" if frr_ok else " (detection worse)"))


def _beats_defaults(defaults: dict[str, float], after: dict[str, float]) -> Target:
    fa_ok = after["false_accepts_per_hour"] <= defaults["false_accepts_per_hour"]
    fr_ok = after["false_reject_rate"] < defaults["false_reject_rate"]
    return Target(f"against RecognizeCommands' defaults, {DEFAULT_TARGET_FA_PER_HOUR:g} FA/h "
                  "operating point",
                  "no more false accepts and fewer false rejects than its defaults",
                  fa_ok and fr_ok,
                  f"{defaults['false_accepts_per_hour']:.1f} → "
                  f"{after['false_accepts_per_hour']:.1f} false accepts/h, false-reject rate "
                  f"{100 * defaults['false_reject_rate']:.1f}% → "
                  f"{100 * after['false_reject_rate']:.1f}%")


def _head_rows(bench: Bench, table: Table, points: tuple[tuple[float, str, str], ...]
               ) -> None:
    """The issue-9 rows: head re-fit + voting, at both operating points."""
    i8 = bench.int8
    if isinstance(bench.head, str):
        table.notes.append(f"head re-fit rows skipped: {bench.head}")
        return
    output_only, with_head = bench.classification_fit, bench.head_fit
    for target, text, suffix in points:
        result = fit(bench, i8, target, output_only.float_params, features=True,
                     head=bench.head)
        if suffix == "":
            bench.fitted["streaming_head"] = result
        table.rows.append(_fitted_row(
            bench, f"int8, field + TinyFix + head re-fit (frame labels) + voting, {text}", i8,
            result, output_only, f"tinyfix_head_stream{suffix}"))
        table.notes.append(_head_note(result, text))
    if not with_head.uses_features:
        table.notes.append("scenario-1 head rows skipped: the fit with features did not keep "
                           "the head")
        return
    for target, text, suffix in points:
        result = fit(bench, i8, target, with_head.float_params, features=True)
        if suffix == "":
            bench.fitted["streaming_head_windows"] = result
        table.rows.append(_fitted_row(
            bench, f"int8, field + TinyFix + head re-fit (scenario 1) + voting, {text}", i8,
            result, with_head, f"tinyfix_head_windows{suffix}"))


def run(bench: Bench) -> Table:
    started = time.monotonic()
    cal, test = bench.stream("field_calib"), bench.stream("field_test")
    table = Table(
        "streaming",
        "2. Streaming gesture detection on continuous field streams",
        f"An inference every 250 ms over continuous accelerometer streams "
        f"(`generate_stream`): gestures among idle holding and unrelated motion (background "
        f"classes idle and unknown). Field test stream: seed 3002, "
        f"{test.minutes:.0f} min, {len(test.events)} gestures; lab stream: seed 3001. "
        f"TinyFix: the scenario-1 correction (fitted on the labelled field windows), then "
        f"voting tuned by `fit_streaming` on a separate field calibration stream (seed "
        f"{STREAM_FIELD_CALIB_SEED}, {cal.minutes:.0f} min, {len(cal.events)} gestures, "
        f"cross-validated over 5 contiguous time blocks: every stage before voting is "
        f"fitted without the block it is scored on, and the set whose false-accept rate's "
        f"90 % upper bound meets the target with the fewest false rejects wins; the "
        f"scenario-1 correction competes with output-only stages fitted on frame labels "
        f"from the event times over the model's {bench.window_ms} ms input window). Head "
        f"re-fit rows also give the fit the model's feature vectors: \"frame labels\" adds "
        f"the last layer re-fitted on those frame labels as one more chain; \"scenario 1\" "
        f"starts from the "
        f"scenario-1 fit with features (its head re-fitted on the labelled windows). A hit "
        f"is a detection of the event's class between its start and 1 s after its end.",
        COLUMNS,
    )
    i8, f32 = bench.int8, bench.float32
    table.rows += [
        _row(bench, "float, field", f32, "field_test", f32.identity(bench.core, BACKGROUND),
             "top-1 transitions", IDENTITY_VIA),
        _row(bench, "float, field", f32, "field_test", default_vote_params(bench, f32),
             "voting, RecognizeCommands defaults", DEFAULT_VOTE_VIA),
        _row(bench, "int8, lab", i8, "lab", i8.identity(bench.core, BACKGROUND),
             "top-1 transitions", IDENTITY_VIA, "lab"),
        _row(bench, "int8, lab", i8, "lab", default_vote_params(bench, i8),
             "voting, RecognizeCommands defaults", DEFAULT_VOTE_VIA),
        _row(bench, "int8, field", i8, "field_test", i8.identity(bench.core, BACKGROUND),
             "top-1 transitions", IDENTITY_VIA, "before"),
        _row(bench, "int8, field", i8, "field_test", default_vote_params(bench, i8),
             "voting, RecognizeCommands defaults", DEFAULT_VOTE_VIA, "voting_defaults"),
    ]
    output_only = bench.classification_fit
    correction = output_only.float_params
    vote_only = fit(bench, i8, DEFAULT_TARGET_FA_PER_HOUR, None)
    table.rows.append(_fitted_row(
        bench, f"int8, field + TinyFix voting only, {DEFAULT_TARGET_FA_PER_HOUR:g} FA/h target",
        i8, vote_only, None, "tinyfix_vote_only"))
    main = fit(bench, i8, DEFAULT_TARGET_FA_PER_HOUR, correction)
    bench.fitted["streaming"] = main
    table.rows.append(_fitted_row(
        bench, f"int8, field + TinyFix, {DEFAULT_TARGET_FA_PER_HOUR:g} FA/h target", i8, main,
        output_only, "tinyfix"))
    raw_cal_fa = calib_raw_fa_per_hour(bench)
    fifth = fit(bench, i8, raw_cal_fa / FA_RATIO_TARGET, correction)
    points = ((DEFAULT_TARGET_FA_PER_HOUR, f"{DEFAULT_TARGET_FA_PER_HOUR:g} FA/h target", ""),
              (raw_cal_fa / FA_RATIO_TARGET,
               f"{raw_cal_fa / FA_RATIO_TARGET:.0f} FA/h target (raw ÷ {FA_RATIO_TARGET:g})",
               "_fifth"))
    table.rows.append(_fitted_row(bench, f"int8, field + TinyFix, {points[1][1]}", i8, fifth,
                                  output_only, "tinyfix_fifth"))
    _head_rows(bench, table, points)
    if bench.retrained is not None:
        rt = bench.retrained
        table.rows.append(_row(bench, "int8, field, retrained (upper bound)", rt,
                               "field_test", rt.identity(bench.core, BACKGROUND),
                               "top-1 transitions", IDENTITY_VIA, "upper_bound"))
        rt_vote = fit(bench, rt, DEFAULT_TARGET_FA_PER_HOUR, None)
        # Retraining plus TinyFix's voting: still the upper bound, not a TinyFix row.
        table.rows.append(_fitted_row(
            bench, f"int8, field, retrained (upper bound) + TinyFix voting, "
                   f"{DEFAULT_TARGET_FA_PER_HOUR:g} FA/h target", rt, rt_vote, None,
            "upper_bound_vote", tinyfix=False))
    else:
        table.notes.append(f"upper-bound rows skipped: {bench.retrained_skip}")
    before = table.row("before").figures
    for role, point in (("tinyfix", f"{DEFAULT_TARGET_FA_PER_HOUR:g} FA/h operating point"),
                        ("tinyfix_fifth", "raw ÷ 5 operating point")):
        table.targets.append(_target(f"false accepts, {point}", before,
                                     table.row(role).figures))
    defaults = table.row("voting_defaults").figures
    after = table.row("tinyfix").figures
    table.targets.append(_beats_defaults(defaults, after))
    point = main.stream_report.point
    inside = point.low <= after["false_accepts_per_hour"] <= point.high
    table.notes.append(
        f"prediction of the {DEFAULT_TARGET_FA_PER_HOUR:g} FA/h fit, cross-validated on the "
        f"calibration stream: {point.describe()}; on the field test stream "
        f"{after['false_accepts_per_hour']:.1f} FA/h, false rejects "
        f"{100 * after['false_reject_rate']:.1f}% ({'inside' if inside else 'outside'} the "
        f"interval)")
    fewer = ratio(defaults["false_accepts_per_hour"], after["false_accepts_per_hour"])
    table.notes.append(
        f"against RecognizeCommands defaults on the same stream: "
        f"{defaults['false_accepts_per_hour']:.1f} → {after['false_accepts_per_hour']:.1f} "
        f"false accepts/h ({fewer:.1f}×), "
        f"false-reject rate {100 * defaults['false_reject_rate']:.1f}% → "
        f"{100 * after['false_reject_rate']:.1f}%")
    table.notes.append("on-device adaptation and label-free rows: scenario 1 only (a device "
                       "on a stream gets no per-frame labels to adapt on; the label-free sets "
                       "are fitted and scored on windows)")
    table.notes.append(f"raw top-1 on the field calibration stream: {raw_cal_fa:.1f} false "
                       "accepts/h (sets the second operating point; the test stream is never "
                       "used to tune)")
    table.seconds = time.monotonic() - started
    return table

