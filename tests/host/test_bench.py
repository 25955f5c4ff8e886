# SPDX-License-Identifier: Apache-2.0
"""The accuracy-repair benchmark at a tiny size: every scenario returns a complete table,
every TinyFix row's figures come from a parameter set the C core ran (the field-adaptation
rows too: head re-fit, label-free, on-device adaptation), targets follow the figures, and
the command writes JSON and markdown. No fixed numbers: the data are small."""

import json
import math

import numpy as np
import pytest

from tinyfix import metrics
from tinyfix.bench import (
    anomaly,
    classification,
    cost,
    field_adaptation,
    streaming,
    upper_bound,
)
from tinyfix.bench.__main__ import main
from tinyfix.bench.context import TINY, Bench, Windows
from tinyfix.bench.last_layer import last_layer_model, layer_bytes
from tinyfix.bench.table import Table
from tinyfix.core import Corrector
from tinyfix.fit import through_core
from tinyfix.fit.quantize import STAGE
from tinyfix.twin.model import ModelGraph
from tinyfix.twin.tflm import TflmRunner

SCENARIOS = {"classification": classification.run, "streaming": streaming.run,
             "anomaly": anomaly.run}


def spy_corrector(seen: set[int]) -> type[Corrector]:
    """A Corrector that records the CRC of every parameter set it is given in `seen`."""

    class SpyCorrector(Corrector):
        def __init__(self, core, model, params=None):
            super().__init__(core, model, params)
            if params is not None:
                seen.add(params.crc)

    return SpyCorrector


@pytest.fixture(scope="module")
def bench_run() -> tuple[Bench, dict[str, Table], set[int]]:
    """Run every scenario once while recording the parameter set of every C core context
    that processed frames."""
    seen: set[int] = set()
    SpyCorrector = spy_corrector(seen)
    bench = Bench(TINY)
    bench.retrained_skip = "disabled in tests"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(through_core, "Corrector", SpyCorrector)
        mp.setattr(field_adaptation, "Corrector", SpyCorrector)
        tables = {name: run(bench) for name, run in SCENARIOS.items()}
    return bench, tables, seen


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_has_the_baseline_lab_and_tinyfix_rows_with_every_column(bench_run,
                                                                                  name):
    _, tables, _ = bench_run
    table = tables[name]
    roles = [r.role for r in table.rows]
    for role in ("lab", "before", "tinyfix"):
        assert role in roles, f"{name}: no {role} row"
    assert any(r.model == "float" for r in table.rows)
    for row in table.rows:
        for column in table.columns:
            if column.key != "recovered":
                value = row.figures[column.key]
                assert isinstance(value, float) and not math.isinf(value), (row.name, column)
    markdown = table.markdown()
    assert sum(line.startswith("| ") for line in markdown.splitlines()) == len(table.rows) + 2
    json.dumps(table.as_dict(), allow_nan=False)


def test_rates_and_shares_are_in_range(bench_run):
    _, tables, _ = bench_run
    for table in tables.values():
        for row in table.rows:
            for key in ("accuracy", "ece", "false_reject_rate", "detection_rate"):
                if key in row.figures and not math.isnan(row.figures[key]):
                    assert 0.0 <= row.figures[key] <= 1.0, (table.key, row.name, key)
            for key in ("false_accepts_per_hour", "false_alarms_per_hour"):
                if key in row.figures:
                    assert row.figures[key] >= 0.0


def test_every_tinyfix_row_names_a_parameter_set_the_c_core_ran(bench_run):
    _, tables, seen = bench_run
    tinyfix_rows = [r for t in tables.values() for r in t.rows if r.tinyfix]
    assert len(tinyfix_rows) >= 3
    for row in tinyfix_rows:
        assert row.params_crc is not None, row.name
        assert row.params_crc in seen, f"{row.name}: set 0x{row.params_crc:08x} never ran"
        assert "C core" in row.via, row.name
        assert any(kind in row.via for kind in ("fitted set", "label-free set",
                                                "adapted on device")), row.via


