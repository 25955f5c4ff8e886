# SPDX-License-Identifier: Apache-2.0
"""Every field of struct tinyfix_params once: where it lives in the struct, its number
format, how many entries it has, and its names in params.yaml and in the devicetree binding
(modules/tinyfix/dts/bindings/tinyfix,correction.yaml). The YAML and overlay writers and
readers all walk this one table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tinyfix.errors import TinyfixError


@dataclass(frozen=True)
class Format:
    """An integer format: real = q / one, or named values (enum), or bit names."""

    name: str
    one: int = 1
    names: tuple[str, ...] = ()
    bits: tuple[str, ...] = ()

    @property
    def is_real(self) -> bool:
        return self.one != 1

    def real(self, q: int) -> float:
        return q / self.one


Q16 = Format("Q16.16", 65536)
Q15 = Format("Q15", 32768)
Q8 = Format("Q8.8", 256)
SCORE8 = Format("score8", 256)  # probability * 256
INT = Format("integer")
STAGES = Format("stage bits", bits=("head", "scale", "threshold", "vote", "anomaly", "input",
                                    "adapt", "monitor"))
CLASS_FLAGS = Format("class flag bits", bits=("background",))
ANOMALY_OPTIONS = Format("anomaly option bits", bits=("learn_anomalies", "frozen"))


def enum(*names: str) -> Format:
    return Format("enum", names=names)


@dataclass(frozen=True)
class Field:
    path: str  # member path in struct tinyfix_params
    dt: str  # devicetree property
    fmt: Format
    group: str  # params.yaml section ("" = top level)
    key: str  # name inside that section
    # "set", "class", "channel", "head" (set), "head_row", "head_weights", "head_bitmap"
    per: str = "set"


FIELDS: tuple[Field, ...] = (
    Field("flags", "flags", STAGES, "", "stages"),
    Field("output_kind", "output-kind", enum("logits", "probs"), "", "output_kind"),
    Field("inv_temperature", "inv-temperature", Q16, "", "inv_temperature"),
    Field("class_scale", "class-scale", Q16, "classes", "scale", "class"),
    Field("class_bias", "class-bias", Q16, "classes", "bias", "class"),
    Field("class_threshold", "class-threshold", Q15, "classes", "threshold", "class"),
    Field("class_flags", "class-flags", CLASS_FLAGS, "classes", "flags", "class"),
    Field("vote.mode", "vote-mode", enum("average", "majority"), "vote", "mode"),
    Field("vote.source", "vote-source", enum("corrected", "raw"), "vote", "source"),
    Field("vote.threshold", "vote-threshold", SCORE8, "vote", "threshold"),
    Field("vote.min_count", "vote-min-count", INT, "vote", "min_count"),
    Field("vote.window_ms", "vote-window-ms", INT, "vote", "window_ms"),
    Field("vote.suppression_ms", "vote-suppression-ms", INT, "vote", "suppression_ms"),
    Field("anomaly.mode", "anomaly-mode", enum("high", "low", "both"), "anomaly", "mode"),
    Field("anomaly.options", "anomaly-options", ANOMALY_OPTIONS, "anomaly", "options"),
    Field("anomaly.class_index", "anomaly-class", INT, "anomaly", "class_index"),
    Field("anomaly.window", "anomaly-window", INT, "anomaly", "window"),
    Field("anomaly.warmup", "anomaly-warmup", INT, "anomaly", "warmup"),
    Field("anomaly.alpha_q8", "anomaly-alpha-q8", Q8, "anomaly", "alpha"),
    Field("anomaly.min_dev", "anomaly-min-dev", Q16, "anomaly", "min_dev"),
    Field("anomaly.score_shift", "anomaly-score-shift", INT, "anomaly", "score_shift"),
    Field("anomaly.seed_mean", "anomaly-seed-mean", Q16, "anomaly", "seed_mean"),
    Field("anomaly.seed_sigma", "anomaly-seed-sigma", Q16, "anomaly", "seed_sigma"),
    Field("anomaly.guard_q8", "anomaly-guard-q8", Q8, "anomaly", "guard"),
    Field("input.fill_mode", "input-fill-mode", enum("last", "mean"), "input", "fill_mode"),
    Field("input.stats_shift", "input-stats-shift", INT, "input", "stats_shift"),
    Field("input.clip_k_q8", "input-clip-k-q8", Q8, "input", "clip_k"),
    Field("input.offset", "input-offset", Q16, "channels", "offset", "channel"),
    Field("input.gain", "input-gain", Q16, "channels", "gain", "channel"),
    Field("adapt.learning_rate", "adapt-learning-rate", Q16, "adapt", "learning_rate"),
    Field("adapt.clamp", "adapt-clamp", Q16, "adapt", "clamp"),
    Field("adapt.head_learning_rate", "adapt-head-learning-rate", Q16, "adapt",
          "head_learning_rate"),
    Field("adapt.head_clamp", "adapt-head-clamp", INT, "adapt", "head_clamp"),
    Field("monitor.rate_shift", "monitor-rate-shift", INT, "monitor", "rate_shift"),
    Field("monitor.min_frames", "monitor-min-frames", INT, "monitor", "min_frames"),
    Field("monitor.ref_conf", "monitor-ref-conf", Q15, "monitor", "ref_conf"),
    Field("monitor.conf_drop", "monitor-conf-drop", Q15, "monitor", "conf_drop"),
    Field("monitor.prior_tv", "monitor-prior-tv", Q15, "monitor", "prior_tv"),
    Field("monitor.input_z_q8", "monitor-input-z-q8", Q8, "monitor", "input_z"),
    Field("monitor.ref_prior", "monitor-ref-prior", Q15, "classes", "ref_prior", "class"),
    Field("monitor.ref_in_mean", "monitor-ref-in-mean", Q16, "channels", "ref_in_mean",
          "channel"),
    Field("monitor.ref_in_std", "monitor-ref-in-std", Q16, "channels", "ref_in_std", "channel"),
    Field("n_channels", "n-channels", INT, "", "n_channels"),
    Field("n_features", "n-features", INT, "", "n_features"),
    Field("head_rows", "head-rows", INT, "", "head_rows"),
    Field("head_columns", "head-columns", INT, "", "head_columns"),
    Field("head.multiplier", "head-multiplier", INT, "head", "multiplier", "head_row"),
    Field("head.shift", "head-shift", INT, "head", "shift", "head_row"),
    Field("head.bias", "head-bias", INT, "head", "bias", "head_row"),
    Field("head.columns", "head-column-mask", INT, "head", "columns", "head_bitmap"),
    Field("head.weights", "head-weights", INT, "head", "weights", "head_weights"),
)
BY_DT = {f.dt: f for f in FIELDS}


def head_shape(c: Any) -> tuple[int, int]:
    """(rows, weights per row) of the set's head: every feature for a whole layer, its
    columns for a residual; (0, 0) without a head."""
    n_features = int(c.n_features)
    if not n_features:
        return 0, 0
    return int(c.head_rows), int(c.head_columns) or n_features


def count(c: Any, field: Field) -> int | None:
    """Entries of an array field in this set (None for a scalar)."""
    n_classes, n_channels, n_features = int(c.n_classes), int(c.n_channels), int(c.n_features)
    rows, per_row = head_shape(c)
    bitmap = (n_features + 7) // 8 if n_features and int(c.head_columns) else 0
    return {"set": None, "head": None, "class": n_classes, "channel": n_channels,
            "head_row": rows, "head_weights": rows * per_row,
            "head_bitmap": bitmap}[field.per]


def columns_of(bitmap: list[int]) -> list[int]:
    """Feature indices of a residual head's column bitmap."""
    return [8 * i + b for i, byte in enumerate(bitmap) for b in range(8) if byte >> b & 1]


