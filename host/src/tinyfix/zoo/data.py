# SPDX-License-Identifier: Apache-2.0
"""Labelled inputs for zoo models: class-conditional distributions, field drift, .npz files.

Inputs are in the model's real input units (what a sensor delivers before quantization):
each class has a smooth random prototype; a sample is the common level plus a random
amplitude of its class's prototype, a random mix of smooth variation patterns shared by
all classes, and white noise. A classifier's labels are its float reference's arg-max on
the clean input, so "lab" data is what the model was built for. "field" data is the same
samples through a deterministic sensor drift (per-channel gain and offset errors and more
noise), with the labels of the clean inputs: what the int8 model loses there is what a
correction has to win back. The channel is the input's last axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

DRIFTS = ("lab", "field")
_MAX_GAIN_SD = 0.33


def smooth_field(shape: tuple[int, ...], rng: np.random.Generator,
                 smoothness: float = 0.12) -> np.ndarray:
    """A random pattern, smooth over every axis but the channel axis, RMS 1."""
    white = rng.standard_normal(shape)
    spatial = shape if len(shape) == 1 else shape[:-1]
    sigma = [max(0.7, smoothness * d) for d in spatial]
    if len(shape) > 1:
        sigma.append(0.0)
    smooth = gaussian_filter(white, sigma=sigma, mode="wrap")
    return smooth / (np.sqrt(np.mean(smooth ** 2)) + 1e-12)


@dataclass(frozen=True)
class Drift:
    """A sensor in the field: x' = m_c + gain_c * (x - m_c) + offset_c + noise, with m_c the
    channel's lab mean (so a gain error does not also move the level), clipped like the
    sensor by the caller.

    Sizes are fractions of each channel's lab spread (its standard deviation); the gains
    and offsets come from `drift_seed` alone, so every field data set drawn from one model
    shares the same device, as a correction fitted on one split must transfer to the next.
    """

    offset: float = 0.6
    gain: float = 0.2
    noise: float = 0.3

    def scaled(self, severity: float) -> Drift:
        """Every part times `severity`, but gain errors stay below about ±100% (3 sd)."""
        return Drift(self.offset * severity, min(self.gain * severity, _MAX_GAIN_SD),
                     self.noise * severity)

    def apply(self, x: np.ndarray, channel_mean: np.ndarray, channel_sd: np.ndarray,
              drift_seed: int, noise_rng: np.random.Generator) -> np.ndarray:
        device = np.random.default_rng([0x7F1E1D, drift_seed])
        n_channels = channel_sd.size
        gain = 1.0 + self.gain * device.standard_normal(n_channels)
        offset = self.offset * channel_sd * device.standard_normal(n_channels)
        drifted = channel_mean + gain * (x - channel_mean) + offset
        return drifted + self.noise * channel_sd * noise_rng.standard_normal(x.shape)


@dataclass(frozen=True)
class ClassConditional:
    """x = centre + scale * (a * prototype[class] + Σ z_j * variation_j + white noise).

    `units` = (centre, scale) maps the standardized value to real units; `clip` bounds
    the real value (a pixel's 0..255). The amplitude a varies ±30% per sample.
    """

    prototypes: np.ndarray  # (classes, *shape)
    variations: np.ndarray  # (patterns, *shape)
    variation_sd: float
    noise_sd: float
    amplitude_spread: float
    units: tuple[float, float] = (0.0, 1.0)
    clip: tuple[float, float] | None = None

    @classmethod
    def random(cls, shape: tuple[int, ...], n_classes: int, rng: np.random.Generator,
               separation: float = 1.0, variation_sd: float = 0.6, noise_sd: float = 0.5,
               n_variations: int = 12, units: tuple[float, float] = (0.0, 1.0),
               clip: tuple[float, float] | None = None) -> ClassConditional:
        prototypes = separation * np.stack([smooth_field(shape, rng) for _ in range(n_classes)])
        variations = np.stack([smooth_field(shape, rng, 0.2) for _ in range(n_variations)])
        return cls(prototypes, variations, variation_sd / np.sqrt(n_variations), noise_sd,
                   0.3, units, clip)

    @property
    def n_classes(self) -> int:
        return int(self.prototypes.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.prototypes.shape[1:])

    def sample(self, n: int, rng: np.random.Generator,
               classes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """n inputs (float32, real units) and the class each was drawn from."""
        if classes is None:
            classes = rng.integers(0, self.n_classes, n)
        amplitude = 1.0 + self.amplitude_spread * rng.uniform(-1.0, 1.0, n)
        mix = rng.standard_normal((n, self.variations.shape[0])) * self.variation_sd
        x = (amplitude.reshape(-1, *[1] * len(self.shape)) * self.prototypes[classes]).astype(
            np.float32)
        x += np.tensordot(mix, self.variations, axes=1).astype(np.float32)
        x += self.noise_sd * rng.standard_normal(x.shape, dtype=np.float32)
        return self._to_units(x), np.asarray(classes, dtype=np.int64)

    def _to_units(self, x: np.ndarray) -> np.ndarray:
        centre, scale = self.units
        real = centre + scale * x
        if self.clip is not None:
            real = np.clip(real, *self.clip)
        return real.astype(np.float32)

    def clip_real(self, x: np.ndarray) -> np.ndarray:
        return (np.clip(x, *self.clip) if self.clip is not None else x).astype(np.float32)


@dataclass(frozen=True)
class NormalSubspace:
    """Autoencoder data: normal inputs near a low-dimensional subspace, anomalies off it.

    Normal: level + basis @ z (z with decaying spreads) + small white noise. An anomaly adds
    energy outside the subspace at `anomaly_rms`: half of them a broadband smooth pattern
    (a machine that sounds different), half a narrow bump (a tone or a rattle).
    """

    level: np.ndarray  # (*shape)
    basis: np.ndarray  # (dims, *shape), orthogonal rows of RMS 1
    spreads: np.ndarray  # (dims,)
    noise_sd: float
    anomaly_rms: float

    @classmethod
    def random(cls, shape: tuple[int, ...], dims: int, rng: np.random.Generator,
               noise_sd: float = 0.05, anomaly_rms: float = 0.1) -> NormalSubspace:
        fields = np.stack([smooth_field(shape, rng, 0.03) for _ in range(dims)])
        q, _ = np.linalg.qr(fields.reshape(dims, -1).T)
        basis = q.T.reshape(dims, *shape) * np.sqrt(np.prod(shape))
        spreads = 0.4 * 0.8 ** np.arange(dims)
        level = 0.5 * smooth_field(shape, rng, 0.05)
        return cls(level, basis, spreads, noise_sd, anomaly_rms)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.level.shape)

    def normal(self, n: int, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal((n, self.spreads.size)) * self.spreads
        x = self.level + np.tensordot(z, self.basis, axes=1)
        # Each recording has its own noise floor, so normal scores spread as real ones do.
        floor = self.noise_sd * np.exp(0.3 * rng.standard_normal((n, *[1] * len(self.shape))))
        return (x + floor * rng.standard_normal(x.shape)).astype(np.float32)

    def anomaly_patterns(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n patterns outside the normal subspace, RMS `anomaly_rms`."""
        size = int(np.prod(self.shape))
        patterns = np.empty((n, size))
        where = np.arange(size)
        for i in range(n):
            if i % 2 == 0:
                patterns[i] = smooth_field(self.shape, rng, 0.02).reshape(-1)
            else:
                centre, width = rng.uniform(0, size), rng.uniform(2.0, 6.0)
                patterns[i] = np.exp(-0.5 * ((where - centre) / width) ** 2)
        flat_basis = self.basis.reshape(self.spreads.size, -1) / np.sqrt(size)
        patterns -= (patterns @ flat_basis.T) @ flat_basis
        patterns *= self.anomaly_rms / (np.sqrt(np.mean(patterns ** 2, axis=1)) + 1e-12)[:, None]
        return patterns.reshape(n, *self.shape)

    def sample(self, n: int, rng: np.random.Generator,
               anomaly_fraction: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
        """n inputs and y (0 normal, 1 anomaly)."""
        y = (rng.uniform(size=n) < anomaly_fraction).astype(np.int64)
        x = self.normal(n, rng)
        anomalies = np.flatnonzero(y)
        x[anomalies] += self.anomaly_patterns(anomalies.size, rng).astype(np.float32)
        return x, y

    def clip_real(self, x: np.ndarray) -> np.ndarray:
        return x.astype(np.float32)


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each channel (last axis) over a batch."""
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    return flat.mean(axis=0), flat.std(axis=0) + 1e-9


def reconstruction_error(x: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """Mean squared error per sample: an autoencoder's anomaly score."""
    n = x.shape[0]
    diff = x.reshape(n, -1).astype(np.float64) - reconstruction.reshape(n, -1)
    return np.mean(diff ** 2, axis=1)


def write_npz(path: str | Path, x: np.ndarray, y: np.ndarray,
              class_names: tuple[str, ...] | None = None) -> Path:
    """A classification .npz as the README's "Data formats" describe (`x`, `y`,
    `class_names`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {"x": np.asarray(x), "y": np.asarray(y, dtype=np.int64)}
    if class_names is not None:
        arrays["class_names"] = np.asarray(class_names)
    np.savez(path, **arrays)
    return path
