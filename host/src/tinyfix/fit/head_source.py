# SPDX-License-Identifier: Apache-2.0
"""The model's own last layer in real units: where a head re-fit starts and what it is
pulled back toward. Read from the .tflite graph; a model the head stage cannot take gets a
sentence saying why instead (the fit then skips the stage, it never fails on it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tinyfix.core import ModelInfo
from tinyfix.twin.model import ModelGraph


@dataclass(frozen=True)
class HeadSource:
    """output = weights @ x + bias, x = feature_scale * (feature - feature_zero_point).

    One row per model output: per class, or a binary model's one row (class 1's logit;
    class 0's is 0)."""

    weights: NDArray[np.float64]  # (rows, features), dequantized per row
    bias: NDArray[np.float64]  # (rows,)
    feature_scale: float
    feature_zero_point: int
    # The layer's weight scales, one per class; per_channel: as many distinct scales
    # (TFLite's per-channel quantization), else one for the whole layer. A re-fitted head
    # is quantized the same way, so the model's own layer comes back bit for bit.
    weight_scales: tuple[float, ...]
    per_channel: bool
    ends_in_softmax: bool
    # A whole-layer head writes the model's int8 output in its quantization; when that
    # cannot hold the layer's logits (a sigmoid output: no negative logits at zero point
    # -128), only a residual on the model's own output is possible, and this says why.
    whole_layer_note: str = ""

    @property
    def n_rows(self) -> int:
        return int(self.weights.shape[0])

    @property
    def binary(self) -> bool:
        return self.n_rows == 1

    @property
    def n_classes(self) -> int:
        return 2 if self.binary else self.n_rows

    @property
    def n_features(self) -> int:
        return int(self.weights.shape[1])

    @property
    def own_bytes(self) -> int:
        """Flash of the model's own last layer: int8 weights and int32 biases (its scales
        are floats in the flatbuffer, turned into multipliers in the arena)."""
        return self.n_rows * self.n_features + 4 * self.n_rows

    def class_layer(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The layer as class logits (classes, features): a binary row becomes class 1's,
        with class 0 at 0."""
        if not self.binary:
            return self.weights, self.bias
        return (np.vstack([np.zeros_like(self.weights), self.weights]),
                np.concatenate([[0.0], self.bias]))

    def to_rows(self, w: NDArray[np.float64], b: NDArray[np.float64]
                ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Class-logit weights back to the model's rows: two classes differ only by class
        1's logit minus class 0's, which is what a binary model's one row holds."""
        if not self.binary:
            return w, b
        return w[1:] - w[:1], b[1:] - b[:1]

    def real_features(self, features: NDArray) -> NDArray[np.float64]:
        return self.feature_scale * (np.asarray(features, dtype=np.float64)
                                     - self.feature_zero_point)

    @property
    def whole_layer_ok(self) -> bool:
        return not self.whole_layer_note

    @classmethod
    def of_layer(cls, weights_q: NDArray, bias_q: NDArray, weight_scales: tuple[float, ...],
                 feature_scale: float, feature_zero_point: int,
                 ends_in_softmax: bool = False, whole_layer_note: str = "") -> HeadSource:
        """From an int8 layer as TFLite stores it (one scale, or one per class)."""
        w_q = np.asarray(weights_q, dtype=np.float64)
        scales = np.broadcast_to(np.asarray(weight_scales, dtype=np.float64),
                                 (w_q.shape[0],)).astype(np.float64)
        fs = float(np.float32(feature_scale))
        return cls(w_q * scales[:, None],
                   np.asarray(bias_q, dtype=np.float64) * fs * scales,
                   fs, int(feature_zero_point), tuple(float(s) for s in scales),
                   len(set(weight_scales)) > 1, ends_in_softmax, whole_layer_note)


def within_limits(source: HeadSource | str | None, max_features: int
                  ) -> HeadSource | str | None:
    """The source, or why the device build cannot take it."""
    if isinstance(source, HeadSource) and source.n_features > max_features:
        return (f"the last layer reads {source.n_features} features, the device takes at "
                f"most {max_features} (CONFIG_TINYFIX_MAX_FEATURES)")
    return source


def head_source(graph: ModelGraph | None, model: ModelInfo, max_features: int
                ) -> HeadSource | str:
    """The model's last layer, or why the head stage cannot replace it."""
    if graph is None:
        return ("the model's .tflite is not known, so its last layer cannot be read "
                "(give --model)")
    if graph.kind == "autoencoder":
        return "an autoencoder's output is a reconstruction, not class scores"
    final = graph.final
    if final is None:
        return graph.head_note or "the model has no last layer the head stage can take"
    if final.activation != "NONE":
        return f"the last {final.op} has a fused {final.activation} activation"
    if not final.produces_output and not final.then:
        return f"the last {final.op} does not produce the model's output"
    n_features = final.weights.shape[1]
    if model.n_features != n_features:
        return (f"the core on this host cannot hold {n_features} features "
                f"(model info says {model.n_features})")
    if model.feature_zero_point != final.feature.zero_point:
        return "the device reports another feature zero point than the model's graph"
    note = ""
    if model.output_type != "int8":
        note = (f"a whole-layer head writes int8 outputs; this model outputs "
                f"{model.output_type}")
    elif final.then == "LOGISTIC":
        note = ("a sigmoid output's int8 quantization (zero point -128) holds no negative "
                "logit, so a whole layer cannot write it")
    source = HeadSource.of_layer(final.weights, final.bias, final.weight_scales,
                                 final.feature.scale, final.feature.zero_point,
                                 final.then == "SOFTMAX", note)
    limited = within_limits(source, max_features)
    assert limited is not None
    return limited
