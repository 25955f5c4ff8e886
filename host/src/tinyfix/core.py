# SPDX-License-Identifier: Apache-2.0
"""Python face of the C core: model description, parameter sets, and a corrector that runs
frames through the very C code the firmware runs (see tinyfix.ccore)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinyfix import ccore
from tinyfix.errors import CoreError

DTYPES = {"int8": 0, "int16": 1, "float32": 2}
KINDS = {"classifier": 0, "binary": 1, "autoencoder": 2}
NUMPY_DTYPES = {"int8": np.int8, "int16": np.int16, "float32": np.float32}
Q16 = 65536
Q15 = 32768


def q16(x: float) -> int:
    """Real value to Q16.16, rounded half away from zero."""
    return int(np.sign(x) * np.floor(abs(x) * Q16 + 0.5))


@dataclass(frozen=True)
class ModelInfo:
    """What the core needs to know about a model (tinyfix_model_info).

    kind: "classifier" (one output per class), "binary" (one output, two classes) or
    "autoencoder" (the output reconstructs the input; two classes, normal and anomaly).
    n_outputs: output tensor elements (0: n_classes).
    """

    model_crc: int
    n_classes: int
    output_type: str = "int8"
    output_scale: float = 1.0 / 16
    output_zero_point: int = 0
    n_channels: int = 0
    input_scale: float = 1.0
    input_zero_point: int = 0
    n_features: int = 0
    feature_zero_point: int = 0
    kind: str = "classifier"
    n_outputs: int = 0
    # The input tensor's type (host side only: how inputs are quantized before INFER).
    input_type: str = "int8"

    @property
    def outputs(self) -> int:
        """Elements of the raw output tensor."""
        return self.n_outputs or self.n_classes

    @property
    def head_rows(self) -> int:
        """Rows of a re-fitted head: one per output element."""
        return self.outputs


class Core:
    """One compiled variant of the C core ("fixed" or "float")."""

    def __init__(self, variant: str = "fixed") -> None:
        module = ccore.load(variant)
        self.variant = variant
        self.ffi = module.ffi
        self.lib = module.lib

    def check(self, err: int, what: str) -> None:
        if err != self.lib.TINYFIX_OK:
            raise CoreError(err, what, self.ffi.string(self.lib.tinyfix_strerror(err)).decode())

    def quant(self, scale: float, zero_point: int) -> Any:
        q = self.ffi.new("struct tinyfix_quant *")
        self.check(self.lib.tinyfix_quant_from_float(scale, zero_point, q), "quantization")
        return q

    def model_info(self, model: ModelInfo) -> Any:
        info = self.ffi.new("struct tinyfix_model_info *")
        info.model_crc = model.model_crc
        info.n_classes = model.n_classes
        info.output_type = DTYPES[model.output_type]
        info.output_quant = self.quant(model.output_scale, model.output_zero_point)[0]
        info.n_channels = model.n_channels
        info.input_quant = self.quant(model.input_scale, model.input_zero_point)[0]
        info.n_features = model.n_features
        info.feature_zero_point = model.feature_zero_point
        info.kind = KINDS[model.kind]
        info.n_outputs = model.n_outputs
        return info

    def capacity_limit(self, model: ModelInfo) -> str | None:
        """The TINYFIX_MAX_* option this build's core is too small in for `model`, or None."""
        found = self.lib.tinyfix_capacity_limit(self.model_info(model))
        return None if found == self.ffi.NULL else self.ffi.string(found).decode()


@dataclass
class Params:
    """A parameter set held as the C struct; fields are read and written through `c`."""

    core: Core
    c: Any = field(repr=False)

    @classmethod
    def identity(cls, core: Core, model: ModelInfo) -> Params:
        c = core.ffi.new("struct tinyfix_params *")
        core.check(core.lib.tinyfix_params_identity(c, core.model_info(model)), "identity")
        return cls(core, c)

    @classmethod
    def decode(cls, core: Core, blob: bytes) -> Params:
        c = core.ffi.new("struct tinyfix_params *")
        core.check(core.lib.tinyfix_params_decode(blob, len(blob), c), "decode parameters")
        return cls(core, c)

    def copy(self) -> Params:
        c = self.core.ffi.new("struct tinyfix_params *")
        c[0] = self.c[0]
        return Params(self.core, c)

    def seal(self) -> Params:
        self.core.lib.tinyfix_params_seal(self.c)
        return self

    def encode(self) -> bytes:
        lib, ffi = self.core.lib, self.core.ffi
        size = lib.tinyfix_params_encoded_size(self.c.n_classes, self.c.n_channels,
                                               self.c.n_features, self.c.head_rows,
                                               self.c.head_columns)
        buf = ffi.new("uint8_t[]", size)
        written = ffi.new("size_t *")
        self.core.check(lib.tinyfix_params_encode(self.c, buf, size, written), "encode")
        return bytes(ffi.buffer(buf, written[0]))

    def validate(self, model: ModelInfo) -> int:
        """0 or the core's negative error code."""
        return int(self.core.lib.tinyfix_params_validate(self.c, self.core.model_info(model)))

    @property
    def crc(self) -> int:
        return int(self.c.crc)


