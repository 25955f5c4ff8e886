# SPDX-License-Identifier: Apache-2.0
"""`tinyfix replay`: a sealed parameter set through the C core over a data set, as the
device would run it. Windows print each decision; streams print each detection (a hit of
which event, or a false accept) and the stream's figures before (raw top-1) and after."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from tinyfix import datasets, metrics, params_io
from tinyfix.capture import quantize_inputs
from tinyfix.core import Core, Corrector, ModelInfo, Params
from tinyfix.errors import TinyfixError
from tinyfix.fit import FloatParams, quantize
from tinyfix.fit.detections import detections_of
from tinyfix.fit.domain import detect_output_kind
from tinyfix.fit.quantize import STAGE
from tinyfix.twin.model import ModelGraph
from tinyfix.twin.tflm import TflmRunner


def _outputs(core: Core, graph: ModelGraph, model: ModelInfo, params: Params,
             scores: NDArray | None, x: NDArray | None, path: Path
             ) -> tuple[NDArray, NDArray | None, NDArray | None]:
    """(raw outputs, feature vectors, quantized inputs): recorded scores, or the inputs
    through the set's input correction and the model, as the firmware runs them."""
    head = bool(params.c.flags & STAGE["head"])  # the head reads the feature vectors
    if scores is not None:
        if head:
            raise TinyfixError(f"{path} holds recorded scores, but the parameter set re-fits "
                               "the model's last layer, which needs model inputs (x)")
        return scores, None, None
    assert x is not None
    inputs = quantize_inputs(core, model, x, params)
    raw, feats = TflmRunner(graph).run(inputs)
    return raw, feats if head else None, inputs


def replay(params_path: Path, model_path: Path, data_path: Path, show: int,
           console: Console) -> None:
    core = Core()
    graph = ModelGraph.load(model_path)
    model = graph.model_info(core)
    params = params_io.read_params_yaml(params_path, core, model)
    if datasets.is_streaming_file(data_path):
        _replay_stream(core, graph, model, params, data_path, show, console)
    else:
        _replay_windows(core, graph, model, params, data_path, show, console)


def _replay_windows(core: Core, graph: ModelGraph, model: ModelInfo, params: Params,
                    path: Path, show: int, console: Console) -> None:
    autoencoder = model.kind == "autoencoder"
    data = (datasets.load_anomaly if autoencoder else datasets.load_classification)(path)
    raw, feats, inputs = _outputs(core, graph, model, params, data.scores, data.x, path)
    out = Corrector(core, model, params).run(raw, features=feats,
                                             inputs=inputs if autoencoder else None)
    table = Table(title=f"decisions of 0x{params.crc:08x} over {path}")
    for col in ("#", "label", "decision", "confidence"):
        table.add_column(col, justify="right")
    names = data.names_for_model(model.n_classes)
    for i in range(min(len(raw), show)):
        d = int(out["decision"][i])
        table.add_row(str(i), names[data.y[i]], names[d] if d >= 0 else "none",
                      f"{out['top_prob'][i] / 32768:.2f}")
    console.print(table)
    acc = metrics.accuracy(data.y, out["decision"])
    console.print(f"{len(raw)} samples: accuracy {acc:.1%} (no decision counts as wrong)")


def _replay_stream(core: Core, graph: ModelGraph, model: ModelInfo, params: Params,
                   path: Path, show: int, console: Console) -> None:
    data = datasets.load_streaming(path)
    if len(data.class_names) != model.n_classes:
        raise TinyfixError(f"{path} names {len(data.class_names)} classes, the model has "
                           f"{model.n_classes}")
    raw, feats, _ = _outputs(core, graph, model, params, data.scores, data.x, path)
    t = np.asarray(data.t_ms, dtype=np.int64)
    bg = tuple(data.background)
    det_t, det_label = detections_of(core, model, params, raw, t, bg, feats)
    matched = metrics.match_detections(det_t, det_label, data.events)
    table = Table(title=f"detections of 0x{params.crc:08x} over {path}")
    for col in ("#", "time (s)", "class", "result"):
        table.add_column(col, justify="right")
    names = data.class_names
    for i in range(min(det_t.size, show)):
        e = int(matched[i])
        result = (f"hit (event {e} at {data.events.start_ms[e] / 1000:.1f} s)" if e >= 0
                  else "[red]false accept[/red]")
        table.add_row(str(i), f"{(det_t[i] - t[0]) / 1000:.2f}", names[det_label[i]], result)
    console.print(table)
    identity = FloatParams.identity(model.n_classes, detect_output_kind(raw, model), bg)
    base_t, base_label = detections_of(core, model, quantize(core, model, identity)[0], raw,
                                       t, bg)
    duration = metrics.stream_duration_ms(t)
    figures = Table(title=f"{duration / 60000:.1f} min, {len(data.events)} events")
    for col in ("detector", "false accepts / h", "false-reject rate", "false accepts",
                "hits"):
        figures.add_column(col, justify="right")
    for name, (dt, dl) in (("raw top-1", (base_t, base_label)),
                           (f"0x{params.crc:08x}", (det_t, det_label))):
        s = metrics.score_detections(dt, dl, data.events, duration)
        figures.add_row(name, f"{s.false_accepts_per_hour:.1f}",
                        f"{100 * s.false_reject_rate:.1f}%", str(s.false_accepts),
                        f"{s.hits} of {s.events}")
    console.print(figures)
