# SPDX-License-Identifier: Apache-2.0
"""Synthetic device outputs with a known miscalibration, for the fit tests.

Classification: x ~ N(2 e_y, I), so the Bayes log-posterior is 2 x_c + log prior_c. The
"device" reports 3 * 2 x_c + shift_c (overconfident by 3, biased per class) as int8 logits,
and the field data has a class mix that differs from the lab's (label shift). The ideal
correction is inv_temperature 1/3 and bias -shift/3 + log prior.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

from tinyfix.core import ModelInfo
from tinyfix.metrics import Events

N_CLASSES = 5
SHIFT = np.array([-4.0, 4.5, -1.0, 2.5, -2.0])
FIELD_PRIORS = np.array([0.4, 0.1, 0.25, 0.1, 0.15])
LOGIT_SCALE = 0.25
LOGITS_MODEL = ModelInfo(model_crc=0x5EED0005, n_classes=N_CLASSES, output_type="int8",
                         output_scale=LOGIT_SCALE, output_zero_point=3)
PROBS_MODEL = ModelInfo(model_crc=0x5EED0006, n_classes=N_CLASSES, output_type="int8",
                        output_scale=1 / 256, output_zero_point=-128)


def field_samples(n: int, seed: int, priors: np.ndarray = FIELD_PRIORS
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(device logits as float, labels, Bayes log-posterior)."""
    rng = np.random.default_rng(seed)
    y = rng.choice(N_CLASSES, size=n, p=priors)
    x = 2.0 * np.eye(N_CLASSES)[y] + rng.normal(size=(n, N_CLASSES))
    device = 3.0 * (2.0 * x) + SHIFT
    return device, y, 2.0 * x + np.log(priors)


def int8_logits(device: np.ndarray, model: ModelInfo = LOGITS_MODEL) -> np.ndarray:
    q = np.round(device / model.output_scale) + model.output_zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def int8_probs(device: np.ndarray) -> np.ndarray:
    q = np.round(softmax(device, axis=1) * 256) - 128
    return np.clip(q, -128, 127).astype(np.int8)


def logits_set(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    device, y, _ = field_samples(n, seed)
    return int8_logits(device), y


# ---- Streaming --------------------------------------------------------------------------

STREAM_MODEL = ModelInfo(model_crc=0x5EED0010, n_classes=4, output_type="int8",
                         output_scale=0.1, output_zero_point=0)
STREAM_BACKGROUND = (0,)


def keyword_stream(seconds: int, seed: int, hop_ms: int = 50, *, noise: float = 1.0,
                   drift: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0), gap_ms: int = 1500,
                   window_ms: int | None = None) -> tuple[np.ndarray, np.ndarray, Events]:
    """Class 0 is silence; keywords 1-3 last 0.4-0.9 s every few seconds (gaps from
    gap_ms); single-frame spikes of a random keyword make a raw top-1 detector fire
    falsely. `noise` scales the logits' noise, `drift` is added to every frame's logits
    (a drifted device favouring some classes). With `window_ms` the keyword shows in the
    frames whose input window [t - window_ms, t] holds it whole (as a model with that
    window sees it), else from its start to 200 ms after its end."""
    rng = np.random.default_rng(seed)
    t = np.arange(0, seconds * 1000, hop_ms, dtype=np.int64)
    starts, ends, labels = [], [], []
    s = 1000
    while s < seconds * 1000 - 2500:
        d = int(rng.integers(400, 900))
        starts.append(s)
        ends.append(s + d)
        labels.append(int(rng.integers(1, 4)))
        s += d + int(rng.integers(gap_ms, gap_ms + 2500))
    logit = rng.normal(0.0, noise, (t.size, 4)) + np.asarray(drift)
    logit[:, 0] += 2.0
    for a, b, c in zip(starts, ends, labels, strict=True):
        shows = (t >= a) & (t <= b + 200) if window_ms is None else (t >= b) & (t <= a + window_ms)
        logit[shows, c] += 4.0
    spikes = rng.random(t.size) < 0.03
    logit[spikes, rng.integers(1, 4, int(spikes.sum()))] += 3.5
    raw = np.clip(np.round(logit / STREAM_MODEL.output_scale), -128, 127).astype(np.int8)
    return raw, t, Events.of(starts, ends, labels)
