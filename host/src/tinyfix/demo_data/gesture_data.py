# SPDX-License-Identifier: Apache-2.0
"""Deterministic, physically grounded 3-axis accelerometer data for the demo model.

Units: every value is specific force in m/s^2 in the device's body frame (what Zephyr's
sensor API reports for SENSOR_CHAN_ACCEL_XYZ). A device lying still, screen up, reads
about (0, 0, +9.81). Windows are 64 samples at a nominal 50 Hz (1.28 s), shape (64, 3),
axis order x, y, z.

How a sample is made:

1. Motion on a fine 500 Hz time grid, in a world frame (x to the user's right, y
   forward, z up): the hand's position (differentiated twice into acceleration), its
   orientation (Euler angles around a "held" pose), tremor, and for taps an impulse
   in the body frame.
2. Specific force in the body frame: R(t)^T (a(t) + g z_up).
3. The sensor: the mounting rotation of its die against the body, a box-car average
   over one output period (its decimation filter), per-axis gain, per-axis offset
   (a fixed part plus a temperature coefficient), white noise, quantization (12 bits
   in the lab, 10 in the field) over a +/-2 g full scale, and clipping at full scale.
   +/-2 g is a usual range for gesture sensing; the hardest shakes and taps clip.
4. Sampling at jittered times: the sensor's clock runs a little fast or slow and each
   sample is read with some latency jitter, while the firmware treats samples as evenly
   spaced 20 ms apart. The filtered signal is interpolated at those true times.

"lab" data is a calibrated sensor on a bench (small per-device spread); "field" data is
one deployed device (``field_profile(seed)``) with the drift real MEMS parts show, more
noise, and a different class mix. All randomness comes from ``numpy.random.default_rng``
seeded explicitly; the documented seeds are in ``SEEDS``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

CLASS_NAMES: tuple[str, ...] = ("idle", "wave", "tap", "circle", "shake", "unknown")
BACKGROUND_CLASSES: tuple[str, ...] = ("idle", "unknown")
GESTURE_CLASSES: tuple[str, ...] = ("wave", "tap", "circle", "shake")

GRAVITY_MPS2 = 9.80665
SAMPLE_RATE_HZ = 50.0
SAMPLE_PERIOD_S = 1.0 / SAMPLE_RATE_HZ
WINDOW_SAMPLES = 64
WINDOW_S = WINDOW_SAMPLES * SAMPLE_PERIOD_S
INPUT_SHAPE: tuple[int, int] = (WINDOW_SAMPLES, 3)
FINE_RATE_HZ = 500.0
FULL_SCALE_MPS2 = 2.0 * GRAVITY_MPS2
REFERENCE_TEMP_C = 25.0

# Nominal "held" pose: screen up, top edge tilted 30 degrees up toward the user's face.
HELD_PITCH_DEG = 30.0
HELD_PITCH_SPREAD_DEG = 10.0
HELD_ROLL_SPREAD_DEG = 10.0
HELD_YAW_SPREAD_DEG = 30.0
# People hold the device differently for each gesture: (pitch mean, pitch spread, roll
# spread) in degrees. Raised and more upright to wave, flatter to tap the screen. The
# overlap is large, but a model trained in the lab learns the pose as a cue, which is
# why a sensor offset in the field moves more than the idle/unknown boundary.
CLASS_POSE_DEG: dict[str, tuple[float, float, float]] = {
    "idle": (HELD_PITCH_DEG, HELD_PITCH_SPREAD_DEG, HELD_ROLL_SPREAD_DEG),
    "wave": (45.0, 12.0, 12.0),
    "tap": (20.0, 8.0, 8.0),
    "circle": (40.0, 12.0, 10.0),
    "shake": (30.0, 15.0, 15.0),
    "unknown": (30.0, 20.0, 20.0),
}

# Gesture duration in a classification window and as a stream event, seconds. At most
# one window minus one 250 ms hop, so some inference window holds a whole event.
GESTURE_DURATION_S = (0.7, 1.0)
EDGE_RAMP_S = 0.12

SEEDS: dict[str, int] = {
    "lab_train": 1001,
    "lab_val": 1002,
    "lab_test": 1003,
    "field_calib": 2001,
    "field_test": 2002,
    "field_device": 2100,
    "stream_lab": 3001,
    "stream_field": 3002,
}

LAB_CLASS_MIX: dict[str, float] = {name: 1.0 / len(CLASS_NAMES) for name in CLASS_NAMES}
FIELD_CLASS_MIX: dict[str, float] = {
    "idle": 0.30,
    "wave": 0.10,
    "tap": 0.20,
    "circle": 0.06,
    "shake": 0.08,
    "unknown": 0.26,
}
LAB_EVENT_MIX: dict[str, float] = {name: 0.25 for name in GESTURE_CLASSES}
FIELD_EVENT_MIX: dict[str, float] = {
    "wave": 0.25,
    "tap": 0.45,
    "circle": 0.10,
    "shake": 0.20,
}

FloatArray = NDArray[np.float64]
Params = dict[str, FloatArray]


@dataclass(frozen=True)
class SensorProfile:
    """How one accelerometer distorts the true specific force.

    Offsets, tempcos and noise are in m/s^2 (per degree Celsius for tempco); gains are
    dimensionless; angles are degrees; rate_error is the fractional error of the
    sensor's output data rate (0.02 = 2 % fast); jitter is the standard deviation of
    the sampling instant in milliseconds.
    """

    name: str
    offset_mps2: tuple[float, float, float]
    offset_spread_mps2: float
    tempco_mps2_per_c: tuple[float, float, float]
    gain: tuple[float, float, float]
    gain_spread: float
    mount_deg: tuple[float, float, float]
    noise_mps2: float
    rate_error: float
    rate_error_spread: float
    jitter_ms: float
    resolution_bits: int
    temp_c: float
    temp_spread_c: float


def lab_profile() -> SensorProfile:
    """Bench data from several calibrated devices at room temperature.

    The per-window spreads stand for the handful of lab units the data was recorded on.
    """
    return SensorProfile(
        name="lab",
        offset_mps2=(0.0, 0.0, 0.0),
        offset_spread_mps2=0.15,
        tempco_mps2_per_c=(0.0, 0.0, 0.0),
        gain=(1.0, 1.0, 1.0),
        gain_spread=0.01,
        mount_deg=(0.0, 0.0, 0.0),
        noise_mps2=0.02,
        rate_error=0.0,
        rate_error_spread=0.01,
        jitter_ms=0.5,
        resolution_bits=12,
        temp_c=22.0,
        temp_spread_c=1.0,
    )


def field_profile(seed: int = SEEDS["field_device"]) -> SensorProfile:
    """One deployed device, drawn from datasheet-like tolerances.

    Zero-g offset after reflow 60-120 mg per axis, 0.5-1.5 mg/K tempco, 3-6 % gain
    error, 2-5 degrees of mounting rotation per axis, a 2-4 % fast or slow internal
    oscillator, 3.5x the lab noise (low-power mode, enclosure vibration), and a warm
    enclosure.
    """
    rng = np.random.default_rng(seed)

    def signed(lo: float, hi: float) -> tuple[float, float, float]:
        mag = rng.uniform(lo, hi, 3)
        sign = rng.choice([-1.0, 1.0], 3)
        return (
            float(mag[0] * sign[0]),
            float(mag[1] * sign[1]),
            float(mag[2] * sign[2]),
        )

    offset = signed(0.06 * GRAVITY_MPS2, 0.12 * GRAVITY_MPS2)
    tempco = signed(0.0005 * GRAVITY_MPS2, 0.0015 * GRAVITY_MPS2)
    gain_err = signed(0.03, 0.06)
    mount = signed(2.0, 5.0)
    rate = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.02, 0.04))
    return SensorProfile(
        name=f"field(seed={seed})",
        offset_mps2=offset,
        offset_spread_mps2=0.0,
        tempco_mps2_per_c=tempco,
        gain=(1.0 + gain_err[0], 1.0 + gain_err[1], 1.0 + gain_err[2]),
        gain_spread=0.0,
        mount_deg=mount,
        noise_mps2=0.08,
        rate_error=rate,
        rate_error_spread=0.0,
        jitter_ms=2.0,
        resolution_bits=10,
        temp_c=38.0,
        temp_spread_c=6.0,
    )


# --------------------------------------------------------------------------- helpers


def _u(rng: np.random.Generator, lo: float, hi: float, n: int) -> FloatArray:
    return rng.uniform(lo, hi, (n, 1))


def _sign(rng: np.random.Generator, n: int) -> FloatArray:
    return rng.choice([-1.0, 1.0], (n, 1))


def _envelope(
    t: FloatArray, start: FloatArray, dur: FloatArray, ramp: float
) -> FloatArray:
    """Raised-cosine on/off envelope: 0 outside [start, start+dur], 1 in the middle."""
    rise = np.clip((t - start) / ramp, 0.0, 1.0)
    fall = np.clip((start + dur - t) / ramp, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * np.minimum(rise, fall))


def _bump(t: FloatArray, start: FloatArray, dur: FloatArray) -> FloatArray:
    """Smooth 0 -> 1 -> 0 bump (Hann) over [start, start+dur]."""
    x = np.clip((t - start) / dur, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * x)


def _second_derivative(pos: FloatArray, dt: float) -> FloatArray:
    """d^2/dt^2 along axis 1 of (n, L, 3) positions on the fine grid."""
    return np.gradient(np.gradient(pos, dt, axis=1), dt, axis=1)


def _rot_x(a: FloatArray, v: FloatArray) -> FloatArray:
    c, s = np.cos(a), np.sin(a)
    return np.stack(
        [v[..., 0], c * v[..., 1] - s * v[..., 2], s * v[..., 1] + c * v[..., 2]], -1
    )


def _rot_y(a: FloatArray, v: FloatArray) -> FloatArray:
    c, s = np.cos(a), np.sin(a)
    return np.stack(
        [c * v[..., 0] + s * v[..., 2], v[..., 1], -s * v[..., 0] + c * v[..., 2]], -1
    )


def _rot_z(a: FloatArray, v: FloatArray) -> FloatArray:
    c, s = np.cos(a), np.sin(a)
    return np.stack(
        [c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1], v[..., 2]], -1
    )


def _world_to_body(angles: FloatArray, v: FloatArray) -> FloatArray:
    """Rotate world vectors into the body frame.

    angles (..., 3) are roll (about body y), pitch (about x), yaw (about world z) in
    radians; body-to-world is Rz(yaw) Rx(pitch) Ry(roll), so world-to-body applies the
    transposes in reverse order.
    """
    roll, pitch, yaw = angles[..., 0], angles[..., 1], angles[..., 2]
    return _rot_y(-roll, _rot_x(-pitch, _rot_z(-yaw, v)))


def _mount_rotate(mount_deg: Sequence[float], v: FloatArray) -> FloatArray:
    """Body frame to the sensor die's frame, rotated by small angles about x, y, z."""
    ax, ay, az = (math.radians(d) for d in mount_deg)
    return _rot_z(np.float64(-az), _rot_y(np.float64(-ay), _rot_x(np.float64(-ax), v)))


