# SPDX-License-Identifier: Apache-2.0
"""Run a parameter set over many frames through the C core, fast enough for a grid search.

The same tinyfix_process() as tinyfix.core.Corrector, but results land in one cffi array of
struct tinyfix_result that numpy reads in place, so a frame costs one C call and no Python
objects. Every figure the fit keeps a stage on, and every "after" figure, comes from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tinyfix.core import Core, Corrector, ModelInfo, Params
from tinyfix.errors import TinyfixError
from tinyfix.fit.domain import check_raw

CHUNK = 4096
INT32_MAX = 2**31 - 1
C_TYPES = {"int8": "int8_t *", "int16": "int16_t *", "float32": "float *"}
Q15 = 32768.0


@dataclass(frozen=True)
class CoreRun:
    """One entry per frame; prob is Q15 and logit Q16.16 over the model's classes."""

    prob: NDArray[np.int64]
    logit: NDArray[np.int64]
    top_class: NDArray[np.int64]
    top_prob: NDArray[np.int64]
    decision: NDArray[np.int64]
    vote_class: NDArray[np.int64]
    vote_new: NDArray[np.bool_]
    vote_event: NDArray[np.bool_]
    anomaly: NDArray[np.bool_]

    @property
    def confidence(self) -> NDArray[np.float64]:
        return self.top_prob / Q15

    @property
    def probabilities(self) -> NDArray[np.float64]:
        return self.prob / Q15


def _result_dtype(core: Core) -> np.dtype:
    ffi = core.ffi
    struct = "struct tinyfix_result"
    n_max = ffi.sizeof(ffi.new(f"{struct} *").prob) // 2
    formats = {"logit": ("<i4", (n_max,)), "prob": ("<u2", (n_max,)), "top_class": "<i2",
               "top_prob": "<u2", "decision": "<i2", "vote_class": "<i2", "vote_new": "u1",
               "vote_event": "u1", "anomaly": "u1"}
    return np.dtype({"names": list(formats), "formats": list(formats.values()),
                     "offsets": [ffi.offsetof(struct, k) for k in formats],
                     "itemsize": ffi.sizeof(struct)})


def check_features(features: NDArray, n: int, model: ModelInfo) -> NDArray[np.int8]:
    """Feature vectors as a contiguous (n, model.n_features) int8 array, or a clear error."""
    feats = np.asarray(features)
    if feats.shape != (n, model.n_features):
        raise TinyfixError(f"features must be ({n}, {model.n_features}), got {feats.shape}")
    if not np.issubdtype(feats.dtype, np.integer) or (
            feats.size and (feats.min() < -128 or feats.max() > 127)):
        raise TinyfixError("features must be int8 values")
    return np.ascontiguousarray(feats, dtype=np.int8)


def run_frames(core: Core, model: ModelInfo, params: Params, raw: NDArray,
               t_ms: NDArray | None = None, features: NDArray | None = None) -> CoreRun:
    """A fresh context with `params` over frames raw[i] (with feature vector features[i]
    for the head stage, if given) at times t_ms[i] (0 if None)."""
    raw = np.ascontiguousarray(check_raw(raw, model))
    n, n_outputs = raw.shape
    n_classes = model.n_classes
    feats = None if features is None else check_features(features, n, model)
    times = np.zeros(n, dtype=np.int64) if t_ms is None else np.asarray(t_ms, dtype=np.int64)
    if times.shape != (n,):
        raise TinyfixError(f"{n} frames but {times.size} timestamps")
    if n:
        # The core keeps int32 milliseconds and only uses differences: count from the first
        # frame, so epoch timestamps work too.
        times = times - times[0]
        if times.max() > INT32_MAX or times.min() < 0:
            raise TinyfixError("timestamps must be in time order and span less than 24 days")
    corrector = Corrector(core, model, params)
    ffi, lib, ctx = core.ffi, core.lib, corrector.ctx
    dtype = _result_dtype(core)
    out = np.zeros(n, dtype=dtype)
    base = ffi.cast(C_TYPES[model.output_type], ffi.from_buffer(raw))
    null = ffi.NULL
    n_feat = model.n_features if feats is not None else 0
    feat_base = ffi.cast("int8_t *", ffi.from_buffer(feats)) if n_feat else null
    block = ffi.new("struct tinyfix_result[]", min(CHUNK, max(n, 1)))
    view = np.frombuffer(ffi.buffer(block), dtype=dtype)
    process, ok = lib.tinyfix_process, lib.TINYFIX_OK
    time_list = times.tolist()
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        for i in range(start, stop):
            feat = feat_base + i * n_feat if n_feat else null
            err = process(ctx, base + i * n_outputs, feat, time_list[i], block + (i - start))
            if err != ok:
                core.check(err, f"process frame {i}")
        out[start:stop] = view[: stop - start]
    return CoreRun(
        prob=out["prob"][:, :n_classes].astype(np.int64),
        logit=out["logit"][:, :n_classes].astype(np.int64),
        top_class=out["top_class"].astype(np.int64),
        top_prob=out["top_prob"].astype(np.int64),
        decision=out["decision"].astype(np.int64),
        vote_class=out["vote_class"].astype(np.int64),
        vote_new=out["vote_new"].astype(bool),
        vote_event=out["vote_event"].astype(bool),
        anomaly=out["anomaly"].astype(bool),
    )


