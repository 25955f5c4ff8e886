# SPDX-License-Identifier: Apache-2.0
"""The fleet: per-device fits for many devices on Dask, their report, and delivery over SMP.

- manifest: a fleet folder (fleet.yaml, one manifest and capture file per device), read
  through fsspec (urls);
- fit / device_fit: `tinyfix fleet fit`, one task per device on a Dask cluster;
- drift, recalibration, report: the drift monitor's figures, which devices need
  recalibration, the fleet report;
- simulate: a fleet of simulated devices (the twin with per-device sensor drift);
- push / push_log: `tinyfix fleet push`, each device its set over SMP, resumable.

docs/fleet.md describes the design and the formats.
"""