def _exact_counts(n: int, mix: dict[str, float], names: Sequence[str]) -> list[int]:
    """Largest-remainder split of n by the mix, so a split's class mix is exact."""
    weights = np.array([mix.get(name, 0.0) for name in names], dtype=np.float64)
    raw = n * weights / weights.sum()
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    for i in order[: n - int(counts.sum())]:
        counts[i] += 1
    return [int(c) for c in counts]


# --------------------------------------------------------------------------- motions
#
# Each motion gets a fine time grid t (n, L) in seconds and returns world-frame hand
# position (n, L, 3) in metres, Euler-angle excursions (n, L, 3) in radians, and a
# body-frame acceleration (n, L, 3) in m/s^2 (only taps use the last one). Parameters
# are (n, 1) arrays so one call renders a batch of windows or one stream event.


@dataclass
class Motion:
    pos: FloatArray
    ang: FloatArray
    body_acc: FloatArray

    @classmethod
    def zeros(cls, t: FloatArray) -> Motion:
        z = np.zeros((*t.shape, 3))
        return cls(z, z.copy(), z.copy())

    def add(self, other: Motion) -> None:
        self.pos += other.pos
        self.ang += other.ang
        self.body_acc += other.body_acc


def _sample_wave(rng: np.random.Generator, n: int) -> Params:
    freq = _u(rng, 1.5, 3.0, n)
    radius = _u(rng, 0.25, 0.40, n)
    # People wave faster with a smaller swing: draw the peak lateral acceleration.
    peak = _u(rng, 2.5, 15.0, n)
    swing = np.clip(
        peak / (radius * (2 * np.pi * freq) ** 2), np.radians(5), np.radians(35)
    )
    return {
        "freq": freq,
        "swing": swing,
        "radius": radius,
        "phase": _u(rng, 0.0, 2 * np.pi, n),
    }


