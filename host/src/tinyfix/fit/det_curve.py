# SPDX-License-Identifier: Apache-2.0
"""DET curves of streaming detectors: false-reject rate against false accepts per hour as
one threshold sweeps, every point through the C core.

- raw top-1: a detection when the top class becomes an event class with at least the
  swept confidence (the core's threshold stage on the uncorrected outputs);
- RecognizeCommands' defaults (1000 ms average over at least 3 frames, 1500 ms
  suppression) with its detection threshold swept; it reads the model's int8 scores when
  the model outputs probabilities, else the softmax of its logits;
- the fitted chain with its own voting and the voting threshold swept (or its confidence
  threshold, when voting was not kept).

On the calibration stream the fitted chain's points are out-of-fold (each block scored
with the stages fitted without it); on an evaluation stream they use the final set."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tinyfix import metrics
from tinyfix.core import Core, ModelInfo
from tinyfix.fit.float_params import FloatParams, VoteSettings
from tinyfix.fit.options import DeviceLimits
from tinyfix.fit.stream_blocks import score_pairs
from tinyfix.fit.voting import Stream

THRESHOLDS = (*range(0, 256, 8), 255)  # score8: probability * 256


def recognize_commands_defaults(output_kind: str) -> VoteSettings:
    return VoteSettings(source="raw" if output_kind == "probs" else "corrected")


@dataclass(frozen=True)
class DetCurve:
    name: str
    threshold: tuple[int, ...]
    fa_per_hour: tuple[float, ...]
    false_reject_rate: tuple[float, ...]
    marked: int | None = None  # index of the detector's own (default or chosen) point

    def frr_at(self, fa_per_hour: float) -> float:
        """Fewest false rejects of a point with at most this false-accept rate (1.0 if
        none)."""
        ok = [r for f, r in zip(self.fa_per_hour, self.false_reject_rate, strict=True)
              if f <= fa_per_hour]
        return min(ok, default=1.0)

    def fa_at(self, false_reject_rate: float) -> float:
        """Fewest false accepts per hour of a point with at most this false-reject rate."""
        ok = [f for f, r in zip(self.fa_per_hour, self.false_reject_rate, strict=True)
              if r <= false_reject_rate]
        return min(ok, default=float("inf"))

    def front(self) -> tuple[list[float], list[float]]:
        """The trade-off the detector can reach: points no other point beats on both
        axes, by rising false-accept rate."""
        points = sorted(zip(self.fa_per_hour, self.false_reject_rate, strict=True))
        fa: list[float] = []
        frr: list[float] = []
        for f, r in points:
            if not frr or r < frr[-1]:
                fa.append(f)
                frr.append(r)
        return fa, frr

    def as_dict(self) -> dict[str, Any]:
        return {"threshold": list(self.threshold), "fa_per_hour": list(self.fa_per_hour),
                "false_reject_rate": list(self.false_reject_rate), "marked": self.marked}


Pairs = Sequence[tuple[FloatParams, Stream]]


def sweep(name: str, score_of: Callable[[int], metrics.StreamScore],
          marked_threshold: int | None = None) -> DetCurve:
    ths = sorted({*THRESHOLDS, *(() if marked_threshold is None else (marked_threshold,))})
    scores = [score_of(th) for th in ths]
    return DetCurve(name, tuple(ths), tuple(s.false_accepts_per_hour for s in scores),
                    tuple(s.false_reject_rate for s in scores),
                    None if marked_threshold is None else ths.index(marked_threshold))


def _with_confidence(fp: FloatParams, threshold: int) -> FloatParams:
    event = np.ones(fp.n_classes)
    event[list(fp.background)] = 0.0
    return fp.replace(class_threshold=event * (threshold / 256.0), vote=None)


def detector_curve(core: Core, model: ModelInfo, name: str, pairs: Pairs,
                   vote: VoteSettings | None, limits: DeviceLimits) -> DetCurve:
    """States on their blocks, with `vote`'s threshold swept (no vote: the top-1
    confidence threshold swept, the unthresholded detector marked)."""
    if vote is None:
        return sweep(name, lambda th: score_pairs(
            core, model, [(_with_confidence(fp, th), s) for fp, s in pairs], limits), 0)
    return sweep(name, lambda th: score_pairs(
        core, model, [(fp.replace(vote=replace(vote, threshold=th)), s)
                      for fp, s in pairs], limits), vote.threshold)


def standard_curves(core: Core, model: ModelInfo, identity: FloatParams,
                    streams: Sequence[Stream], limits: DeviceLimits) -> list[DetCurve]:
    """Raw top-1 and RecognizeCommands' defaults on `streams` (no fitting involved)."""
    pairs = [(identity, s) for s in streams]
    return [detector_curve(core, model, "raw top-1", pairs, None, limits),
            detector_curve(core, model, "RecognizeCommands defaults", pairs,
                           recognize_commands_defaults(identity.output_kind), limits)]
