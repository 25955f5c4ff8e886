# SPDX-License-Identifier: Apache-2.0
"""The accuracy-repair benchmark at a tiny size: every scenario returns a complete table,
every TinyFix row's figures come from a parameter set the C core ran, targets follow the
figures, and the command writes JSON and markdown. No fixed numbers: the data are small."""

import json
import math

import numpy as np
import pytest

from tinyfix import metrics
from tinyfix.bench import anomaly, classification, cost, streaming, upper_bound
from tinyfix.bench.__main__ import main
from tinyfix.bench.context import TINY, Bench
from tinyfix.bench.table import Table
from tinyfix.core import Corrector
from tinyfix.fit import through_core

SCENARIOS = {"classification": classification.run, "streaming": streaming.run,
             "anomaly": anomaly.run}


@pytest.fixture(scope="module")
def bench_run() -> tuple[Bench, dict[str, Table], set[int]]:
    """Run every scenario once while recording the parameter set of every C core context
    that processed frames."""
    seen: set[int] = set()

    class SpyCorrector(Corrector):
        def __init__(self, core, model, params=None):
            super().__init__(core, model, params)
            if params is not None:
                seen.add(params.crc)

    bench = Bench(TINY)
    bench.retrained_skip = "disabled in tests"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(through_core, "Corrector", SpyCorrector)
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
        assert "C core" in row.via and "fitted" in row.via


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
    ece = next(t for t in cls.targets if "calibration" in t.name)
    assert ece.met == (cls.row("tinyfix").figures["ece"] < classification.ECE_TARGET)
    for key, rate, quality, better in (
            ("streaming", "false_accepts_per_hour", "false_reject_rate", min),
            ("anomaly", "false_alarms_per_hour", "detection_rate", max)):
        table = tables[key]
        before = table.row("before").figures
        for target, role in zip(table.targets, ("tinyfix", "tinyfix_fifth"), strict=True):
            after = table.row(role).figures
            fewer = (before[rate] >= 5 * after[rate]) if after[rate] else before[rate] > 0
            kept = better(before[quality], after[quality]) == after[quality]
            assert target.met == (fewer and kept), (key, target)
        assert all(("met" if t.met else "missed") in t.line() for t in table.targets)


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
