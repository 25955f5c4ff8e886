# SPDX-License-Identifier: Apache-2.0
"""What runs before voting on a stream: a chain of stages, fitted once per held-out block
(without that block) and once on the whole stream.

- "as given": the starting set (identity, or stages fitted before, e.g. on labelled windows);
- "correction": the output-only stages (temperature, prior shift, bias, vector scaling)
  fitted to frame labels from the event times (fit.frame_labels) with fit_classification,
  which keeps each stage only if it helps on its own held-out frames;
- "head": the model's last layer re-fitted on the same frame labels from the feature vectors.

Voting is tuned after a chain on the blocks it was not fitted on (fit.stream_select)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

from tinyfix.core import Core, ModelInfo
from tinyfix.errors import TinyfixError
from tinyfix.fit.classification import fit_classification
from tinyfix.fit.float_params import FloatParams
from tinyfix.fit.frame_labels import LEFT_OUT, frame_labels
from tinyfix.fit.head import fit_head, time_folds
from tinyfix.fit.head import min_samples as head_min_samples
from tinyfix.fit.head_source import HeadSource, within_limits
from tinyfix.fit.options import FitOptions
from tinyfix.fit.stream_blocks import training_mask
from tinyfix.fit.voting import Stream

CORRECTION_STAGES = ("temperature", "prior", "bias", "vector")
MIN_LABELLED_FRAMES = 200


@dataclass(frozen=True)
class Chain:
    name: str
    description: str
    folds: tuple[FloatParams, ...]  # the state scored on block k, fitted without it
    final: FloatParams  # fitted on the whole stream


# A fitter turns labelled frames (mask over the stream) into a state, or says why not.
Fitter = Callable[[NDArray[np.bool_]], tuple[FloatParams, str]]


def _per_fold(name: str, fitter: Fitter, stream: Stream, edges: Sequence[int],
              gap_ms: int) -> Chain:
    folds = []
    for t0, t1 in pairwise(edges):
        state, _ = fitter(training_mask(stream.t_ms, t0, t1, gap_ms))
        folds.append(state)
    final, text = fitter(np.ones(stream.t_ms.size, dtype=bool))
    return Chain(name, text, tuple(folds), final)


def as_given(state: FloatParams, n_blocks: int) -> Chain:
    return Chain("as given", "the starting set", (state,) * n_blocks, state)


def labels_of(stream: Stream, background: tuple[int, ...], window_ms: int
              ) -> NDArray[np.int64]:
    return frame_labels(stream.t_ms, stream.events, window_ms, stream.raw, background)


def _enough(labels: NDArray[np.int64], need: int) -> str | None:
    n = int((labels != LEFT_OUT).sum())
    return None if n >= need else f"too few labelled frames: {n} < {need}"


def correction_chain(core: Core, model: ModelInfo, stream: Stream, labels: NDArray[np.int64],
                     background: tuple[int, ...], options: FitOptions,
                     edges: Sequence[int], window_ms: int) -> Chain | str:
    """Output-only stages on frame labels, or why they cannot be fitted."""
    why = _enough(labels, MIN_LABELLED_FRAMES)
    if why:
        return why
    stage_options = replace(options, stages=CORRECTION_STAGES, target_precision=None)
    raw = np.asarray(stream.raw)

    def fitter(mask: NDArray[np.bool_]) -> tuple[FloatParams, str]:
        use = mask & (labels != LEFT_OUT)
        result = fit_classification(raw[use], labels[use], model, stage_options, core)
        kept = ", ".join(result.stages_kept) or "no stage"
        return (result.float_params.replace(background=background),
                f"{kept} fitted on {int(use.sum())} frames labelled from the event times "
                f"over a {window_ms} ms window")

    return _per_fold("correction", fitter, stream, edges, window_ms)


def head_available(stream: Stream, head: HeadSource | str | None, options: FitOptions
                   ) -> HeadSource | str:
    """The layer to re-fit, or why there is none (checked before anything is fitted)."""
    if stream.features is None:
        return "skipped: the stream has no feature vectors"
    source = within_limits(head, options.device.max_features)
    if source is None:
        return "skipped: the model's last layer was not given"
    if isinstance(source, str):
        return f"skipped: {source}"
    return source


def head_chain(core: Core, model: ModelInfo, stream: Stream, labels: NDArray[np.int64],
               background: tuple[int, ...], options: FitOptions, edges: Sequence[int],
               window_ms: int, head: HeadSource | str | None, output_kind: str
               ) -> Chain | str:
    """The last layer re-fitted on frame labels from the feature vectors, or why not."""
    source = head_available(stream, head, options)
    if isinstance(source, str):
        return source
    why = _enough(labels, max(MIN_LABELLED_FRAMES, head_min_samples(model.n_classes)))
    if why:
        return why
    feats, raw = np.asarray(stream.features), np.asarray(stream.raw)
    own = source.own_bytes

    def fitter(mask: NDArray[np.bool_]) -> tuple[FloatParams, str]:
        use = mask & (labels != LEFT_OUT)
        fitted = fit_head(core, model, source, feats[use], labels[use], options, raw[use],
                          output_kind, fold=time_folds(int(use.sum())))
        return (fitted.state.replace(background=background),
                f"fitted on {int(use.sum())} frames labelled from the event times over a "
                f"{window_ms} ms window; "
                f"{fitted.describe()}; the model's own last layer {own} B")

    try:
        return _per_fold("head", fitter, stream, edges, window_ms)
    except TinyfixError as exc:  # e.g. a size budget too small for one feature column
        return f"skipped: {exc}"