def _render_wave(
    t: FloatArray, p: Params, start: FloatArray, dur: FloatArray
) -> Motion:
    """Forearm swinging side to side about the elbow: an arc plus the matching roll."""
    env = _envelope(t, start, dur, EDGE_RAMP_S)
    alpha = p["swing"] * env * np.sin(2 * np.pi * p["freq"] * (t - start) + p["phase"])
    m = Motion.zeros(t)
    m.pos[..., 0] = p["radius"] * np.sin(alpha)
    m.pos[..., 2] = p["radius"] * (1.0 - np.cos(alpha))
    m.ang[..., 0] = alpha
    return m


def _sample_circle(rng: np.random.Generator, n: int) -> Params:
    return {
        "freq": _u(rng, 1.0, 2.0, n),
        "radius": _u(rng, 0.02, 0.09, n),
        "direction": _sign(rng, n),
        "phase": _u(rng, 0.0, 2 * np.pi, n),
        # Tilt of the circle's plane from vertical (facing the user) toward horizontal.
        "tilt": np.radians(_u(rng, 0.0, 90.0, n)),
    }


def _render_circle(
    t: FloatArray, p: Params, start: FloatArray, dur: FloatArray
) -> Motion:
    """The hand traces a circle in a plane between vertical and horizontal."""
    env = _envelope(t, start, dur, EDGE_RAMP_S)
    theta = p["direction"] * 2 * np.pi * p["freq"] * (t - start) + p["phase"]
    u = p["radius"] * env * np.cos(theta)
    v = p["radius"] * env * np.sin(theta)
    m = Motion.zeros(t)
    m.pos[..., 0] = u
    m.pos[..., 1] = v * np.sin(p["tilt"])
    m.pos[..., 2] = v * np.cos(p["tilt"])
    return m


def _sample_shake(rng: np.random.Generator, n: int) -> Params:
    freq = _u(rng, 5.0, 8.0, n)
    # Peak acceleration 0.6-4 g; shakes above 2 g clip at the sensor's full scale.
    peak = _u(rng, 6.0, 40.0, n)
    return {
        "freq": freq,
        "amp": peak / (2 * np.pi * freq) ** 2,
        "azimuth": _u(rng, 0.0, 2 * np.pi, n),
        "elevation": np.radians(_u(rng, -30.0, 30.0, n)),
        "twist": np.radians(_u(rng, 3.0, 10.0, n)),
        "phase": _u(rng, 0.0, 2 * np.pi, n),
    }


def _render_shake(
    t: FloatArray, p: Params, start: FloatArray, dur: FloatArray
) -> Motion:
    """Fast, large back-and-forth along one direction with a little wrist twist."""
    env = _envelope(t, start, dur, 0.08)
    s = env * np.sin(2 * np.pi * p["freq"] * (t - start) + p["phase"])
    d = p["amp"] * s
    m = Motion.zeros(t)
    m.pos[..., 0] = d * np.cos(p["elevation"]) * np.cos(p["azimuth"])
    m.pos[..., 1] = d * np.cos(p["elevation"]) * np.sin(p["azimuth"])
    m.pos[..., 2] = d * np.sin(p["elevation"])
    m.ang[..., 0] = p["twist"] * s
    return m


def _sample_tap(rng: np.random.Generator, n: int) -> Params:
    count = rng.integers(1, 4, (n, 1)).astype(np.float64)
    return {
        "count": count,
        "gap": _u(rng, 0.15, 0.35, n),
        "width": _u(rng, 0.015, 0.04, n),
        "amp": _u(rng, 3.0, 30.0, n),
        "ring_freq": _u(rng, 12.0, 20.0, n),
        "ring_decay": _u(rng, 0.03, 0.08, n),
        "ring_amp": _u(rng, 0.2, 0.5, n),
        # Taps hit the screen mostly along -z with a little off-axis component.
        "dir_x": rng.normal(0.0, 0.15, (n, 1)),
        "dir_y": rng.normal(0.0, 0.15, (n, 1)),
        "amp_jitter": rng.uniform(0.7, 1.0, (n, 3)),
        "where": _u(rng, 0.0, 1.0, n),
    }


def _render_tap(t: FloatArray, p: Params, start: FloatArray, dur: FloatArray) -> Motion:
    """One to three finger taps on the screen: half-sine impulses and a damped rebound.

    The taps sit at a random place in the event, the last one ending before start + dur.
    """
    m = Motion.zeros(t)
    count = p["count"]
    span = (count - 1.0) * p["gap"]
    first = start + p["where"] * np.maximum(0.0, dur - span - 0.15)
    mag = np.zeros_like(t)
    for k in range(3):
        tk = first + k * p["gap"]
        active = count > k
        x = (t - tk) / p["width"]
        pulse = np.where((x >= 0) & (x <= 1), np.sin(np.pi * np.clip(x, 0, 1)), 0.0)
        after = np.maximum(t - tk - p["width"], 0.0)
        ring = np.where(
            t > tk + p["width"],
            -p["ring_amp"]
            * np.sin(2 * np.pi * p["ring_freq"] * after)
            * np.exp(-after / p["ring_decay"]),
            0.0,
        )
        mag += np.where(active, p["amp_jitter"][:, k : k + 1] * (pulse + ring), 0.0)
    direction = np.stack([p["dir_x"], p["dir_y"], -np.ones_like(p["dir_x"])], -1)
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    m.body_acc = (p["amp"] * mag)[..., None] * direction
    return m