def test_classification_has_every_field_adaptation_row_with_its_recovered_share(bench_run):
    _, tables, _ = bench_run
    table = tables["classification"]
    for role in classification.ROLES:
        row = table.row(role)
        assert row.tinyfix and row.model == "int8" and row.data.startswith("field test")
        lab, before = table.row("lab").figures, table.row("before").figures
        expected = ((row.figures["accuracy"] - before["accuracy"])
                    / (lab["accuracy"] - before["accuracy"]))
        assert row.figures["recovered"] == pytest.approx(expected)
    assert any(n.startswith("head stage") for n in table.notes)
    assert any(n.startswith("label-free: no field label read") for n in table.notes)
    assert any(n.startswith("on-device adaptation:") for n in table.notes)


def test_the_head_row_is_its_set_run_with_the_models_feature_vectors(bench_run):
    bench, tables, _ = bench_run
    row = tables["classification"].row("tinyfix_head")
    result = bench.fitted["classification_head"]
    assert row.params_crc == result.params.crc and "head" in [s.name for s in result.stages]
    assert row.stages == tuple(result.stages_kept)
    assert ("features" in row.via) == result.uses_features
    test = bench.windows("field_test")
    feats = bench.features(bench.int8, "windows:field_test")
    assert feats.shape == (test.y.size, bench.int8.info.n_features)
    run = through_core.run_frames(bench.core, bench.int8.info, result.params,
                                  bench.raw(bench.int8, "windows:field_test"),
                                  features=feats if result.uses_features else None)
    assert row.figures["accuracy"] == metrics.accuracy(test.y, run.decision)


def test_the_label_free_sets_read_no_field_label(bench_run):
    bench, tables, _ = bench_run
    table = tables["classification"]
    fit = field_adaptation.label_free_fit(bench)
    assert set(fit.sets) == {"inputs", "prior", "both"}
    for name, adapted in fit.sets.items():
        row = table.row(f"tinyfix_unlabeled_{name}")
        assert row.params_crc == adapted.params.crc
        assert ("input stage" in row.via) == adapted.corrects_inputs
    # The same data with the field calibration labels scrambled: the very same sets.
    other = Bench(TINY, bench.core)
    cal = bench.windows("field_calib")
    other._windows["field_calib"] = Windows(cal.x, np.roll(cal.y, 7)[::-1].copy())
    assert not np.array_equal(other.windows("field_calib").y, cal.y)
    again = field_adaptation.label_free_fit(other)
    assert {k: a.params.crc for k, a in again.sets.items()} == {
        k: a.params.crc for k, a in fit.sets.items()}


def test_on_device_adaptation_starts_from_the_models_own_layer_and_moves_within_the_clamp(
        bench_run):
    bench, tables, _ = bench_run
    table = tables["classification"]
    row = table.row("tinyfix_adapt")
    start = field_adaptation.adaptation_start(bench)
    assert row.params_crc == start.crc
    assert start.c.flags & STAGE["head"] and start.c.flags & STAGE["adapt"]
    adapted = field_adaptation.on_device(bench)
    # Before any label the head is the model's own last layer: the uncorrected model.
    assert adapted.before["accuracy"] == table.row("before").figures["accuracy"]
    assert adapted.after == {k: v for k, v in row.figures.items() if k != "recovered"}
    assert 0 < adapted.largest_weight_change <= field_adaptation.ADAPT_HEAD_CLAMP
    assert adapted.frames == bench.windows("field_calib").y.size


def test_streaming_has_the_head_rows_and_their_sets_run_with_features(bench_run):
    bench, tables, _ = bench_run
    table = tables["streaming"]
    roles = [r.role for r in table.rows]
    assert "tinyfix_head_stream" in roles and "tinyfix_head_stream_fifth" in roles
    assert sum(n.startswith("head re-fit on frame labels") for n in table.notes) == 2
    if bench.head_fit.uses_features:
        assert "tinyfix_head_windows" in roles and "tinyfix_head_windows_fifth" in roles
    for row in table.rows:
        if row.role.startswith("tinyfix_head"):
            assert ("features" in row.via) == ("head" in row.stages), row.name
    stream = bench.stream("field_test")
    for key, role in (("streaming_head", "tinyfix_head_stream"),
                      ("streaming_head_windows", "tinyfix_head_windows")):
        if key not in bench.fitted:
            continue
        result, row = bench.fitted[key], table.row(role)
        assert row.params_crc == result.params.crc
        feats = bench.features(bench.int8, "stream:field_test") if result.uses_features \
            else None
        run = through_core.run_frames(bench.core, bench.int8.info, result.params,
                                      bench.raw(bench.int8, "stream:field_test"), stream.t_ms,
                                      features=feats)
        if result.float_params.vote is not None:
            assert row.figures["hits"] + row.figures["false_accepts"] == int(
                np.count_nonzero(run.vote_event))


