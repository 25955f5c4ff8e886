# SPDX-License-Identifier: Apache-2.0
"""The twin's accelerometer: windows from the demo data generator, lab or drifted.

A "lab" sensor is a calibrated bench unit; a "field" sensor is one deployed device with
the offset, gain, mounting rotation, noise and class mix of
tinyfix.demo_data.gesture_data.field_profile(profile_seed). By default the windows follow
the profile's class mix; perform(name) makes every following window that gesture, as an
operator does while the host records labelled CAPTURE windows.
"""

from __future__ import annotations

import threading

import numpy as np

from tinyfix.demo_data import gesture_data as gd
from tinyfix.errors import TinyfixError

PROFILES = ("lab", "field")
BATCH = 16
WINDOW_MS = int(gd.WINDOW_S * 1000)


class Sensor:
    """Successive windows of shape gd.INPUT_SHAPE in m/s^2; thread-safe."""

    shape: tuple[int, int] = gd.INPUT_SHAPE

    def __init__(self, profile: str = "lab", seed: int = 1, profile_seed: int | None = None,
                 gesture: str | None = None) -> None:
        if profile not in PROFILES:
            raise TinyfixError(f"unknown sensor profile {profile!r}; use one of "
                               + ", ".join(PROFILES))
        self.profile = profile
        self.seed = seed
        self.profile_seed = profile_seed
        self.labels: list[int] = []
        self._gesture: str | None = None
        self._batch = 0
        self._queue: list[tuple[np.ndarray, int]] = []
        self._lock = threading.Lock()
        self.perform(gesture)

    @property
    def gesture(self) -> str | None:
        return self._gesture

    def perform(self, gesture: str | None) -> None:
        """Make the next windows this gesture (a class name), or the profile's mix (None)."""
        if gesture is not None and gesture not in gd.CLASS_NAMES:
            raise TinyfixError(f"unknown gesture {gesture!r}; the classes are "
                               + ", ".join(gd.CLASS_NAMES))
        with self._lock:
            self._gesture = gesture
            self._queue.clear()

    def read(self) -> tuple[np.ndarray, int]:
        """The next window (float32, m/s^2) and its true class index."""
        with self._lock:
            if not self._queue:
                self._refill()
            x, label = self._queue.pop(0)
            self.labels.append(label)
            return x, label

    def _refill(self) -> None:
        mix = {self._gesture: 1.0} if self._gesture else None
        data = gd.generate_classification(
            self.profile, BATCH, seed=self.seed * 100_003 + self._batch,
            profile_seed=self.profile_seed, class_mix=mix,
        )
        self._batch += 1
        self._queue = [(data["x"][i], int(data["y"][i])) for i in range(len(data["y"]))]