@dataclass
class FrameResult:
    logit: np.ndarray  # Q16.16
    prob: np.ndarray  # Q15
    top_class: int
    top_prob: int
    decision: int
    vote_class: int
    vote_score: int
    vote_new: bool
    vote_event: bool
    anomaly: bool
    anomaly_score: int
    anomaly_mean: int
    anomaly_sigma: int


class Corrector:
    """A tinyfix context: apply a parameter set to frames exactly as the device does."""

    def __init__(self, core: Core, model: ModelInfo, params: Params | None = None) -> None:
        self.core = core
        self.model = model
        self.ctx = core.ffi.new("struct tinyfix_ctx *")
        self._res = core.ffi.new("struct tinyfix_result *")
        err = core.lib.tinyfix_init(self.ctx, core.model_info(model))
        if err == core.lib.TINYFIX_ERR_CAPACITY:
            limit = core.capacity_limit(model)
            raise CoreError(err, "init", f"the model exceeds this build's {limit} "
                                         f"(CONFIG_{limit} on a device)")
        core.check(err, "init")
        if params is not None:
            self.set_params(params)

    def set_params(self, params: Params) -> None:
        self.core.check(self.core.lib.tinyfix_set_params(self.ctx, params.c), "set parameters")

    def try_set_params(self, params: Params) -> int:
        return int(self.core.lib.tinyfix_set_params(self.ctx, params.c))

    def _result(self) -> FrameResult:
        r, n = self._res, self.model.n_classes
        return FrameResult(
            logit=np.array(list(r.logit[0:n]), dtype=np.int64),
            prob=np.array(list(r.prob[0:n]), dtype=np.int64),
            top_class=r.top_class, top_prob=r.top_prob, decision=r.decision,
            vote_class=r.vote_class, vote_score=r.vote_score, vote_new=bool(r.vote_new),
            vote_event=bool(r.vote_event), anomaly=bool(r.anomaly),
            anomaly_score=r.anomaly_score, anomaly_mean=r.anomaly_mean,
            anomaly_sigma=r.anomaly_sigma,
        )

    def process(self, raw: np.ndarray, time_ms: int = 0,
                features: np.ndarray | None = None) -> FrameResult:
        ffi, lib = self.core.ffi, self.core.lib
        raw = np.ascontiguousarray(raw, dtype=NUMPY_DTYPES[self.model.output_type])
        feat = ffi.NULL
        if features is not None:
            features = np.ascontiguousarray(features, dtype=np.int8)
            feat = ffi.cast("int8_t *", ffi.from_buffer(features))
        err = lib.tinyfix_process(self.ctx, ffi.from_buffer(raw), feat, time_ms, self._res)
        self.core.check(err, "process")
        return self._result()

    def process_recon(self, x: np.ndarray, raw: np.ndarray, time_ms: int = 0) -> FrameResult:
        """An autoencoder's frame: int8 input and int8 output tensors (same element count)."""
        ffi, lib = self.core.ffi, self.core.lib
        x = np.ascontiguousarray(x, dtype=np.int8).reshape(-1)
        raw = np.ascontiguousarray(raw, dtype=np.int8).reshape(-1)
        err = lib.tinyfix_process_recon(self.ctx, ffi.cast("int8_t *", ffi.from_buffer(x)),
                                        ffi.from_buffer(raw), time_ms, self._res)
        self.core.check(err, "process_recon")
        return self._result()

    def anomaly_update(self, score_q16: int) -> FrameResult:
        self.core.check(self.core.lib.tinyfix_anomaly_update(self.ctx, score_q16, self._res),
                        "anomaly update")
        return self._result()

    def adapt(self, label: int) -> None:
        """One SGD step from the last processed frame's result."""
        self.core.check(self.core.lib.tinyfix_adapt_label(self.ctx, self._res, label), "adapt")

    def input_correct(self, samples_q16: np.ndarray) -> np.ndarray:
        """[frames, channels] int32 Q16.16 sensor samples to the int8 input tensor."""
        ffi = self.core.ffi
        samples = np.ascontiguousarray(samples_q16, dtype=np.int32)
        out = np.empty(samples.shape, dtype=np.int8)
        frames = samples.shape[0]
        err = self.core.lib.tinyfix_input_correct(
            self.ctx, ffi.cast("int32_t *", ffi.from_buffer(samples)), frames,
            ffi.cast("int8_t *", ffi.from_buffer(out)))
        self.core.check(err, "input correction")
        return out

    def run(self, raw: np.ndarray, times_ms: np.ndarray | None = None,
            features: np.ndarray | None = None,
            inputs: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Process a batch of frames in order; returns one array per result field. An
        autoencoder's frames need their int8 `inputs` (N, ...) as well."""
        n = raw.shape[0]
        times = np.zeros(n, dtype=np.int64) if times_ms is None else times_ms
        if self.model.kind == "autoencoder":
            if inputs is None:
                raise CoreError(self.core.lib.TINYFIX_ERR_ARG, "run",
                                "an autoencoder's frames need the inputs they reconstruct")
            rows = [self.process_recon(inputs[i], raw[i], int(times[i])) for i in range(n)]
        else:
            rows = [self.process(raw[i], int(times[i]),
                                 None if features is None else features[i])
                    for i in range(n)]
        return {
            name: np.array([getattr(r, name) for r in rows])
            for name in FrameResult.__dataclass_fields__
        }