UNKNOWN_KINDS: tuple[str, ...] = (
    "walk",
    "raise",
    "pickup",
    "sway",
    "jostle",
    "bump",
    "slow_wave",
    "vibration",
    "mixture",  # must stay last: mixtures pick two of the kinds before it
)


def _sample_unknown(rng: np.random.Generator, n: int) -> Params:
    return {
        "kind": rng.integers(0, len(UNKNOWN_KINDS), (n, 1)).astype(np.float64),
        "kind2": rng.integers(0, len(UNKNOWN_KINDS) - 1, (n, 1)).astype(np.float64),
        "step_freq": _u(rng, 1.6, 2.2, n),
        "bounce": _u(rng, 0.015, 0.04, n),
        "lateral": _u(rng, 0.005, 0.02, n),
        "rot_amp": np.radians(
            rng.uniform(20.0, 80.0, (n, 3)) * rng.choice([-1.0, 1.0], (n, 3))
        ),
        "rot_axis_w": rng.dirichlet([1.0, 1.0, 1.0], n),
        "lift": _u(rng, 0.1, 0.3, n) * _sign(rng, n),
        "sway_freq": _u(rng, 0.3, 0.9, n),
        "sway_amp": np.radians(_u(rng, 8.0, 25.0, n)),
        "jostle_amp": _u(rng, 0.005, 0.02, n),
        "jostle_f": rng.uniform(1.0, 4.0, (n, 6)),
        "jostle_ph": rng.uniform(0.0, 2 * np.pi, (n, 6)),
        "phase": _u(rng, 0.0, 2 * np.pi, n),
        "bump_at": _u(rng, 0.1, 0.7, n),
        "bump_width": _u(rng, 0.04, 0.09, n),
        "bump_amp": _u(rng, 4.0, 20.0, n),
        "bump_dir": _unit_vectors(rng, n),
        "slow_freq": _u(rng, 0.6, 1.2, n),
        "slow_amp": _u(rng, 0.05, 0.15, n),
        "vib_freq": _u(rng, 10.0, 20.0, n),
        "vib_amp": _u(rng, 0.3, 2.0, n),
        "vib_dir": _unit_vectors(rng, n),
    }


