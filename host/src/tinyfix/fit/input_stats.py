# SPDX-License-Identifier: Apache-2.0
"""Input-correction offset and gain that make field inputs look like the lab's, per channel.

The field's mean and spread are matched to the lab's: x' = (x - offset) * gain with
gain = sd_lab / sd_field and offset = mean_field - mean_lab / gain. What a channel looks
like also depends on the class mix (an accelerometer at rest has less spread than one
waving), so the lab reference is taken per class and mixed at the field's class priors
when they are known (estimated without labels by fit.em_prior); otherwise at the lab's
own mix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tinyfix.errors import TinyfixError
from tinyfix.fit.float_params import InputSettings

MIN_SPREAD = 1e-6


def _samples(x: NDArray, n_channels: int) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim < 2 or arr.shape[-1] != n_channels:
        raise TinyfixError(f"inputs must end in {n_channels} channels, got shape {arr.shape}")
    return arr.reshape(arr.shape[0], -1, n_channels)


@dataclass(frozen=True)
class ChannelStats:
    mean: NDArray[np.float64]  # (channels,)
    sd: NDArray[np.float64]  # (channels,)

    @classmethod
    def of(cls, x: NDArray, n_channels: int) -> ChannelStats:
        s = _samples(x, n_channels).reshape(-1, n_channels)
        if s.shape[0] < 2:
            raise TinyfixError("input statistics need at least two samples")
        return cls(s.mean(axis=0), s.std(axis=0))


@dataclass(frozen=True)
class ReferenceStats:
    """Lab inputs per class: first and second moments (classes, channels), and the lab's
    class mix. Without labels there is one pseudo-class."""

    mean: NDArray[np.float64]
    second: NDArray[np.float64]
    priors: NDArray[np.float64]

    @classmethod
    def of(cls, x: NDArray, y: NDArray | None, n_classes: int, n_channels: int
           ) -> ReferenceStats:
        s = _samples(x, n_channels)
        if y is None:
            flat = s.reshape(-1, n_channels)
            return cls(flat.mean(axis=0)[None], (flat ** 2).mean(axis=0)[None], np.ones(1))
        labels = np.asarray(y, dtype=np.int64)
        counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
        mean = np.zeros((n_classes, n_channels))
        second = np.zeros((n_classes, n_channels))
        for c in np.flatnonzero(counts):
            flat = s[labels == c].reshape(-1, n_channels)
            mean[c], second[c] = flat.mean(axis=0), (flat ** 2).mean(axis=0)
        return cls(mean, second, counts / counts.sum())

    @property
    def per_class(self) -> bool:
        return self.priors.size > 1

    def at(self, priors: NDArray[np.float64] | None = None) -> ChannelStats:
        """The lab's statistics had its inputs come at this class mix (None: its own)."""
        w = self.priors if priors is None or not self.per_class else np.asarray(priors)
        w = np.where(self.priors > 0, w, 0.0)  # classes the lab never showed cannot count
        w = w / w.sum()
        mean = w @ self.mean
        return ChannelStats(mean, np.sqrt(np.maximum(w @ self.second - mean ** 2, 0.0)))


def match_inputs(field: ChannelStats, reference: ChannelStats) -> InputSettings:
    """Offset and gain per channel that map the field's mean and spread onto the lab's."""
    if np.any(field.sd < MIN_SPREAD) or np.any(reference.sd < MIN_SPREAD):
        raise TinyfixError("a channel has no spread in the field or lab data; its gain is "
                           "undefined")
    gain = reference.sd / field.sd
    return InputSettings(offset=field.mean - reference.mean / gain, gain=gain)
