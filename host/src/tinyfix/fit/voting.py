# SPDX-License-Identifier: Apache-2.0
"""Stage 4: voting parameters (window, minimum count, threshold, suppression, mode) for a
target false-accept rate, by a staged grid search. Every candidate runs through the C core
over the stream; the objective is, in order: how far the false-accept rate's upper
confidence bound lies above the target, then the false-reject rate, then false accepts per
hour (fit.fa_rate). The scorer says which frames a candidate is judged on: fit.stream_cv
judges each on every block of the stream held out in turn.

Windows are limited to what the device's vote ring holds (DeviceLimits.max_vote_frames at
the stream's shortest frame spacing): a longer window would drop frames on the device that
the host kept, and the host's figures would not be the device's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from tinyfix import metrics
from tinyfix.core import Core, ModelInfo
from tinyfix.errors import TinyfixError
from tinyfix.fit.detections import detections_from_run
from tinyfix.fit.fa_rate import DEFAULT_CONFIDENCE, fa_rate
from tinyfix.fit.float_params import FloatParams, VoteSettings
from tinyfix.fit.options import DeviceLimits
from tinyfix.fit.quantize import quantize
from tinyfix.fit.through_core import run_frames

WINDOWS_MS = (250, 500, 750, 1000, 1500, 2000)
THRESHOLDS = (64, 96, 128, 160, 192, 208, 224, 240)
MIN_COUNTS = (1, 2, 3, 4, 6, 8, 12)
SUPPRESSIONS_MS = (0, 500, 1000, 1500, 2500, 4000)
MODES = ("average", "majority")


@dataclass(frozen=True)
class Stream:
    raw: NDArray
    t_ms: NDArray[np.int64]
    events: metrics.Events
    features: NDArray | None = None  # the model's feature vectors, for a head stage

    @property
    def duration_ms(self) -> int:
        return metrics.stream_duration_ms(self.t_ms)

    def between(self, t0: int, t1: int) -> Stream:
        """Frames at t0 <= t < t1 and the events that start there."""
        keep = (self.t_ms >= t0) & (self.t_ms < t1)
        feats = None if self.features is None else self.features[keep]
        return Stream(self.raw[keep], self.t_ms[keep], self.events.within(t0, t1), feats)


Scorer = Callable[[VoteSettings], metrics.StreamScore]


def objective(score: metrics.StreamScore, target_fa_per_hour: float,
              confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float, float]:
    """Smaller is better: the upper end of the false-accept rate's interval above the
    target, then false rejects, then the false-accept rate itself."""
    rate = fa_rate(score.false_accepts, score.duration_ms / metrics.MS_PER_HOUR, confidence)
    return (max(0.0, rate.high - target_fa_per_hour), score.false_reject_rate, rate.per_hour)


def score_state(core: Core, model: ModelInfo, fp: FloatParams, stream: Stream,
                limits: DeviceLimits) -> metrics.StreamScore:
    params, _ = quantize(core, model, fp, limits)
    run = run_frames(core, model, params, stream.raw, stream.t_ms, stream.features)
    t, lab = detections_from_run(run, stream.t_ms, fp.vote is not None, fp.background)
    return metrics.score_detections(t, lab, stream.events, stream.duration_ms)


def frame_gaps(t_ms: NDArray[np.int64]) -> tuple[int, int]:
    """(shortest, median) positive spacing of frames in ms."""
    gaps = np.diff(np.unique(t_ms))
    if gaps.size == 0:
        raise TinyfixError("a stream needs at least two distinct frame times")
    return int(gaps.min()), int(np.median(gaps))


def most_frames_in_window(t_ms: NDArray[np.int64], window_ms: int) -> int:
    """Largest number of frames the vote ring holds at once: frames in [t - window, t]."""
    t = np.sort(np.asarray(t_ms, dtype=np.int64))
    oldest = np.searchsorted(t, t - window_ms, side="left")
    last = np.searchsorted(t, t, side="right") - 1
    return int(np.max(last - oldest + 1)) if t.size else 0


def usable_windows(t_ms: NDArray[np.int64], limits: DeviceLimits) -> list[int]:
    """Candidate windows whose frames always fit the device's vote ring on this stream;
    if none does, the longest window (in ms) that fits."""
    fits = [w for w in WINDOWS_MS
            if most_frames_in_window(t_ms, w) <= limits.max_vote_frames]
    if fits:
        return fits
    lo, hi = 0, WINDOWS_MS[0]
    if most_frames_in_window(t_ms, 0) > limits.max_vote_frames:
        raise TinyfixError(f"more than {limits.max_vote_frames} frames share one timestamp; "
                           "the device's vote ring cannot hold them")
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if most_frames_in_window(t_ms, mid) <= limits.max_vote_frames:
            lo = mid
        else:
            hi = mid - 1
    return [lo]


def _frames_in(window_ms: int, t_ms: NDArray[np.int64]) -> int:
    return window_ms // frame_gaps(t_ms)[1] + 1


def search_vote(scorer: Scorer, t_ms: NDArray[np.int64], target_fa_per_hour: float,
                limits: DeviceLimits, confidence: float = DEFAULT_CONFIDENCE
                ) -> tuple[VoteSettings, dict[VoteSettings, metrics.StreamScore]]:
    """Best voting settings by `scorer` on a stream at times t_ms, and the score of every
    setting tried (a false-accept / false-reject curve)."""
    seen: dict[VoteSettings, metrics.StreamScore] = {}

    def score(v: VoteSettings) -> tuple[float, float, float]:
        if v not in seen:
            seen[v] = scorer(v)
        return objective(seen[v], target_fa_per_hour, confidence)

    def best(candidates: list[VoteSettings]) -> VoteSettings:
        return min(candidates, key=lambda v: (score(v), v.window_ms, -v.threshold))

    windows = usable_windows(t_ms, limits)
    start = VoteSettings(min_count=1, suppression_ms=1500)
    v = best([replace(start, window_ms=w, threshold=th, mode=m,
                      min_count=min(3, _frames_in(w, t_ms), limits.max_vote_frames))
              for w in windows for th in THRESHOLDS for m in MODES])
    counts = [k for k in MIN_COUNTS
              if k <= min(_frames_in(v.window_ms, t_ms), limits.max_vote_frames)]
    v = best([replace(v, min_count=k, threshold=th) for k in counts for th in THRESHOLDS])
    v = best([replace(v, suppression_ms=s) for s in SUPPRESSIONS_MS])
    fine = sorted({min(255, max(0, v.threshold + d)) for d in range(-24, 25, 8)})
    v = best([replace(v, threshold=th) for th in fine])
    return v, seen