def test_the_classification_row_is_reproduced_by_running_its_set_through_the_core(bench_run):
    bench, tables, _ = bench_run
    row = tables["classification"].row("tinyfix")
    result = bench.fitted["classification"]
    assert row.params_crc == result.params.crc
    test = bench.windows("field_test")
    run = through_core.run_frames(bench.core, bench.int8.info, result.params,
                                  bench.raw(bench.int8, "windows:field_test"))
    assert row.figures["accuracy"] == metrics.accuracy(test.y, run.decision)
    before = tables["classification"].row("before").figures["accuracy"]
    assert before == metrics.accuracy(test.y, bench.raw(bench.int8,
                                                        "windows:field_test").argmax(axis=1))


def test_the_streaming_row_counts_the_vote_events_of_its_set(bench_run):
    bench, tables, _ = bench_run
    row = tables["streaming"].row("tinyfix")
    result = bench.fitted["streaming"]
    assert row.params_crc == result.params.crc
    stream = bench.stream("field_test")
    run = through_core.run_frames(bench.core, bench.int8.info, result.params,
                                  bench.raw(bench.int8, "stream:field_test"), stream.t_ms)
    detections = int(np.count_nonzero(run.vote_event)) if result.float_params.vote else None
    if detections is not None:
        assert row.figures["hits"] + row.figures["false_accepts"] == detections


def test_targets_agree_with_the_rows_they_compare(bench_run):
    _, tables, _ = bench_run
    cls = tables["classification"]
    best = classification.best_row(cls)
    assert best.figures["accuracy"] == max(r.figures["accuracy"] for r in cls.rows if r.tinyfix)
    ece = next(t for t in cls.targets if "calibration" in t.name)
    recovered = next(t for t in cls.targets if "recovered" in t.name)
    assert ece.met == (best.figures["ece"] < classification.ECE_TARGET)
    assert recovered.met == (best.figures["recovered"] >= classification.RECOVER_TARGET)
    for target in (ece, recovered):
        assert f"best TinyFix row: {classification.ROLES[best.role]}" in target.detail
    for key, rate, quality, better in (
            ("streaming", "false_accepts_per_hour", "false_reject_rate", min),
            ("anomaly", "false_alarms_per_hour", "detection_rate", max)):
        table = tables[key]
        before = table.row("before").figures
        for target, role in zip(table.targets[:2], ("tinyfix", "tinyfix_fifth"), strict=True):
            after = table.row(role).figures
            fewer = (before[rate] >= 5 * after[rate]) if after[rate] else before[rate] > 0
            kept = better(before[quality], after[quality]) == after[quality]
            assert target.met == (fewer and kept), (key, target)
        assert all(("met" if t.met else "missed") in t.line() for t in table.targets)
    streaming = tables["streaming"]
    defaults, after = streaming.row("voting_defaults").figures, streaming.row("tinyfix").figures
    (against,) = [t for t in streaming.targets if "RecognizeCommands" in t.name]
    assert against.met == (after["false_accepts_per_hour"] <= defaults["false_accepts_per_hour"]
                           and after["false_reject_rate"] < defaults["false_reject_rate"])


def test_the_upper_bound_is_skipped_with_the_reason_when_tensorflow_is_missing(monkeypatch):
    monkeypatch.setattr(upper_bound, "tf_python", lambda: (None, "no TensorFlow here"))
    bench = Bench(TINY)
    upper_bound.retrain(bench)
    assert bench.retrained is None and bench.retrained_skip == "no TensorFlow here"