def _unit_vectors(rng: np.random.Generator, n: int) -> FloatArray:
    v = rng.normal(0.0, 1.0, (n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _render_unknown_kind(
    kind: int, t: FloatArray, p: Params, start: FloatArray, dur: FloatArray, gain: float
) -> Motion:
    m = Motion.zeros(t)
    tt = t - start
    name = UNKNOWN_KINDS[kind]
    if name == "walk":
        env = _envelope(t, start, dur, 0.2)
        w = 2 * np.pi * p["step_freq"]
        m.pos[..., 2] = (
            p["bounce"] * env * (np.sin(w * tt + p["phase"]) + 0.3 * np.sin(2 * w * tt))
        )
        m.pos[..., 0] = p["lateral"] * env * np.sin(0.5 * w * tt + p["phase"])
        m.ang[..., 1] = np.radians(3.0) * env * np.sin(w * tt)
    elif name == "raise":
        b = _bump(t, start, dur)
        m.ang += (p["rot_amp"] * p["rot_axis_w"])[:, None, :] * b[..., None]
        m.pos[..., 2] = 0.3 * p["lift"] * b
    elif name == "pickup":
        x = np.clip(tt / dur, 0.0, 1.0)
        minimum_jerk = 10 * x**3 - 15 * x**4 + 6 * x**5
        m.pos[..., 2] = p["lift"] * minimum_jerk
        m.ang[..., 1] = 0.5 * p["rot_amp"][:, 1:2] * minimum_jerk
    elif name == "sway":
        env = _envelope(t, start, dur, 0.25)
        s = np.sin(2 * np.pi * p["sway_freq"] * tt + p["phase"])
        m.ang[..., 0] = p["sway_amp"] * env * s
        m.ang[..., 1] = (
            0.5 * p["sway_amp"] * env * np.cos(2 * np.pi * p["sway_freq"] * tt)
        )
    elif name == "jostle":
        env = _envelope(t, start, dur, 0.1)
        for axis in range(3):
            comps = [
                np.sin(
                    2 * np.pi * p["jostle_f"][:, j : j + 1] * tt
                    + p["jostle_ph"][:, j : j + 1]
                )
                for j in (2 * axis, 2 * axis + 1)
            ]
            m.pos[..., axis] = p["jostle_amp"] * env * (comps[0] + comps[1])
    elif name == "bump":
        # Set down on a table or knocked: one broad impulse in any direction.
        x = (tt - p["bump_at"] * dur) / p["bump_width"]
        pulse = np.where((x >= 0) & (x <= 1), np.sin(np.pi * np.clip(x, 0, 1)), 0.0)
        m.body_acc = (p["bump_amp"] * pulse)[..., None] * p["bump_dir"][:, None, :]
    elif name == "slow_wave":
        env = _envelope(t, start, dur, 0.2)
        w = 2 * np.pi * p["slow_freq"]
        m.pos[..., 0] = p["slow_amp"] * env * np.sin(w * tt + p["phase"])
    elif name == "vibration":
        # A vehicle or machine: 10-20 Hz buzz through the hand.
        env = _envelope(t, start, dur, 0.1)
        buzz = p["vib_amp"] * env * np.sin(2 * np.pi * p["vib_freq"] * tt)
        m.body_acc = buzz[..., None] * p["vib_dir"][:, None, :]
    m.pos *= gain
    m.ang *= gain
    m.body_acc *= gain
    return m


def _render_unknown(
    t: FloatArray, p: Params, start: FloatArray, dur: FloatArray
) -> Motion:
    """Everything that is not a gesture.

    Walking, raising the arm, picking the device up, slow swaying, jostling in a bag,
    setting it down, a slow side-to-side move, vibration from a vehicle, and mixtures
    of two of these.
    """
    m = Motion.zeros(t)
    kinds = p["kind"][:, 0].astype(int)
    kinds2 = p["kind2"][:, 0].astype(int)
    mixture = UNKNOWN_KINDS.index("mixture")
    for k in range(len(UNKNOWN_KINDS)):
        if k == mixture:
            continue
        single = kinds == k
        as_first = (kinds == mixture) & (kinds2 == k)
        as_second = (kinds == mixture) & ((kinds2 + 1) % mixture == k)
        for mask, gain in ((single, 1.0), (as_first, 0.7), (as_second, 0.7)):
            if not mask.any():
                continue
            sub = {key: val[mask] for key, val in p.items()}
            part = _render_unknown_kind(k, t[mask], sub, start[mask], dur[mask], gain)
            m.pos[mask] += part.pos
            m.ang[mask] += part.ang
            m.body_acc[mask] += part.body_acc
    return m


_SAMPLERS: dict[str, Callable[[np.random.Generator, int], Params]] = {
    "wave": _sample_wave,
    "tap": _sample_tap,
    "circle": _sample_circle,
    "shake": _sample_shake,
    "unknown": _sample_unknown,
}
_RENDERERS: dict[
    str, Callable[[FloatArray, Params, FloatArray, FloatArray], Motion]
] = {
    "wave": _render_wave,
    "tap": _render_tap,
    "circle": _render_circle,
    "shake": _render_shake,
    "unknown": _render_unknown,
}


def _hold(rng: np.random.Generator, t: FloatArray, pose: str = "idle") -> Motion:
    """The hand holding the device: the grip for `pose`, slow sway, tremor."""
    n = t.shape[0]
    m = Motion.zeros(t)
    pitch, pitch_sd, roll_sd = CLASS_POSE_DEG[pose]
    base = np.stack(
        [
            rng.normal(0.0, roll_sd, n),
            rng.normal(pitch, pitch_sd, n),
            rng.uniform(-HELD_YAW_SPREAD_DEG, HELD_YAW_SPREAD_DEG, n),
        ],
        -1,
    )
    m.ang += np.radians(base)[:, None, :]
    sway_f = rng.uniform(0.1, 0.6, (n, 3, 2))
    sway_a = np.radians(rng.uniform(0.5, 2.5, (n, 3, 2)))
    sway_ph = rng.uniform(0.0, 2 * np.pi, (n, 3, 2))
    for j in range(2):
        m.ang += sway_a[:, None, :, j] * np.sin(
            2 * np.pi * sway_f[:, None, :, j] * t[..., None] + sway_ph[:, None, :, j]
        )
    drift_f = rng.uniform(0.2, 0.8, (n, 3))
    drift_a = rng.uniform(0.002, 0.008, (n, 3))
    m.pos += drift_a[:, None, :] * np.sin(
        2 * np.pi * drift_f[:, None, :] * t[..., None]
    )
    # Physiological tremor, 8-12 Hz, a few tens of mm/s^2, as a body-frame acceleration.
    trem_f = rng.uniform(8.0, 12.0, (n, 3, 2))
    trem_a = rng.uniform(0.02, 0.12, (n, 3, 2))
    trem_ph = rng.uniform(0.0, 2 * np.pi, (n, 3, 2))
    for j in range(2):
        m.body_acc += trem_a[:, None, :, j] * np.sin(
            2 * np.pi * trem_f[:, None, :, j] * t[..., None] + trem_ph[:, None, :, j]
        )
    return m


# --------------------------------------------------------------------------- sensor


def _specific_force(motion: Motion, dt: float) -> FloatArray:
    """True specific force in the body frame, m/s^2, shape (n, L, 3)."""
    acc = _second_derivative(motion.pos, dt)
    acc[..., 2] += GRAVITY_MPS2
    return _world_to_body(motion.ang, acc) + motion.body_acc


def _sample_times(
    rng: np.random.Generator,
    profile: SensorProfile,
    n: int,
    count: int,
    t0: float = 0.0,
) -> FloatArray:
    """True instants of `count` samples that the firmware takes as 20 ms apart."""
    rate = profile.rate_error + profile.rate_error_spread * rng.uniform(
        -1.0, 1.0, (n, 1)
    )
    period = SAMPLE_PERIOD_S / (1.0 + rate)
    jitter = rng.normal(0.0, profile.jitter_ms * 1e-3, (n, count))
    jitter = np.clip(jitter, -0.4 * SAMPLE_PERIOD_S, 0.4 * SAMPLE_PERIOD_S)
    return t0 + period * np.arange(count)[None, :] + jitter


def _sense(
    rng: np.random.Generator,
    profile: SensorProfile,
    fine_t: FloatArray,
    force: FloatArray,
    sample_t: FloatArray,
    temp_c: FloatArray,
) -> FloatArray:
    """Apply the sensor to the true force on the fine grid and read it at sample_t.

    temp_c has shape (n, 1) or (n, count): the die temperature at each reading.
    """
    n = force.shape[0]
    sensed = _mount_rotate(profile.mount_deg, force)
    gain = np.asarray(profile.gain)[None, :] * (
        1.0 + rng.normal(0.0, profile.gain_spread, (n, 3))
    )
    offset = np.asarray(profile.offset_mps2)[None, :] + rng.normal(
        0.0, profile.offset_spread_mps2, (n, 3)
    )
    # Box-car average over one output period: read the running integral at t and t - T.
    dt = fine_t[0, 1] - fine_t[0, 0]
    integral = np.concatenate(
        [
            np.zeros((n, 1, 3)),
            np.cumsum(0.5 * (sensed[:, 1:] + sensed[:, :-1]) * dt, axis=1),
        ],
        axis=1,
    )
    out = np.empty((n, sample_t.shape[1], 3))
    for i in range(n):
        for axis in range(3):
            hi = np.interp(sample_t[i], fine_t[i], integral[i, :, axis])
            lo = np.interp(
                sample_t[i] - SAMPLE_PERIOD_S, fine_t[i], integral[i, :, axis]
            )
            out[i, :, axis] = (hi - lo) / SAMPLE_PERIOD_S
    tempco = np.asarray(profile.tempco_mps2_per_c)
    out = out * gain[:, None, :] + offset[:, None, :]
    out += tempco[None, None, :] * (temp_c[..., None] - REFERENCE_TEMP_C)
    out += rng.normal(0.0, profile.noise_mps2, out.shape)
    lsb = 2.0 * FULL_SCALE_MPS2 / 2**profile.resolution_bits
    out = np.round(out / lsb) * lsb
    return np.clip(out, -FULL_SCALE_MPS2, FULL_SCALE_MPS2 - lsb)


# --------------------------------------------------------------------------- public API


def _resolve_profile(
    split: str, profile_seed: int | None
) -> tuple[SensorProfile, dict[str, float]]:
    if split == "lab":
        return lab_profile(), LAB_CLASS_MIX
    if split == "field":
        seed = SEEDS["field_device"] if profile_seed is None else profile_seed
        return field_profile(seed), FIELD_CLASS_MIX
    raise ValueError(f"split must be 'lab' or 'field', not {split!r}")


def _render_class_batch(
    rng: np.random.Generator, name: str, n: int, profile: SensorProfile
) -> FloatArray:
    margin = 2 * SAMPLE_PERIOD_S
    span = (
        WINDOW_S * (1.0 + abs(profile.rate_error) + profile.rate_error_spread)
        + 2 * margin
    )
    fine = np.arange(-margin, span, 1.0 / FINE_RATE_HZ)
    t = np.broadcast_to(fine, (n, fine.size)).copy()
    motion = _motion(rng, t, name, n)
    force = _specific_force(motion, 1.0 / FINE_RATE_HZ)
    sample_t = _sample_times(rng, profile, n, WINDOW_SAMPLES)
    temp = rng.normal(profile.temp_c, profile.temp_spread_c, (n, 1))
    return _sense(rng, profile, t, force, sample_t, temp)


def generate_classification(
    split: str = "lab",
    n: int = 1200,
    seed: int = SEEDS["lab_train"],
    profile_seed: int | None = None,
    class_mix: dict[str, float] | None = None,
) -> dict[str, NDArray[np.generic]]:
    """Labelled windows for classification.

    Args:
        split: "lab" (calibrated bench sensors, balanced classes) or "field" (the
            drifted device of ``field_profile(profile_seed)``, FIELD_CLASS_MIX).
        n: number of windows; the class counts follow the mix exactly.
        seed: drives every random choice of the motions, noise and timing.
        profile_seed: field device seed (default SEEDS["field_device"]).
        class_mix: overrides the split's class mix (class name -> weight).

    Returns:
        {"x": float32 (n, 64, 3) in m/s^2, "y": int64 (n,), "class_names": str (6,)}
        in a shuffled order.
    """
    profile, mix = _resolve_profile(split, profile_seed)
    counts = _exact_counts(n, class_mix or mix, CLASS_NAMES)
    rng = np.random.default_rng(seed)
    xs: list[FloatArray] = []
    ys: list[NDArray[np.int64]] = []
    for label, (name, count) in enumerate(zip(CLASS_NAMES, counts, strict=True)):
        if count == 0:
            continue
        xs.append(_render_class_batch(rng, name, count, profile))
        ys.append(np.full(count, label, dtype=np.int64))
    x = np.concatenate(xs) if xs else np.zeros((0, *INPUT_SHAPE))
    y = np.concatenate(ys) if ys else np.zeros(0, dtype=np.int64)
    order = rng.permutation(len(y))
    return {
        "x": x[order].astype(np.float32),
        "y": y[order],
        "class_names": np.array(CLASS_NAMES),
    }


def _motion(rng: np.random.Generator, t: np.ndarray, name: str, n: int):
    """The held pose plus the gesture `name`, rendered on the fine time grid `t`."""
    motion = _hold(rng, t, name)
    if name != "idle":
        dur = _u(rng, *GESTURE_DURATION_S, n)
        start = rng.uniform(0.0, 1.0, (n, 1)) * (WINDOW_S - dur)
        if name == "unknown":
            # Other motions may run over the window's edges; they cover >= 0.6 s of it.
            dur = _u(rng, 1.0, 2.0, n)
            start = _u(rng, -0.4, 0.5, n)
        motion.add(_RENDERERS[name](t, _SAMPLERS[name](rng, n), start, dur))
    return motion


def render_motions(
    name: str, n: int, seed: int, max_rate_error: float = 0.05
) -> tuple[FloatArray, FloatArray]:
    """What the hand does in n windows of class `name`, before any sensor: the fine time
    grid (n, L) in seconds and the true specific force on it (n, L, 3) in m/s^2, long
    enough for a sensor whose clock is up to `max_rate_error` fast or slow.

    sense_windows() reads them through one sensor. Rendering the motion is most of
    generate_classification()'s cost, so many simulated devices can share one set of
    motions and differ in their sensors (its own random draws: not the same windows as
    generate_classification() for a seed).
    """
    rng = np.random.default_rng(seed)
    margin = 2 * SAMPLE_PERIOD_S
    span = WINDOW_S * (1.0 + max_rate_error) + 2 * margin
    fine = np.arange(-margin, span, 1.0 / FINE_RATE_HZ)
    t = np.broadcast_to(fine, (n, fine.size)).copy()
    motion = _motion(rng, t, name, n)
    return t, _specific_force(motion, 1.0 / FINE_RATE_HZ)


def sense_windows(
    profile: SensorProfile, fine_t: FloatArray, force: FloatArray, seed: int
) -> NDArray[np.float32]:
    """Windows (n, 64, 3) float32 in m/s^2 of the motions of render_motions() as one
    sensor of `profile` reads them: its mounting, gain, offset, temperature, noise,
    resolution, clock error and jitter, as generate_classification() applies them."""
    rng = np.random.default_rng(seed)
    n = force.shape[0]
    sample_t = _sample_times(rng, profile, n, WINDOW_SAMPLES)
    temp = rng.normal(profile.temp_c, profile.temp_spread_c, (n, 1))
    return _sense(rng, profile, fine_t, force, sample_t, temp).astype(np.float32)


@dataclass(frozen=True)
class StreamEvent:
    label: int
    start_s: float
    dur_s: float


def _stream_schedule(
    rng: np.random.Generator,
    duration_s: float,
    event_mix: dict[str, float],
    idle_gap_s: tuple[float, float] = (2.0, 8.0),
) -> tuple[list[StreamEvent], list[StreamEvent]]:
    """Gesture events and unknown-motion segments over an idle background.

    Idle gaps of idle_gap_s (2-8 s by default); with probability 0.3 an unknown-motion
    segment of 1.5-6 s and another 1.5-4 s of idle before the next gesture. Gestures never
    overlap anything.
    """
    weights = np.array([event_mix.get(name, 0.0) for name in GESTURE_CLASSES])
    weights = weights / weights.sum()
    events: list[StreamEvent] = []
    others: list[StreamEvent] = []
    cursor = rng.uniform(1.0, 4.0)
    unknown = CLASS_NAMES.index("unknown")
    while True:
        cursor += rng.uniform(*idle_gap_s)
        if rng.uniform() < 0.3:
            seg = rng.uniform(1.5, 6.0)
            if cursor + seg > duration_s - 1.0:
                break
            others.append(StreamEvent(unknown, cursor, seg))
            cursor += seg + rng.uniform(1.5, 4.0)
        name = GESTURE_CLASSES[int(rng.choice(len(GESTURE_CLASSES), p=weights))]
        dur = rng.uniform(*GESTURE_DURATION_S)
        if cursor + dur > duration_s - 1.0:
            break
        events.append(StreamEvent(CLASS_NAMES.index(name), cursor, dur))
        cursor += dur
    return events, others


def whole_ms(stream: dict[str, NDArray[np.generic]]) -> dict[str, NDArray[np.generic]]:
    """A stream with its times in whole milliseconds (int64), as the firmware's clock and
    the streaming .npz format (tinyfix.datasets) have them."""
    out = dict(stream)
    for key in ("t_ms", "event_start_ms", "event_end_ms"):
        out[key] = np.round(np.asarray(stream[key])).astype(np.int64)
    return out


def generate_stream(
    split: str = "lab",
    duration_s: float = 600.0,
    seed: int = SEEDS["stream_lab"],
    hop_ms: float = 250.0,
    profile_seed: int | None = None,
    event_mix: dict[str, float] | None = None,
    idle_gap_s: tuple[float, float] = (2.0, 8.0),
    extra_noise: float = 0.0,
) -> dict[str, NDArray[np.generic]]:
    """A continuous stream with gesture events, cut into sliding windows.

    idle_gap_s sets how often gestures come (idle time before each); extra_noise adds
    white noise of that standard deviation (m/s^2) to every sample (a noisier sensor or
    mounting).

    The device runs an inference every hop_ms on the newest 64 samples. All times are
    in the firmware's clock (sample count x 20 ms), which drifts against true time by
    the sensor's rate error; event times are converted to that clock.

    Returns:
        t_ms float64 (T,): inference time; the window ends at the newest sample at or
            before it.
        x float32 (T, 64, 3) in m/s^2.
        event_start_ms, event_end_ms float64 (E,), event_label int64 (E,).
        class_names str (C,), background str: classes that are never events.
    """
    profile, _ = _resolve_profile(split, profile_seed)
    mix = event_mix or (LAB_EVENT_MIX if split == "lab" else FIELD_EVENT_MIX)
    rng = np.random.default_rng(seed)
    events, others = _stream_schedule(rng, duration_s, mix, idle_gap_s)

    n_samples = int(duration_s * SAMPLE_RATE_HZ)
    sample_t = _sample_times(rng, profile, 1, n_samples)
    span_end = float(sample_t[0, -1]) + 2 * SAMPLE_PERIOD_S
    fine = np.arange(-2 * SAMPLE_PERIOD_S, span_end, 1.0 / FINE_RATE_HZ)[None, :]

    motion = _stream_hold(rng, fine)
    for ev in [*events, *others]:
        name = CLASS_NAMES[ev.label]
        lo = max(0, int((ev.start_s - 0.5) * FINE_RATE_HZ))
        hi = min(fine.shape[1], int((ev.start_s + ev.dur_s + 0.5) * FINE_RATE_HZ) + 1)
        sub_t = fine[:, lo:hi]
        start = np.full((1, 1), ev.start_s)
        dur = np.full((1, 1), ev.dur_s)
        part = _RENDERERS[name](sub_t, _SAMPLERS[name](rng, 1), start, dur)
        motion.pos[:, lo:hi] += part.pos
        motion.ang[:, lo:hi] += part.ang
        motion.body_acc[:, lo:hi] += part.body_acc
        if ev in events:
            # Bring the device into this gesture's grip and back, 0.3 s either side.
            pitch, pitch_sd, _ = CLASS_POSE_DEG[name]
            tilt = math.radians(rng.normal(pitch, pitch_sd) - HELD_PITCH_DEG)
            grip = _envelope(sub_t, start - 0.3, dur + 0.6, 0.3)
            motion.ang[:, lo:hi, 1] += tilt * grip

    force = _specific_force(motion, 1.0 / FINE_RATE_HZ)
    # Die temperature wanders slowly (enclosure heating in sun and shade).
    period = rng.uniform(600.0, 1800.0)
    temp = profile.temp_c + profile.temp_spread_c * np.sin(
        2 * np.pi * sample_t / period + rng.uniform(0, 2 * np.pi)
    )
    samples = _sense(rng, profile, fine, force, sample_t, temp)[0]
    if extra_noise > 0:
        samples = samples + rng.normal(0.0, extra_noise, samples.shape)

    rate = sample_t[0, -1] / (n_samples - 1) / SAMPLE_PERIOD_S  # true seconds per tick
    n_inf = int((n_samples * SAMPLE_PERIOD_S * 1000.0) // hop_ms)
    t_ms = (np.arange(1, n_inf + 1) * hop_ms).astype(np.float64)
    newest = np.floor(t_ms / (SAMPLE_PERIOD_S * 1000.0) + 1e-9).astype(int)
    keep = (newest >= WINDOW_SAMPLES - 1) & (newest < n_samples)
    t_ms, newest = t_ms[keep], newest[keep]
    idx = newest[:, None] + np.arange(-WINDOW_SAMPLES + 1, 1)[None, :]
    x = samples[idx].astype(np.float32)

    to_device_ms = 1000.0 / rate
    return {
        "t_ms": t_ms,
        "x": x,
        "event_start_ms": np.array([ev.start_s * to_device_ms for ev in events]),
        "event_end_ms": np.array(
            [(ev.start_s + ev.dur_s) * to_device_ms for ev in events]
        ),
        "event_label": np.array([ev.label for ev in events], dtype=np.int64),
        "class_names": np.array(CLASS_NAMES),
        "background": np.array(BACKGROUND_CLASSES),
    }


def _stream_hold(rng: np.random.Generator, t: FloatArray) -> Motion:
    """Like _hold, plus a grip that changes every 20-90 s (smoothly, over 2 s)."""
    m = _hold(rng, t)
    total = float(t[0, -1])
    cursor = 0.0
    pose = np.zeros(3)
    while cursor < total:
        nxt = cursor + rng.uniform(20.0, 90.0)
        new = np.radians(
            [
                rng.normal(0.0, HELD_ROLL_SPREAD_DEG),
                rng.normal(0.0, HELD_PITCH_SPREAD_DEG),
                rng.uniform(-HELD_YAW_SPREAD_DEG, HELD_YAW_SPREAD_DEG),
            ]
        )
        ramp = np.clip((t[0] - nxt) / 2.0, 0.0, 1.0)
        ramp = 0.5 - 0.5 * np.cos(np.pi * ramp)
        m.ang[0] += (new - pose)[None, :] * ramp[:, None]
        pose = new
        cursor = nxt
    return m


# --------------------------------------------------------------------------- CLI

DEFAULT_SPLITS: dict[str, tuple[str, int, str]] = {
    "lab_train": ("lab", 9000, "lab_train"),
    "lab_val": ("lab", 1200, "lab_val"),
    "lab_test": ("lab", 1800, "lab_test"),
    "field_calib": ("field", 600, "field_calib"),
    "field_test": ("field", 1800, "field_test"),
}
DEFAULT_STREAMS: dict[str, tuple[str, float, str]] = {
    "stream_lab": ("lab", 600.0, "stream_lab"),
    "stream_field": ("field", 1800.0, "stream_field"),
}


def config() -> dict[str, object]:
    """Everything that determines the data: seeds, splits, profiles, constants."""
    return {
        "SPDX-License-Identifier": "Apache-2.0",
        "units": "m/s^2, body-frame specific force (at rest screen up: z = +9.81)",
        "sample_rate_hz": SAMPLE_RATE_HZ,
        "window_samples": WINDOW_SAMPLES,
        "input_shape": list(INPUT_SHAPE),
        "class_names": list(CLASS_NAMES),
        "background_classes": list(BACKGROUND_CLASSES),
        "full_scale_mps2": FULL_SCALE_MPS2,
        "seeds": dict(SEEDS),
        "splits": {
            k: {"split": s, "n": n, "seed": SEEDS[seed]}
            for k, (s, n, seed) in DEFAULT_SPLITS.items()
        },
        "streams": {
            k: {"split": s, "duration_s": d, "seed": SEEDS[seed], "hop_ms": 250.0}
            for k, (s, d, seed) in DEFAULT_STREAMS.items()
        },
        "lab_class_mix": LAB_CLASS_MIX,
        "field_class_mix": FIELD_CLASS_MIX,
        "lab_event_mix": LAB_EVENT_MIX,
        "field_event_mix": FIELD_EVENT_MIX,
        "lab_profile": asdict(lab_profile()),
        "field_profile": asdict(field_profile(SEEDS["field_device"])),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, required=True, help="directory for the .npz files"
    )
    parser.add_argument(
        "--only",
        nargs="*",
        choices=[*DEFAULT_SPLITS, *DEFAULT_STREAMS],
        help="generate only these (default: all)",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every size by this (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only or [*DEFAULT_SPLITS, *DEFAULT_STREAMS])
    for key, (split, n, seed) in DEFAULT_SPLITS.items():
        if key in wanted:
            data = generate_classification(
                split, max(1, int(n * args.scale)), SEEDS[seed]
            )
            np.savez_compressed(args.out / f"{key}.npz", **data)
            print(f"{key}: {data['x'].shape[0]} windows")
    for key, (split, dur, seed) in DEFAULT_STREAMS.items():
        if key in wanted:
            data = generate_stream(split, dur * args.scale, SEEDS[seed])
            data = whole_ms(data)
            np.savez_compressed(args.out / f"{key}.npz", **data)
            n_inf, n_ev = data["x"].shape[0], data["event_label"].size
            print(f"{key}: {n_inf} inferences, {n_ev} events")
    (args.out / "config.json").write_text(json.dumps(config(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
