# SPDX-License-Identifier: Apache-2.0
"""Frame labels of a stream from its event times, for a head re-fit on streaming data.

A frame at time t sees the input window [t - window_ms, t]. Its label is:
  - class c when the window holds a whole event of class c and cuts no other event;
  - background when no event comes within guard_ms of the window: the background class
    the model itself ranks highest (a stream's events say when a gesture or keyword
    happened, not which background class the rest is, so the model's own choice among them
    is kept and the head only learns where events are and are not);
  - left out (-1) otherwise: the window cuts an event, holds parts of two, or is near one.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tinyfix.errors import TinyfixError
from tinyfix.metrics import Events

LEFT_OUT = -1
DEFAULT_GUARD_MS = 500


def frame_labels(t_ms: NDArray, events: Events, window_ms: int, raw: NDArray,
                 background: tuple[int, ...], guard_ms: int = DEFAULT_GUARD_MS
                 ) -> NDArray[np.int64]:
    """One label per frame (LEFT_OUT for frames not to learn from); raw (T, C) are the
    model's own outputs, which pick the background class."""
    t = np.asarray(t_ms, dtype=np.int64)
    scores = np.asarray(raw)
    if scores.ndim != 2 or scores.shape[0] != t.size:
        raise TinyfixError(f"{t.size} frames but raw outputs of shape {scores.shape}")
    if window_ms <= 0 or guard_ms < 0:
        raise TinyfixError(f"window must be > 0 ms and guard >= 0 ms, got {window_ms} and "
                           f"{guard_ms}")
    if not background:
        raise TinyfixError("frame labels need at least one background class")
    bg = np.asarray(sorted(background), dtype=np.int64)
    start = t - window_ms
    s, e = events.start_ms[None, :], events.end_ms[None, :]
    whole = (s >= start[:, None]) & (e <= t[:, None])
    overlaps = (s <= t[:, None]) & (e >= start[:, None])
    near = (s <= t[:, None] + guard_ms) & (e >= start[:, None] - guard_ms)
    labels = np.full(t.size, LEFT_OUT, dtype=np.int64)
    quiet = ~near.any(axis=1)
    labels[quiet] = bg[np.argmax(scores[quiet][:, bg], axis=1)]
    cut = (overlaps & ~whole).any(axis=1)
    for i in np.flatnonzero(whole.any(axis=1) & ~cut):
        classes = np.unique(events.label[whole[i]])
        if classes.size == 1:
            labels[i] = int(classes[0])
    return labels


def model_window_ms(input_shape: tuple[int, ...], sample_rate_hz: float) -> int:
    """The input window of a model whose input is (1, time steps, channels) or
    (time steps, channels), at the sensor's sample rate."""
    dims = [d for d in input_shape if d != 1]
    if len(dims) < 2 or sample_rate_hz <= 0:
        raise TinyfixError(f"cannot tell the input window of a model with input shape "
                           f"{list(input_shape)}: give the window in ms")
    return round(dims[-2] * 1000.0 / sample_rate_hz)