def bitmap_of(columns: list[int], n_features: int) -> list[int]:
    """The column bitmap of these feature indices."""
    bits = [0] * ((n_features + 7) // 8)
    for f in columns:
        if not 0 <= f < n_features:
            raise TinyfixError(f"head column {f} is not a feature index below {n_features}")
        bits[f // 8] |= 1 << (f % 8)
    return bits


def _owner(c: Any, path: str) -> tuple[Any, str]:
    *parents, last = path.split(".")
    for part in parents:
        c = getattr(c, part)
    return c, last


def get(c: Any, field: Field) -> int | list[int]:
    owner, name = _owner(c, field.path)
    n = count(c, field)
    value = getattr(owner, name)
    return int(value) if n is None else [int(v) for v in value[0:n]]


def put(c: Any, field: Field, value: int | list[int]) -> None:
    """Store into the cffi struct; a value that does not fit the C type is an error, not a
    silent wrap-around."""
    owner, name = _owner(c, field.path)
    try:
        if isinstance(value, list):
            arr = getattr(owner, name)
            if len(value) > len(arr):
                raise TinyfixError(f"{field.path}: {len(value)} entries, room for {len(arr)}")
            for i, v in enumerate(value):
                arr[i] = int(v)
        else:
            setattr(owner, name, int(value))
    except OverflowError:
        raise TinyfixError(f"{field.path}: value {value} does not fit the field") from None


def bit_names(fmt: Format, q: int) -> list[str]:
    return [name for i, name in enumerate(fmt.bits) if q >> i & 1]
