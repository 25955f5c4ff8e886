# SPDX-License-Identifier: Apache-2.0
"""Which devices need recalibration, and why (docs/fleet.md "Recalibration rule").

A device needs recalibration when any of these holds:

- drift: over its whole capture, its mean top-class confidence is more than
  `max_conf_drop` below the fleet reference's, or its class mix is more than
  `max_prior_tv` (total variation) from the reference's: the thresholds the device's own
  drift monitor applies (fit.monitor.MonitorSettings), so a device the fleet report flags
  is one its monitor would flag, measured on the whole capture rather than its last
  ~128 windows;
- loss (labelled devices): the model as it is loses more than `max_accuracy_loss` of
  accuracy on the device's evaluation windows against the model on the reference capture.

Unlabeled devices can only be flagged by drift. A device whose manifest or fit failed is
reported as such, not judged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tinyfix.fit.monitor import MonitorSettings


@dataclass(frozen=True)
class RecalibrationRule:
    max_conf_drop: float = MonitorSettings.conf_drop
    max_prior_tv: float = MonitorSettings.prior_tv
    max_accuracy_loss: float = 0.10

    def reasons(self, drift: dict[str, Any] | None, accuracy: float | None,
                reference_accuracy: float | None) -> list[str]:
        """Why the device needs recalibration; empty: it does not."""
        found = []
        if drift is not None and drift.get("conf_drop") is not None:
            if drift["conf_drop"] > self.max_conf_drop:
                found.append(f"confidence {100 * drift['conf_drop']:.1f} points below the "
                             f"reference (limit {100 * self.max_conf_drop:.0f})")
            if drift["prior_tv"] > self.max_prior_tv:
                found.append(f"class mix {100 * drift['prior_tv']:.1f}% from the reference "
                             f"(limit {100 * self.max_prior_tv:.0f}%)")
        if accuracy is not None and reference_accuracy is not None:
            loss = reference_accuracy - accuracy
            if loss > self.max_accuracy_loss:
                found.append(f"accuracy {100 * accuracy:.1f}%, {100 * loss:.1f} points below "
                             f"the reference (limit {100 * self.max_accuracy_loss:.0f})")
        return found

    def describe(self) -> str:
        return (f"confidence drop > {100 * self.max_conf_drop:.0f} points, or class-mix "
                f"distance > {100 * self.max_prior_tv:.0f}% (the device monitor's "
                f"thresholds, over the whole capture), or with labels an accuracy "
                f"> {100 * self.max_accuracy_loss:.0f} points below the reference's")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)