def test_the_float_layers_of_the_demo_model_are_found():
    from tinyfix.bench.context import FLOAT_MODEL

    layers = upper_bound.float_layers(FLOAT_MODEL)
    assert layers["conv1_w"].ndim == 4 and layers["fc2_w"].shape == (6, 24)
    assert layers["fc1_w"].shape[0] == layers["fc2_w"].shape[1]


def test_callgrind_counts_collected_instructions_and_calls_of_the_toggled_function():
    text = "\n".join([
        "events: Ir", "summary: 9000",
        "fn=(1) main", "cfn=(2) tflite::micro::MicroInterpreter::Invoke()", "calls=2 0",
        "0 6000", "fn=(3) other", "cfn=(2)", "calls=1 0", "0 3000",
        "cfn=(4) tflite::micro::MicroInterpreterGraph::InvokeSubgraph(int)", "calls=7 0",
        "0 10", "totals: 9000"])
    assert cost.parse_callgrind(text, cost.TFLM_PATTERN) == (9000, 3)
    assert cost.parse_callgrind(text, "tinyfix_process") == (9000, 0)


def test_size_and_thumb2_lines_are_read_from_the_scripts_output():
    size = cost.parse_core_size(
        "cortex-m3 core total: flash 9 B (.text+.data), static RAM 1 B (.data+.bss)\n"
        "cortex-m4f core total: flash 7264 B (.text+.data), static RAM 0 B (.data+.bss)\n"
        "cortex-m4f struct tinyfix_ctx (caller-owned, sized by Kconfig): 1424 B\n"
        "cortex-m4f linked with every API call (incl. libgcc/libc helpers, excl. main): "
        "flash 7288 B\n")
    assert size == {"core_flash_bytes": 7264, "static_ram_bytes": 0, "ctx_bytes": 1424,
                    "linked_flash_bytes": 7288}
    assert "skipped" in cost.parse_core_size("bench-core-size: skipped: no compiler\n")
    thumb = cost.parse_cortexm(
        "cortex-m4f: tinyfix_process, 12 classes, 5-frame window: median 4309 instructions "
        "per call (min 1, max 2, 20 frames); init+set_params 3; image .text 4 B\n")
    assert thumb["cortex-m4f"] == 4309 and "12 classes" in thumb["configuration"]
    head = cost.parse_core_size(
        "cortex-m4f core total: flash 7264 B (.text+.data), static RAM 0 B (.data+.bss)\n"
        "cortex-m4f struct tinyfix_ctx (caller-owned, sized by Kconfig): 1424 B\n"
        "--- cortex-m4f-head24 (-mcpu=cortex-m4 -DTINYFIX_MAX_FEATURES=24)\n"
        "   text\t   data\t    bss\t    dec\t    hex\tfilename\n"
        "    384\t      0\t      0\t    384\t    180\ttinyfix_head.o\n"
        "cortex-m4f-head24 core total: flash 8034 B (.text+.data), static RAM 0 B\n"
        "cortex-m4f-head24 struct tinyfix_ctx (caller-owned, sized by Kconfig): 2792 B\n")
    assert (head["head_features"], head["head_core_flash_bytes"], head["head_ctx_bytes"],
            head["head_code_bytes"]) == (24, 8034, 2792, 384)


def test_the_one_op_model_of_the_last_layer_is_the_models_own_layer(bench_run):
    bench, _, _ = bench_run
    graph = bench.int8.graph
    one = ModelGraph.from_bytes(last_layer_model(graph), "last layer")
    assert one.ops == ("FULLY_CONNECTED",) and one.final is not None
    assert np.array_equal(one.final.weights, graph.final.weights)
    assert np.array_equal(one.final.bias, graph.final.bias)
    feats = bench.features(bench.int8, "windows:field_test")
    raw, _ = TflmRunner(one).run(feats.reshape((-1, *one.input.shape[1:])))
    assert np.array_equal(raw, bench.raw(bench.int8, "windows:field_test"))
    size = layer_bytes(graph)
    n_c, n_f = graph.final.weights.shape
    assert (size.weights, size.bias) == (n_c * n_f, 4 * n_c) and size.quantization > 0


