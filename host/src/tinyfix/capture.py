# SPDX-License-Identifier: Apache-2.0
"""Stream inputs to a device with INFER and keep its raw outputs: each answer is written to
the capture file before the next request, so an interrupted run resumes where it stopped."""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tinyfix.capture_store import CaptureRecord, CaptureStore
from tinyfix.core import Core, Corrector, ModelInfo, Params
from tinyfix.device import Device
from tinyfix.errors import TinyfixError
from tinyfix.wire import WireError

NUMPY_OF = {"int8": np.int8, "int16": np.int16, "float32": np.float32}


class CaptureInterrupted(TinyfixError):
    """The run stopped before every sample was captured; what arrived is on disk."""

    exit_code = 4


def quantize_inputs(core: Core, model: ModelInfo, x: NDArray,
                    params: Params | None = None) -> NDArray:
    """Model inputs as the input tensor: data already of the tensor's type as given; real
    values quantized as the firmware's input stage does (the C core: round half away from
    zero, saturated) with the input correction of `params` if it has one. A float32 input
    tensor takes the values as they are; an int16 one (16x8 models) is quantized the same
    way in numpy, as the core quantizes int8 only."""
    if model.input_type == "float32":
        return np.ascontiguousarray(x, dtype=np.float32)
    if model.input_type == "int16":
        if x.dtype == np.int16:
            return x
        q = np.trunc(np.asarray(x, dtype=np.float64) / model.input_scale
                     + 0.5 * np.sign(x)) + model.input_zero_point
        return np.clip(q, -32768, 32767).astype(np.int16)
    if x.dtype == np.int8:
        return x
    q16 = np.clip(np.round(np.asarray(x, dtype=np.float64) * 65536), -(2**31) + 1, 2**31 - 1)
    if model.n_channels == 0:
        # No channel layout the core's input stage can take: quantize element by element
        # through it as one channel (the same rounding), without an input correction.
        one = replace(model, n_channels=1, kind="classifier", n_outputs=0,
                      n_classes=max(2, model.n_classes), n_features=0)
        flat = q16.astype(np.int32).reshape(-1, 1)
        return Corrector(core, one).input_correct(flat).reshape(x.shape)
    corr = Corrector(core, model, params)
    flat = q16.astype(np.int32).reshape(-1, model.n_channels)
    return corr.input_correct(flat).reshape(x.shape)


def fingerprint(inputs: NDArray, labels: NDArray) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(inputs).tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


def capture(device: Device, inputs: NDArray[np.int8], labels: NDArray, path: Path, *,
            features: bool = False, fresh_state: bool = False,
            console: Console | None = None) -> CaptureStore:
    """INFER every input not yet in the capture file at `path`; returns the filled store.
    `fresh_state`: every sample with MODEL_RESET, for a model that keeps state between
    invocations (each sample is then its own sequence, whatever order it is sent in)."""
    model = device.model
    raw_bytes = model.outputs * np.dtype(NUMPY_OF[model.output_type]).itemsize
    header = {
        "model_crc": f"0x{model.model_crc:08x}",
        "data": fingerprint(inputs, labels),
        "raw_bytes": raw_bytes,
        "features": bool(features),
    }
    if fresh_state:  # only then: files of stateless models keep their header
        header["fresh_state"] = True
    store = CaptureStore(path, header)
    todo = [i for i in range(len(inputs)) if i not in store.records]
    if not todo:
        return store
    console = console or Console(stderr=True)
    link = device.link
    start_tx, start_rx = link.stats.bytes_tx, link.stats.bytes_rx
    started = time.monotonic()
    columns = (TextColumn("[bold]capture"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("capture", total=len(inputs), completed=len(store.records),
                                 rate="")
        try:
            for n, i in enumerate(todo, 1):
                rsp = link.infer(inputs[i].tobytes(), features=features,
                                 reset_model=fresh_state)
                store.append(CaptureRecord(i, int(labels[i]), rsp.cycles_invoke,
                                           rsp.cycles_tinyfix, rsp.raw, rsp.features))
                elapsed = max(time.monotonic() - started, 1e-6)
                busier = max(link.stats.bytes_tx - start_tx, link.stats.bytes_rx - start_rx)
                progress.update(task, advance=1, rate=f"{n / elapsed:.0f} samples/s, "
                                f"{_utilisation(busier, elapsed, device)}")
        except KeyboardInterrupt:
            store.close()
            raise CaptureInterrupted(
                f"interrupted: {len(store.records)} of {len(inputs)} samples are saved in "
                f"{path}; run the same command again to resume") from None
        except WireError as exc:
            store.close()
            raise CaptureInterrupted(
                f"lost {device.port_name} after {len(store.records)} of {len(inputs)} samples "
                f"({exc}); they are saved in {path}: reconnect and run the same command "
                "again to resume") from exc
    return store


def _utilisation(busier_bytes: int, elapsed: float, device: Device) -> str:
    """Share of the line rate used: 10 bits a byte on an 8N1 UART, full duplex, so the busier
    direction counts. A pty (the simulated device) has no line rate."""
    if device.port_name.startswith("sim"):
        at_115200 = busier_bytes * 10 / (115200 * elapsed)
        return f"pty: {at_115200:.0%} of a 115200 baud line"
    return f"link {busier_bytes * 10 / (device.baud * elapsed):.0%} of {device.baud} baud"


def raw_outputs(store: CaptureStore, model: ModelInfo, indices: NDArray) -> NDArray:
    """(N, classes) raw output tensors of the captured samples, in `indices` order."""
    dtype = NUMPY_OF[model.output_type]
    return np.stack([np.frombuffer(store.records[int(i)].raw, dtype=dtype) for i in indices])


def feature_vectors(store: CaptureStore, model: ModelInfo, indices: NDArray) -> NDArray | None:
    """(N, features) int8 feature vectors of the captured samples in `indices` order, or None
    when they were captured without (or the device reports none)."""
    rows = [store.records[int(i)].features for i in indices]
    if model.n_features == 0 or any(len(r) != model.n_features for r in rows):
        return None
    return np.stack([np.frombuffer(r, dtype=np.int8) for r in rows])
