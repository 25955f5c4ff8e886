# SPDX-License-Identifier: Apache-2.0
"""Contiguous time blocks of a stream for cross-validation, and the pooled score of a
parameter set over blocks it was not fitted on.

Blocks are cut where no event (with its detection tolerance) is, so every event is scored
in exactly one block. A stage fitted for block k sees no frame of block k, nor the frames
just after it whose input window still reaches into it (`gap_ms`)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

from tinyfix import metrics
from tinyfix.core import Core, ModelInfo
from tinyfix.datasets import StreamingData, stream_cut_ms
from tinyfix.errors import TinyfixError
from tinyfix.fit.float_params import FloatParams
from tinyfix.fit.options import DeviceLimits
from tinyfix.fit.voting import Stream, score_state

DEFAULT_BLOCKS = 5


def block_edges(stream: Stream, n_classes: int, background: tuple[int, ...],
                n_blocks: int) -> list[int]:
    """Start times of the blocks, and one past the last frame: about equal spans, each cut
    where no event is (fewer blocks if cuts coincide or the stream has no free time)."""
    if n_blocks < 2:
        raise TinyfixError(f"cross-validation needs at least 2 blocks, got {n_blocks}")
    data = StreamingData(stream.t_ms, stream.events, tuple(map(str, range(n_classes))),
                         background, scores=stream.raw)
    cuts: set[int] = set()
    for i in range(1, n_blocks):
        try:
            cuts.add(stream_cut_ms(data, i / n_blocks))
        except TinyfixError:
            break
    first, last = int(stream.t_ms[0]), int(stream.t_ms[-1]) + 1
    return [first, *sorted(c for c in cuts if first < c < last), last]


def blocks(stream: Stream, edges: Sequence[int]) -> list[Stream]:
    return [stream.between(a, b) for a, b in pairwise(edges)]


def training_mask(t_ms: NDArray[np.int64], held_t0: int, held_t1: int, gap_ms: int
                  ) -> NDArray[np.bool_]:
    """Frames a stage for the block [held_t0, held_t1) may be fitted on."""
    t = np.asarray(t_ms, dtype=np.int64)
    return (t < held_t0) | (t >= held_t1 + max(0, gap_ms))


def pooled(scores: Sequence[metrics.StreamScore]) -> metrics.StreamScore:
    return metrics.StreamScore(sum(s.hits for s in scores),
                               sum(s.false_accepts for s in scores),
                               sum(s.events for s in scores),
                               sum(s.duration_ms for s in scores))


def score_pairs(core: Core, model: ModelInfo, pairs: Sequence[tuple[FloatParams, Stream]],
                limits: DeviceLimits) -> metrics.StreamScore:
    """Each state on its own block (a fresh device context per block), pooled."""
    return pooled([score_state(core, model, fp, s, limits) for fp, s in pairs])
