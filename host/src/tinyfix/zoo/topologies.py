# SPDX-License-Identifier: Apache-2.0
"""The zoo's topologies: shapes of the int8 models TinyFix users bring, kept small.

Each entry of TOPOLOGIES takes keyword parameters (always `seed`; `n_classes` and input
sizes where natural) and returns a Design; tinyfix.zoo.build() turns it into files.
Channel counts are a fraction of the originals so TFLM's reference kernels run each model
in milliseconds, but the shapes the product has to read are the real ones: DS-CNN's 64->12
head, micro_speech's 4000->4 head on a 1960-byte input, person detection's 27,648-byte
input ending AVERAGE_POOL_2D, 1x1 CONV_2D, RESHAPE, SOFTMAX.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from tinyfix.zoo.builder import GraphBuilder
from tinyfix.zoo.data import ClassConditional, NormalSubspace, reconstruction_error
from tinyfix.zoo.model import Design

KWS_CLASSES = ("silence", "unknown", "yes", "no", "up", "down", "left", "right", "on", "off",
               "stop", "go")


def _names(n_classes: int, known: tuple[str, ...] = ()) -> tuple[str, ...]:
    if n_classes <= len(known):
        return known[:n_classes]
    return tuple(f"class_{i}" for i in range(n_classes))


def _rng(name: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([sum(name.encode()), len(name), seed])


def _pool(dist: ClassConditional, n: int, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    classes = rng.permutation(np.arange(n) % dist.n_classes)
    return dist.sample(n, rng, classes)


def _classifier(name: str, seed: int, n_classes: int, input_shape: tuple[int, ...],
                body: Callable[[GraphBuilder, int], int], *, per_channel: bool = True,
                ending: str = "logits", head_as_conv: bool = False, pool_size: int = 512,
                class_names: tuple[str, ...] = (), scheme: str = "int8",
                float_io: bool = False, units: tuple[float, float] = (0.0, 1.0),
                clip: tuple[float, float] | None = None, separation: float = 1.0,
                kind: str | None = None) -> Design:
    """A classifier: `body` maps the input tensor to the head's feature tensor.

    n_classes = 1 makes a binary model (two generating classes, one output logit).
    `ending` is "logits", "softmax" or "logistic". `separation` sizes the class prototypes
    against the shared variation: the smaller, the more inputs lie near a decision boundary
    (wide, averaging models need it small, or no realistic drift moves their decisions).
    """
    if not 1 <= n_classes <= 256:
        raise ValueError(f"n_classes must be in 1..256, not {n_classes}")
    rng = _rng(name, seed)
    n_generating = max(n_classes, 2)
    dist = ClassConditional.random(input_shape, n_generating, rng, separation=separation,
                                   units=units, clip=clip)
    # The head's class means need a dozen or so inputs of every class.
    pool_x, pool_class = _pool(dist, max(pool_size, 16 * n_generating), rng)
    b = GraphBuilder(pool_x, pool_class, rng)
    features = body(b, b.input)
    out = b.head(features, n_classes, per_channel=per_channel, as_conv=head_as_conv)
    if head_as_conv:
        out = b.reshape(out, (1, n_classes))
    if ending == "softmax":
        out = b.softmax(out)
    elif ending == "logistic":
        out = b.logistic(out)
    binary = n_classes == 1
    names = ("negative", "positive") if binary else _names(n_classes, class_names)
    if kind is None:
        kind = "binary" if binary else "classifier"
    return Design(name, kind, b.finish(out), dist, pool_x, names, scheme, float_io)


def fc_small(seed: int = 0, n_classes: int = 4, n_inputs: int = 32, hidden: int = 24,
             per_channel: bool = False) -> Design:
    """FC classifier with logits out; per-tensor last layer by default."""
    def body(b: GraphBuilder, x: int) -> int:
        return b.fc(x, hidden)
    return _classifier("fc_small", seed, n_classes, (n_inputs,), body, per_channel=per_channel)


def fc_softmax(seed: int = 0, n_classes: int = 6, n_inputs: int = 48) -> Design:
    """FC classifier ending in SOFTMAX, per-channel last layer, a RELU6 hidden layer."""
    def body(b: GraphBuilder, x: int) -> int:
        return b.fc(b.fc(x, 32, act="RELU6"), 16)
    return _classifier("fc_softmax", seed, n_classes, (n_inputs,), body, ending="softmax")


def ds_cnn(seed: int = 0, n_classes: int = 12) -> Design:
    """Keyword spotter (MLPerf Tiny DS-CNN shape): MFCC [49, 10, 1], 64 -> n_classes head."""
    def body(b: GraphBuilder, x: int) -> int:
        h = b.conv(x, 16, (10, 4), stride=2)
        h = b.conv(b.depthwise(h), 32, 1)
        h = b.conv(b.depthwise(h), 64, 1)
        return b.flatten(b.global_average_pool(h))
    return _classifier("ds_cnn", seed, n_classes, (49, 10, 1), body, ending="softmax",
                       class_names=KWS_CLASSES, pool_size=384)


def kws_wide(seed: int = 0, n_classes: int = 4, filters: int = 8) -> Design:
    """micro_speech's tiny_conv: spectrogram [49, 40, 1] (1960 bytes), one strided conv,
    RESHAPE to 25*20*filters (4000) features, FULLY_CONNECTED to n_classes, SOFTMAX."""
    def body(b: GraphBuilder, x: int) -> int:
        return b.flatten(b.conv(x, filters, (10, 8), stride=2))
    return _classifier("kws_wide", seed, n_classes, (49, 40, 1), body, ending="softmax",
                       class_names=("silence", "unknown", "yes", "no"), pool_size=384,
                       separation=0.3)


def resnet8(seed: int = 0, n_classes: int = 10, width: int = 8) -> Design:
    """MLPerf Tiny image classification shape: [32, 32, 3], three residual stacks with ADD,
    global average pool, FC, SOFTMAX."""
    def block(b: GraphBuilder, x: int, filters: int, stride: int) -> int:
        h = b.conv(x, filters, 3, stride=stride)
        h = b.conv(h, filters, 3, act="NONE")
        shortcut = x if stride == 1 else b.conv(x, filters, 1, stride=stride, act="NONE")
        return b.add(h, shortcut, act="RELU")

    def body(b: GraphBuilder, x: int) -> int:
        h = b.conv(x, width, 3)
        h = block(b, h, width, 1)
        h = block(b, h, 2 * width, 2)
        h = block(b, h, 4 * width, 2)
        return b.flatten(b.global_average_pool(h))
    return _classifier("resnet8", seed, n_classes, (32, 32, 3), body, ending="softmax",
                       pool_size=384)


def person_detect(seed: int = 0, size: int = 96, width: int = 8) -> Design:
    """TFLM's person detection shape: RGB [size, size, 3] pixels (0..255; 27,648 bytes at
    96), strided MobileNet-style stack with RELU6, AVERAGE_POOL_2D to 1x1, 1x1 CONV_2D to 2
    channels, RESHAPE [1, 2], SOFTMAX."""
    def body(b: GraphBuilder, x: int) -> int:
        h = b.conv(x, width, 3, stride=2, act="RELU6")
        for filters, stride in ((2 * width, 1), (2 * width, 2), (4 * width, 2),
                                (4 * width, 2), (8 * width, 2)):
            h = b.conv(b.depthwise(h, stride=stride, act="RELU6"), filters, 1, act="RELU6")
        return b.global_average_pool(h)
    return _classifier("person_detect", seed, 2, (size, size, 3), body, ending="softmax",
                       head_as_conv=True, class_names=("no_person", "person"), pool_size=256,
                       units=(128.0, 45.0), clip=(0.0, 255.0))


def wakeword_stream(seed: int = 0, n_classes: int = 3, frames: int = 30,
                    bins: int = 40) -> Design:
    """A streaming wake-word detector's frame classifier: [frames, bins, 1] log-mel window,
    conv, depthwise (multiplier 2) + pointwise, MEAN over time and frequency, FC to n_classes
    logits."""
    def body(b: GraphBuilder, x: int) -> int:
        h = b.conv(x, 8, 3, stride=2)
        h = b.conv(b.depthwise(h, stride=2, multiplier=2), 32, 1)
        return b.mean(h)
    return _classifier("wakeword_stream", seed, n_classes, (frames, bins, 1), body,
                       class_names=("background", "unknown", "wakeword"))


def cnn_256(seed: int = 0, n_classes: int = 10, size: int = 32) -> Design:
    """Small CNN on [size, size, 1]: two strided convs (VALID, then SAME), MAX_POOL_2D,
    RESHAPE to 256 features at size 32, FULLY_CONNECTED 256 -> n_classes logits."""
    def body(b: GraphBuilder, x: int) -> int:
        h = b.conv(x, 8, 3, stride=2, padding="VALID")
        h = b.conv(h, 16, 3, stride=2)
        return b.flatten(b.max_pool(h, 2))
    return _classifier("cnn_256", seed, n_classes, (size, size, 1), body, separation=0.4)


def classes_64(seed: int = 0, n_classes: int = 64, n_inputs: int = 96) -> Design:
    """Many classes: FC 96 -> 128 -> 64 -> n_classes logits, per-tensor last layer."""
    def body(b: GraphBuilder, x: int) -> int:
        return b.fc(b.fc(x, 128), 64)
    return _classifier("classes_64", seed, n_classes, (n_inputs,), body, per_channel=False,
                       pool_size=1024, separation=1.5)


def binary_logit(seed: int = 0, n_inputs: int = 40) -> Design:
    """One output value, a logit with no activation (positive = class 1)."""
    def body(b: GraphBuilder, x: int) -> int:
        return b.fc(x, 16)
    return _classifier("binary_logit", seed, 1, (n_inputs,), body)


def binary_sigmoid(seed: int = 0, size: int = 16) -> Design:
    """One output value through LOGISTIC: conv, a SAME 3x3 average pool (padding left out
    of the average), FC 1, LOGISTIC."""
    def body(b: GraphBuilder, x: int) -> int:
        h = b.conv(x, 8, 3, stride=2)
        return b.flatten(b.average_pool(h, 3, stride=2, padding="SAME"))
    return _classifier("binary_sigmoid", seed, 1, (size, size, 1), body, ending="logistic",
                       separation=0.15)


def float_io(seed: int = 0, n_classes: int = 5, n_inputs: int = 24) -> Design:
    """An int8 classifier with float32 input (QUANTIZE first) and float32 output
    (DEQUANTIZE last), SOFTMAX before it."""
    def body(b: GraphBuilder, x: int) -> int:
        return b.fc(x, 16)
    return _classifier("float_io", seed, n_classes, (n_inputs,), body, ending="softmax",
                       float_io=True)


def int16x8(seed: int = 0, n_classes: int = 6) -> Design:
    """16x8 quantization (int16 activations, int8 weights, int64 biases): CONV_2D, RESHAPE,
    FULLY_CONNECTED, FULLY_CONNECTED to n_classes int16 logits."""
    def body(b: GraphBuilder, x: int) -> int:
        h = b.flatten(b.conv(x, 4, 3, stride=2))
        return b.fc(h, 24)
    return _classifier("int16x8", seed, n_classes, (20, 10, 1), body, scheme="int16x8")


def hybrid(seed: int = 0, n_classes: int = 4, n_inputs: int = 32) -> Design:
    """Dynamic-range quantization, as the converter makes without a representative data
    set: float32 activations, FULLY_CONNECTED weights int8. TFLM refuses it."""
    def body(b: GraphBuilder, x: int) -> int:
        return b.fc(x, 64)
    return _classifier("hybrid", seed, n_classes, (n_inputs,), body, scheme="hybrid",
                       kind="hybrid")


def stateful(seed: int = 0, n_classes: int = 5, n_inputs: int = 32) -> Design:
    """FC classifier ending in SOFTMAX whose int8 model adds the previous invocation's
    logits to its own (a resource variable): outputs depend on what ran before, unless the
    interpreter is reset, as with recurrent and streaming models."""
    def body(b: GraphBuilder, x: int) -> int:
        return b.fc(x, 24, act="RELU6")
    design = _classifier("stateful", seed, n_classes, (n_inputs,), body, ending="softmax")
    return dataclasses.replace(design, stateful=True)


def _orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def autoencoder(seed: int = 0, n_inputs: int = 640, hidden: int = 128, code: int = 8,
                pool_size: int = 1024) -> Design:
    """Anomaly detector (MLPerf Tiny ToyADMOS shape): FC n_inputs -> hidden -> code ->
    hidden -> n_inputs, built from PCA of the normal data so normal inputs reconstruct.

    The hidden layers are the top-`hidden` principal subspace in a random rotation, lifted
    by a per-unit offset of four spreads so RELU passes normal inputs untouched (anomalies
    may be clipped, which only raises their error); the code is the top-`code` components.
    """
    rng = _rng("autoencoder", seed)
    dist = NormalSubspace.random((n_inputs,), code, rng)
    pool = dist.normal(pool_size, rng)
    mean = pool.mean(axis=0).astype(np.float64)
    centred = pool - mean
    variances, vectors = np.linalg.eigh(centred.T @ centred)
    order = np.argsort(variances)[::-1]
    principal = vectors[:, order[:hidden]]  # (inputs, hidden)
    components = vectors[:, order[:code]]  # (inputs, code)
    encode_basis = principal @ _orthogonal(hidden, rng)
    decode_basis = principal @ _orthogonal(hidden, rng)
    h1 = (pool - mean) @ encode_basis
    lift1 = 4.0 * h1.std(axis=0)
    to_code = components.T @ encode_basis  # (code, hidden)
    from_code = decode_basis.T @ components  # (hidden, code)
    codes = h1 @ to_code.T
    lift3 = 4.0 * (codes @ from_code.T).std(axis=0)

    b = GraphBuilder(pool, np.zeros(pool_size, dtype=np.int64), rng)
    h = b.fc_fixed(b.input, encode_basis.T, lift1 - encode_basis.T @ mean, act="RELU")
    h = b.fc_fixed(h, to_code, -to_code @ lift1)
    h = b.fc_fixed(h, from_code, lift3, act="RELU")
    out = b.fc_fixed(h, decode_basis, mean - decode_basis @ lift3)
    graph = b.finish(out)
    # Between the normal pool's 99th percentile and the 5th of as many anomalies (log scale).
    normal_errors = reconstruction_error(pool, graph.run(pool))
    anomalies = pool + dist.anomaly_patterns(pool_size, rng).astype(np.float32)
    anomaly_errors = reconstruction_error(anomalies, graph.run(anomalies))
    threshold = float(np.sqrt(np.quantile(normal_errors, 0.99)
                              * np.quantile(anomaly_errors, 0.05)))
    return Design("autoencoder", "autoencoder", graph, dist, pool, ("normal", "anomaly"),
                  anomaly_threshold=threshold)


TOPOLOGIES: dict[str, Callable[..., Design]] = {
    "fc_small": fc_small,
    "fc_softmax": fc_softmax,
    "ds_cnn": ds_cnn,
    "kws_wide": kws_wide,
    "resnet8": resnet8,
    "person_detect": person_detect,
    "wakeword_stream": wakeword_stream,
    "cnn_256": cnn_256,
    "classes_64": classes_64,
    "binary_logit": binary_logit,
    "binary_sigmoid": binary_sigmoid,
    "float_io": float_io,
    "int16x8": int16x8,
    "autoencoder": autoencoder,
    "hybrid": hybrid,
    "stateful": stateful,
}