def test_the_head_sizes_and_cost_targets_follow_their_figures(bench_run):
    bench, _, _ = bench_run
    size = cost.head_size(bench)
    if "skipped" in size:
        assert not bench.head_fit.uses_features
        return
    n_c, n_f, k = size["classes"], size["features"], size["columns"]
    whole = k == n_f and "whole layer" in size["form"]
    expected = n_c * (n_f + 12) if whole else n_c * (k + 12) + (n_f + 7) // 8
    assert size["head_flash_bytes"] == expected == size["encoded_set_growth_bytes"]
    assert size["own_weights_and_bias_bytes"] == n_c * n_f + 4 * n_c
    figures = {"instructions": {"head_stage": {"instructions_per_call": 90.0},
                                "model_last_layer": {"instructions_per_call": 100.0}},
               "head_size": size}
    ins, flash = cost.targets(figures)
    assert ins.met and "0.90×" in ins.detail
    assert flash.met == (size["head_flash_bytes"] <= size["own_weights_and_bias_bytes"])
    figures["instructions"]["head_stage"]["instructions_per_call"] = 101.0
    assert not cost.targets(figures)[0].met
    assert cost.targets({"instructions": {"skipped": "no valgrind"},
                         "head_size": {"skipped": "no head"}}) == []


def test_callgrind_inclusive_costs_of_calls_are_read_from_the_call_records():
    text = "\n".join([
        "events: Ir", "fn=(1) tinyfix_process", "0 40", "cfn=(2) tinyfix_head_run",
        "calls=3 0", "* 930", "+2 5", "cfn=(2)", "calls=2 0", "* 600", "fn=(2)", "0 1530",
        "totals: 1570"])
    assert cost.parse_calls(text, cost.HEAD_PATTERN) == (1530, 5)
    assert cost.parse_calls(text, "other") == (0, 0)


def test_the_command_writes_json_and_markdown_with_the_command_line(tmp_path, capsys):
    out_json, out_md = tmp_path / "b.json", tmp_path / "b.md"
    argv = ["--quick", "--only", "anomaly", "--json", str(out_json), "--markdown",
            str(out_md)]
    assert main(argv) == 0
    doc = json.loads(out_json.read_text())
    assert doc["mode"] == "quick" and doc["command"].startswith("scripts/bench --quick")
    assert [s["key"] for s in doc["scenarios"]] == ["anomaly"]
    assert doc["scenarios"][0]["rows"][-1]["params_crc"].startswith("0x")
    text = out_md.read_text()
    assert text.startswith("<!-- SPDX-License-Identifier: Apache-2.0 -->")
    assert "`scripts/bench --quick --only anomaly" in text and "| **int8, field + TinyFix" in text
    printed = capsys.readouterr().out
    assert "target met:" in printed or "target missed:" in printed


@pytest.fixture(scope="module")
def reference_table() -> tuple[Table, set[int]]:
    from tinyfix.bench import reference

    seen: set[int] = set()
    bench = Bench(TINY)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(through_core, "Corrector", spy_corrector(seen))
        table = reference.run(bench)
    return table, seen


def test_the_reference_table_has_every_row_run_through_the_core(reference_table):
    table, seen = reference_table
    roles = {r.role for r in table.rows}
    assert {"lab_before", "lab_quantization", "lab_chain", "before", "float", "quantization",
            "labelled", "teacher", "teacher_inputs", "label_free"} <= roles
    for row in table.rows:
        for key in ("agreement", "accuracy", "ece"):
            assert 0.0 <= row.figures[key] <= 1.0, (row.name, key)
        assert row.figures["kl"] >= -1e-3, row.name
        if row.tinyfix:
            assert row.params_crc in seen, f"{row.name}: set never ran in the core"
    assert table.row("float").figures["agreement"] == 1.0
    json.dumps(table.as_dict(), allow_nan=False)


def test_the_reference_targets_agree_with_their_rows(reference_table):
    table, _ = reference_table
    lab_b, lab_q = table.row("lab_before").figures, table.row("lab_quantization").figures
    stage, teacher = table.targets
    assert stage.met == (lab_q["agreement"] >= lab_b["agreement"] and lab_q["kl"] < lab_b["kl"])
    best_other = max(table.row("before").figures["accuracy"],
                     table.row("label_free").figures["accuracy"])
    assert teacher.met == (table.row("teacher_inputs").figures["accuracy"] > best_other)
