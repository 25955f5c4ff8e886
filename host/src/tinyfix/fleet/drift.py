# SPDX-License-Identifier: Apache-2.0
"""The drift monitor's figures of one device's capture, against the fleet's reference.

The reference is a labelled lab capture of the fleet's model (fleet.yaml `reference`): the
monitor references fit.monitor.add_monitor stores in a parameter set (mean top-class
confidence, class mix) are measured on it through the C core. A device's capture is run
through the C core with those references, as the device's own monitor would see it, and
the figures the monitor compares (confidence, class-mix distance) are taken over the whole
capture; the monitor's own verdict after the capture (its running figures over about the
last 128 windows) comes beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tinyfix.core import Q15, Core, Corrector, ModelInfo, Params
from tinyfix.fit.domain import detect_output_kind
from tinyfix.fit.float_params import FloatParams
from tinyfix.fit.monitor import MonitorSettings, add_monitor
from tinyfix.fit.quantize import quantize
from tinyfix.fit.result import FitResult


@dataclass(frozen=True)
class FleetReference:
    """What a healthy device of the fleet looks like (picklable: it goes to every worker)."""

    raw: NDArray  # the reference capture's raw outputs (N, C)
    labels: NDArray[np.int64]
    monitor_blob: bytes  # an identity set with the monitor's references, encoded
    accuracy: float  # the model as it is, on the reference capture
    mean_conf: float  # references of the monitor, as fractions
    class_mix: tuple[float, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"samples": len(self.labels), "accuracy": self.accuracy,
                "mean_conf": self.mean_conf, "class_mix": list(self.class_mix)}


def sealed(core: Core, model: ModelInfo, params: Params, fp: FloatParams) -> FitResult:
    """A FitResult around a set, for the helpers that take one (add_monitor)."""
    return FitResult("classification", core, model, params, fp, [], [], 0, 0)


def reference_of(core: Core, model: ModelInfo, raw: NDArray, labels: NDArray,
                 settings: MonitorSettings | None = None) -> FleetReference:
    """Monitor references of the raw model on a labelled reference capture."""
    fp = FloatParams.identity(model.n_classes, detect_output_kind(raw, model))
    identity, _ = quantize(core, model, fp)
    params = add_monitor(sealed(core, model, identity, fp), raw, None, settings)
    out = Corrector(core, model, params).run(raw)
    m = params.c.monitor
    return FleetReference(
        raw=raw, labels=np.asarray(labels, dtype=np.int64), monitor_blob=params.encode(),
        accuracy=float(np.mean(out["top_class"] == labels)),
        mean_conf=int(m.ref_conf) / Q15,
        class_mix=tuple(int(m.ref_prior[k]) / Q15 for k in range(model.n_classes)))


def figures(core: Core, model: ModelInfo, raw: NDArray, reference: FleetReference | None
            ) -> dict[str, Any]:
    """Mean top-class confidence and class mix of the capture (the raw model, through the C
    core); with a reference also the confidence drop, the class-mix distance (total
    variation) and the device monitor's verdict (flags)."""
    if reference is None:
        fp = FloatParams.identity(model.n_classes, detect_output_kind(raw, model))
        corr = Corrector(core, model, quantize(core, model, fp)[0])
    else:
        corr = Corrector(core, model, Params.decode(core, reference.monitor_blob))
    out = corr.run(raw)
    n = model.n_classes
    mix = np.bincount(out["top_class"], minlength=n)[:n] / max(len(raw), 1)
    mean_conf = float(np.mean(out["top_prob"])) / Q15
    found: dict[str, Any] = {"mean_conf": mean_conf, "class_mix": mix.tolist()}
    if reference is None:
        return found
    status = core.ffi.new("struct tinyfix_drift *")
    core.check(core.lib.tinyfix_drift_status(corr.ctx, status), "drift status")
    lib = core.lib
    flags = int(status.flags)
    found.update({
        "conf_drop": reference.mean_conf - mean_conf,
        "prior_tv": float(0.5 * np.abs(mix - np.asarray(reference.class_mix)).sum()),
        "monitor": {"advised": bool(flags & lib.TINYFIX_DRIFT_ADVISED),
                    "confidence": bool(flags & lib.TINYFIX_DRIFT_CONF),
                    "class_mix": bool(flags & lib.TINYFIX_DRIFT_PRIOR),
                    "frames": int(status.frames),
                    "mean_conf": int(status.mean_conf) / Q15,
                    "prior_tv": int(status.prior_tv) / Q15},
    })
    return found