@dataclass(frozen=True)
class ReconRun:
    """An autoencoder's frames through tinyfix_process_recon(): score Q16.16, the adaptive
    threshold's flag, and the decision (1 anomaly, 0 normal, -1 in the warm-up)."""

    score: NDArray[np.int64]
    anomaly: NDArray[np.bool_]
    decision: NDArray[np.int64]


def run_recon(core: Core, model: ModelInfo, params: Params, inputs: NDArray,
              raw: NDArray) -> ReconRun:
    """A fresh context with `params` over an autoencoder's int8 inputs and outputs (N, n)."""
    x = np.ascontiguousarray(np.asarray(inputs).reshape(len(inputs), -1), dtype=np.int8)
    r = np.ascontiguousarray(np.asarray(raw).reshape(len(raw), -1), dtype=np.int8)
    n = x.shape[0]
    if r.shape != x.shape or x.shape[1] != model.outputs:
        raise TinyfixError(f"inputs {x.shape} and outputs {r.shape} for an autoencoder of "
                           f"{model.outputs} elements")
    corrector = Corrector(core, model, params)
    ffi, lib, ctx = core.ffi, core.lib, corrector.ctx
    res = ffi.new("struct tinyfix_result *")
    xb = ffi.cast("int8_t *", ffi.from_buffer(x))
    rb = ffi.cast("int8_t *", ffi.from_buffer(r))
    width = x.shape[1]
    score = np.empty(n, dtype=np.int64)
    anomaly = np.empty(n, dtype=bool)
    decision = np.empty(n, dtype=np.int64)
    for i in range(n):
        err = lib.tinyfix_process_recon(ctx, xb + i * width, rb + i * width, 0, res)
        if err != lib.TINYFIX_OK:
            core.check(err, f"process_recon frame {i}")
        score[i], anomaly[i], decision[i] = res.anomaly_score, res.anomaly, res.decision
    return ReconRun(score, anomaly, decision)


def run_scores(core: Core, model: ModelInfo, params: Params, scores_q16: NDArray
               ) -> NDArray[np.bool_]:
    """The adaptive threshold of `params` alone over scores (Q16.16) the core computed
    before (tinyfix_anomaly_update): the same decisions as the whole frame path, without
    computing the scores again for every candidate."""
    corrector = Corrector(core, model, params)
    ffi, lib, ctx = core.ffi, core.lib, corrector.ctx
    res = ffi.new("struct tinyfix_result *")
    update, ok = lib.tinyfix_anomaly_update, lib.TINYFIX_OK
    out = np.empty(len(scores_q16), dtype=bool)
    for i, s in enumerate(np.asarray(scores_q16, dtype=np.int64).tolist()):
        err = update(ctx, s, res)
        if err != ok:
            core.check(err, f"anomaly update {i}")
        out[i] = res.anomaly
    return out
