# SPDX-License-Identifier: Apache-2.0
"""A device's capture file (capture_store's format) read or written whole through fsspec:
the raw output tensors, feature vectors and labels (-1: none, as a guided session writes
unlabeled windows) of every captured window, in sample order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tinyfix.capture import NUMPY_OF
from tinyfix.capture_store import CaptureFileError, CaptureRecord, from_bytes, to_bytes
from tinyfix.core import ModelInfo
from tinyfix.fleet import urls
from tinyfix.fleet.manifest import ManifestError, parse_crc

NO_LABEL = -1


@dataclass(frozen=True)
class DeviceCapture:
    raw: NDArray  # (N, outputs) in the output tensor's type
    labels: NDArray[np.int64]  # (N,), NO_LABEL where a window has none
    features: NDArray[np.int8] | None  # (N, F), or None when captured without
    model_crc: int

    def __len__(self) -> int:
        return int(self.raw.shape[0])

    @property
    def labelled(self) -> bool:
        return bool(len(self)) and bool(np.all(self.labels != NO_LABEL))


def decode(data: bytes, source: str, model: ModelInfo) -> DeviceCapture:
    """The capture in `data` for `model`; a file of another shape or model is refused."""
    header, records = from_bytes(data, source)
    crc = parse_crc(header.get("model_crc"), f"{source}: model_crc")
    dtype = np.dtype(NUMPY_OF[model.output_type])
    want = model.outputs * dtype.itemsize
    if int(header["raw_bytes"]) != want:
        raise ManifestError(f"{source}: {header['raw_bytes']} bytes of raw output a window; "
                            f"the fleet's model has {want}")
    if not records:
        raise ManifestError(f"{source}: no captured window")
    order = sorted(records)
    rows = [records[i] for i in order]
    raw = np.stack([np.frombuffer(r.raw, dtype=dtype) for r in rows])
    labels = np.array([r.label for r in rows], dtype=np.int64)
    feats = None
    if header.get("features") and model.n_features:
        if any(len(r.features) != model.n_features for r in rows):
            raise ManifestError(f"{source}: feature vectors are not the model's "
                                f"{model.n_features} int8 values")
        feats = np.stack([np.frombuffer(r.features, dtype=np.int8) for r in rows])
    return DeviceCapture(raw, labels, feats, crc)


def read_capture(url: str, model: ModelInfo) -> DeviceCapture:
    try:
        return decode(urls.read_bytes(url), url, model)
    except CaptureFileError as exc:
        raise ManifestError(str(exc)) from None


def encode(raw: NDArray, labels: NDArray, features: NDArray | None, model_crc: int,
           fingerprint: str) -> bytes:
    """A capture file of these windows, with the header capture() writes."""
    raw = np.ascontiguousarray(raw)
    header: dict[str, Any] = {"model_crc": f"0x{model_crc:08x}", "data": fingerprint,
                              "raw_bytes": int(raw.shape[1] * raw.dtype.itemsize),
                              "features": features is not None}
    records = [CaptureRecord(i, int(labels[i]), 0, 0, raw[i].tobytes(),
                             b"" if features is None else features[i].tobytes())
               for i in range(raw.shape[0])]
    return to_bytes(header, records)
