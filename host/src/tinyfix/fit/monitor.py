# SPDX-License-Identifier: Apache-2.0
"""Reference figures for the device's drift monitor: what the calibration data looked like
after correction (mean top-class confidence, class mix, input mean and spread), stored in
the parameter set so the device can tell when its inputs have moved on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tinyfix.core import Corrector, Params
from tinyfix.fit.result import FitResult

MONITOR = 0x80


@dataclass(frozen=True)
class MonitorSettings:
    """How far the running figures may move before recalibration is advised."""

    conf_drop: float = 0.15  # mean top-class probability below the reference by this much
    prior_tv: float = 0.25  # total-variation distance of the class mix
    input_z: float = 3.0  # channel mean shift in reference standard deviations
    rate_shift: int = 7  # running statistics over about 2^7 = 128 frames
    min_frames: int = 256


def add_monitor(result: FitResult, raw_cal: NDArray, x_cal: NDArray | None = None,
                settings: MonitorSettings | None = None, *,
                features: NDArray | None = None) -> Params:
    """Turn on the MONITOR stage of `result.params` with references measured through the C
    core on the calibration outputs (with their features when the set has a head, and the
    inputs in real units, channels last); reseals."""
    s = settings or MonitorSettings()
    params = result.params
    out = Corrector(result.core, result.model, params).run(raw_cal, features=features)
    c = params.c
    n = result.model.n_classes
    c.flags |= MONITOR
    m = c.monitor
    m.rate_shift = s.rate_shift
    m.min_frames = s.min_frames
    m.ref_conf = round(float(np.mean(out["top_prob"])))
    m.conf_drop = round(s.conf_drop * 32768)
    m.prior_tv = round(s.prior_tv * 32768)
    share = np.bincount(out["top_class"], minlength=n) / max(len(raw_cal), 1)
    for k in range(n):
        m.ref_prior[k] = round(share[k] * 32768)
    m.input_z_q8 = 0
    channels = result.model.n_channels
    if x_cal is not None and channels and x_cal.dtype != np.int8:
        windows = np.asarray(x_cal, dtype=np.float64).reshape(len(x_cal), -1, channels)
        # The device's running input mean spans about a window, so the reference spread is
        # that of window means, not of single samples.
        window_means = windows.mean(axis=1)
        mean = window_means.mean(axis=0)
        spread = np.maximum(window_means.std(axis=0), 1e-3)
        m.input_z_q8 = round(s.input_z * 256)
        for k in range(channels):
            m.ref_in_mean[k] = round(mean[k] * 65536)
            m.ref_in_std[k] = round(spread[k] * 65536)
    return params.seal()
