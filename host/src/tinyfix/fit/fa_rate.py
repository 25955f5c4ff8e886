# SPDX-License-Identifier: Apache-2.0
"""False accepts per hour as a Poisson rate: a count of false accepts over some hours of
stream, with its exact (Garwood) confidence interval.

A target the user can trust is one the interval's upper end meets: with 3 false accepts in
5 minutes the point estimate is 36/h but the 90 % interval reaches 95/h. A stream with no
false accept at all still bounds the rate only to about 3 / hours (90 % two-sided)."""

from __future__ import annotations

from dataclasses import dataclass

from scipy.stats import chi2

from tinyfix.errors import TinyfixError

DEFAULT_CONFIDENCE = 0.9


def _check(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise TinyfixError(f"confidence must be in (0, 1), got {confidence}")


@dataclass(frozen=True)
class FaRate:
    """count false accepts in `hours`; [low, high] the two-sided `confidence` interval of
    the rate per hour."""

    count: int
    hours: float
    confidence: float
    low: float
    high: float

    @property
    def per_hour(self) -> float:
        return self.count / self.hours if self.hours > 0 else float("inf")

    def describe(self) -> str:
        return (f"{self.per_hour:.1f} FA/h ({100 * self.confidence:.0f}% interval "
                f"{self.low:.1f}-{self.high:.1f}; {self.count} false accepts in "
                f"{60 * self.hours:.1f} min)")

    def as_dict(self) -> dict[str, float]:
        return {"fa_per_hour": self.per_hour, "low": self.low, "high": self.high,
                "false_accepts": float(self.count), "hours": self.hours,
                "confidence": self.confidence}


def fa_rate(count: int, hours: float, confidence: float = DEFAULT_CONFIDENCE) -> FaRate:
    """Exact Poisson interval: chi-square quantiles of 2k and 2k + 2 degrees of freedom."""
    _check(confidence)
    if count < 0:
        raise TinyfixError(f"a false-accept count cannot be negative: {count}")
    if hours <= 0:
        return FaRate(count, hours, confidence, 0.0, float("inf"))
    tail = (1.0 - confidence) / 2
    low = 0.0 if count == 0 else chi2.ppf(tail, 2 * count) / 2 / hours
    high = chi2.ppf(1.0 - tail, 2 * count + 2) / 2 / hours
    return FaRate(int(count), float(hours), confidence, float(low), float(high))


def hours_needed(target_fa_per_hour: float, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """Shortest stream whose interval can end at or below the target: the one with no
    false accept at all (a detector that does make some needs longer)."""
    _check(confidence)
    if target_fa_per_hour <= 0:
        raise TinyfixError(f"a false-accept target must be > 0 per hour, got "
                           f"{target_fa_per_hour}")
    return float(chi2.ppf(1.0 - (1.0 - confidence) / 2, 2) / 2 / target_fa_per_hour)
