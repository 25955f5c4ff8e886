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
    """logit = weights @ x + bias, x = feature_scale * (feature - feature_zero_point)."""

    weights: NDArray[np.float64]  # (classes, features), dequantized per row
    bias: NDArray[np.float64]  # (classes,)
    feature_scale: float
    feature_zero_point: int
    # The layer's weight scales, one per class; per_channel: as many distinct scales
    # (TFLite's per-channel quantization), else one for the whole layer. A re-fitted head
    # is quantized the same way, so the model's own layer comes back bit for bit.
    weight_scales: tuple[float, ...]
    per_channel: bool
    ends_in_softmax: bool

    @property
    def n_classes(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.weights.shape[1])

    @property
    def own_bytes(self) -> int:
        """Flash of the model's own last layer: int8 weights and int32 biases (its scales
        are floats in the flatbuffer, turned into multipliers in the arena)."""
        return self.n_classes * self.n_features + 4 * self.n_classes

    def real_features(self, features: NDArray) -> NDArray[np.float64]:
        return self.feature_scale * (np.asarray(features, dtype=np.float64)
                                     - self.feature_zero_point)

    @classmethod
    def of_layer(cls, weights_q: NDArray, bias_q: NDArray, weight_scales: tuple[float, ...],
                 feature_scale: float, feature_zero_point: int,
                 ends_in_softmax: bool = False) -> HeadSource:
        """From an int8 layer as TFLite stores it (one scale, or one per class)."""
        w_q = np.asarray(weights_q, dtype=np.float64)
        scales = np.broadcast_to(np.asarray(weight_scales, dtype=np.float64),
                                 (w_q.shape[0],)).astype(np.float64)
        fs = float(np.float32(feature_scale))
        return cls(w_q * scales[:, None],
                   np.asarray(bias_q, dtype=np.float64) * fs * scales,
                   fs, int(feature_zero_point), tuple(float(s) for s in scales),
                   len(set(weight_scales)) > 1, ends_in_softmax)


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
    final = graph.final
    if final is None:
        tail = ", ".join(graph.ops[-2:]) or "no ops"
        return (f"the model does not end with FULLY_CONNECTED (optionally followed by "
                f"SOFTMAX) on an int8 feature vector: its last ops are {tail}")
    if final.activation != "NONE":
        return f"the last FULLY_CONNECTED has a fused {final.activation} activation"
    softmax = not final.produces_output
    if softmax and graph.ops[-1] != "SOFTMAX":
        return "the last FULLY_CONNECTED does not produce the model's output"
    if model.output_type != "int8":
        return f"the head stage writes int8 outputs; this model outputs {model.output_type}"
    n_features = final.weights.shape[1]
    if model.n_features != n_features:
        return (f"the core on this host cannot hold {n_features} features "
                f"(model info says {model.n_features})")
    if model.feature_zero_point != final.feature.zero_point:
        return "the device reports another feature zero point than the model's graph"
    source = HeadSource.of_layer(final.weights, final.bias, final.weight_scales,
                                 final.feature.scale, final.feature.zero_point, softmax)
    limited = within_limits(source, max_features)
    assert limited is not None
    return limited
