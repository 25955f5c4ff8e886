# SPDX-License-Identifier: Apache-2.0
"""Data for the bundled gesture demo model: a deterministic accelerometer generator.

`gesture_data` makes labelled windows and continuous streams, lab or drifted ("field"),
from documented seeds. The training script (scripts/train_demo_model.py), the simulated
device's sensor and the benchmarks all draw from it.
"""
