# SPDX-License-Identifier: Apache-2.0
"""Choose what runs on a stream by cross-validation over its time blocks: for every chain
(fit.stream_chains), voting settings searched on the pooled out-of-fold score, and the
chain alone (no voting). The winner has the smallest objective (fit.voting.objective): its
false-accept rate's upper confidence bound within the target, then the fewest false
rejects. Its pooled score is the prediction for new data, with the Poisson interval it
rests on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tinyfix import metrics
from tinyfix.core import Core, ModelInfo
from tinyfix.fit.fa_rate import FaRate, fa_rate, hours_needed
from tinyfix.fit.float_params import VoteSettings
from tinyfix.fit.options import DeviceLimits
from tinyfix.fit.stream_blocks import pooled
from tinyfix.fit.stream_chains import Chain
from tinyfix.fit.voting import Stream, objective, score_state, search_vote


@dataclass(frozen=True)
class Candidate:
    chain: Chain
    vote: VoteSettings | None
    score: metrics.StreamScore  # pooled over the held-out blocks


@dataclass(frozen=True)
class OperatingPoint:
    """What to expect on new data. `own`: the chosen set's pooled out-of-fold count, which
    the target is checked against; it flatters the winner of many candidates (a lucky
    zero). `nested`: the selection re-run without each block and scored on it, which pays
    for the pick but chooses on less data. The interval spans both."""

    own: FaRate
    nested: FaRate
    false_reject_rate: float  # the chosen set's, out-of-fold
    nested_false_reject_rate: float
    events: int
    target_fa_per_hour: float
    blocks: int

    @property
    def per_hour(self) -> float:
        return self.own.per_hour

    @property
    def low(self) -> float:
        return min(self.own.low, self.nested.low)

    @property
    def high(self) -> float:
        return max(self.own.high, self.nested.high)

    @property
    def confidence(self) -> float:
        return self.own.confidence

    @property
    def meets_target(self) -> bool:
        return self.own.high <= self.target_fa_per_hour

    @property
    def hours_needed(self) -> float:
        return hours_needed(self.target_fa_per_hour, self.confidence)

    def describe(self) -> str:
        text = (f"predicted {self.per_hour:.1f} FA/h ({100 * self.confidence:.0f}% interval "
                f"{self.low:.1f}-{self.high:.1f}: the chosen set's own {self.own.count} false "
                f"accepts in {60 * self.own.hours:.1f} min, upper bound {self.own.high:.1f}; "
                f"the selection re-run without each of {self.blocks} time blocks "
                f"{self.nested.per_hour:.1f} FA/h), false rejects "
                f"{100 * self.false_reject_rate:.1f}% of {self.events} events (re-run: "
                f"{100 * self.nested_false_reject_rate:.1f}%)")
        if not self.meets_target:
            text += (f"; the calibration stream is too short to hold "
                     f"{self.target_fa_per_hour:g} FA/h at {100 * self.confidence:.0f}%"
                     f" confidence: that needs at least {60 * self.hours_needed:.0f} min "
                     f"with no false accept, it has {60 * self.own.hours:.1f} min")
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"fa_per_hour": self.per_hour, "low": self.low, "high": self.high,
                "confidence": self.confidence, "hours": self.own.hours,
                "false_reject_rate": self.false_reject_rate, "events": self.events,
                "target_fa_per_hour": self.target_fa_per_hour,
                "meets_target": self.meets_target, "blocks": self.blocks,
                "hours_needed": self.hours_needed, "chosen": self.own.as_dict(),
                "nested": {**self.nested.as_dict(),
                           "false_reject_rate": self.nested_false_reject_rate}}


@dataclass(frozen=True)
class Selection:
    best: Candidate
    per_chain: dict[str, Candidate]  # each chain's best
    trials: list[tuple[VoteSettings, metrics.StreamScore]]  # the winning chain's search
    point: OperatingPoint


def _rate(s: metrics.StreamScore, confidence: float) -> FaRate:
    return fa_rate(s.false_accepts, s.duration_ms / metrics.MS_PER_HOUR, confidence)


class CrossValidated:
    """Scores of (chain, voting) on every block, each with the chain fitted without that
    block; cached, so a selection can be re-run without any one block."""

    def __init__(self, core: Core, model: ModelInfo, blocks: Sequence[Stream],
                 limits: DeviceLimits) -> None:
        self.core, self.model, self.blocks, self.limits = core, model, list(blocks), limits
        self.per_block: dict[tuple[str, VoteSettings | None], list[metrics.StreamScore]] = {}

    def score(self, chain: Chain, vote: VoteSettings | None) -> metrics.StreamScore:
        key = (chain.name, vote)
        if key not in self.per_block:
            self.per_block[key] = [
                score_state(self.core, self.model, fp.replace(vote=vote), block, self.limits)
                for fp, block in zip(chain.folds, self.blocks, strict=True)]
        return pooled(self.per_block[key])


def nested_estimate(cv: CrossValidated, target_fa_per_hour: float, confidence: float
                    ) -> metrics.StreamScore:
    """What the selection itself delivers on data it did not see: for each block, pick the
    best candidate by the other blocks alone and score it on that block; pooled. Picking
    the best of many candidates flatters the winner's own score (a lucky zero false
    accepts); this estimate pays for the pick."""
    keys = list(cv.per_block)
    picked = []
    for k in range(len(cv.blocks)):
        def without_k(key: tuple[str, VoteSettings | None], k: int = k
                      ) -> tuple[float, float, float]:
            rest = [s for j, s in enumerate(cv.per_block[key]) if j != k]
            return objective(pooled(rest), target_fa_per_hour, confidence)

        best = min(range(len(keys)), key=lambda i: (without_k(keys[i]), i))
        picked.append(cv.per_block[keys[best]][k])
    return pooled(picked)


def select(cv: CrossValidated, chains: Sequence[Chain], stream: Stream,
           target_fa_per_hour: float, confidence: float, vote: bool) -> Selection:
    """The best candidate over `chains` (earlier chains win ties: they are simpler)."""
    best_of: dict[str, Candidate] = {}
    searches: dict[str, list[tuple[VoteSettings, metrics.StreamScore]]] = {}
    order: list[tuple[tuple[float, float, float], int, Candidate]] = []
    for i, chain in enumerate(chains):
        options = [Candidate(chain, None, cv.score(chain, None))]
        if vote:
            v, tried = search_vote(lambda s, c=chain: cv.score(c, s), stream.t_ms,
                                   target_fa_per_hour, cv.limits, confidence)
            searches[chain.name] = list(tried.items())
            options.append(Candidate(chain, v, tried[v]))
        ranked = sorted(options, key=lambda c: (
            objective(c.score, target_fa_per_hour, confidence), c.vote is not None))
        best_of[chain.name] = ranked[0]
        order.append((objective(ranked[0].score, target_fa_per_hour, confidence), i,
                      ranked[0]))
    best = min(order, key=lambda o: (o[0], o[1]))[2]
    own, new = best.score, nested_estimate(cv, target_fa_per_hour, confidence)
    point = OperatingPoint(_rate(own, confidence), _rate(new, confidence),
                           own.false_reject_rate, new.false_reject_rate, own.events,
                           target_fa_per_hour, len(cv.blocks))
    return Selection(best, best_of, searches.get(best.chain.name, []), point)
