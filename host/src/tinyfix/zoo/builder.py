# SPDX-License-Identifier: Apache-2.0
"""Build a float graph layer by layer, each layer fitted on a pool of inputs.

Random weights alone make poor test models: activations die or explode, and the last layer
sends nearly everything to one class. So, as a trained network with folded batch norm
would be, every hidden CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED is rescaled on the pool
so each output channel's pre-activation has a random spread and offset of order one; and
the classifier head is a shrunk linear discriminant of the pool's penultimate features (a
closed form, no training), whose biases are then shifted until the pool's arg-max classes
are balanced. The logits get a spread that leaves most inputs a margin int8 survives.
"""

from __future__ import annotations

import numpy as np

from tinyfix.zoo.graph import Graph, Op, Tensor, run_op

# Spread of the head's logits on the pool (real units): trained classifiers sit near this.
_LOGIT_SPREAD = 3.0
# The head's covariance is pulled this far toward its diagonal mean: a pool of a few
# hundred inputs cannot estimate every direction of a 256-feature covariance.
_SHRINKAGE = 0.3
_FULL_COVARIANCE_MAX = 1024
_HEAD_NOISE = 0.25
_BALANCE_STEPS = 400


class GraphBuilder:
    """`pool_x` (N, *input shape) with generating classes `pool_class` (N,)."""

    def __init__(self, pool_x: np.ndarray, pool_class: np.ndarray,
                 rng: np.random.Generator) -> None:
        self.graph = Graph()
        self.rng = rng
        self.pool_class = np.asarray(pool_class)
        self.values: dict[int, np.ndarray] = {}
        self.input = self.graph.add_tensor(Tensor("input", (1, *pool_x.shape[1:])))
        self.graph.input = self.input
        self.values[self.input] = np.asarray(pool_x, dtype=np.float32)

    def shape(self, tensor: int) -> tuple[int, ...]:
        return self.graph.tensors[tensor].shape

    def _const(self, name: str, data: np.ndarray, role: str) -> int:
        return self.graph.add_tensor(Tensor(name, tuple(data.shape), role, data))

    def _emit(self, op: Op, name: str, shape: tuple[int, ...] | None = None) -> int:
        op.output = self.graph.add_tensor(Tensor(name, shape or ()))
        self.graph.ops.append(op)
        out = run_op(self.graph, op, self.values)
        self.values[op.output] = out
        if shape is None:
            self.graph.tensors[op.output].shape = (1, *out.shape[1:])
        return op.output

    def _name(self, kind: str) -> str:
        return f"{kind.lower()}_{len(self.graph.ops)}"

    def _weighted(self, kind: str, x: int, w: np.ndarray, act: str,
                  b: np.ndarray | None = None, **options: object) -> int:
        """A weighted op; without a given bias `b` the layer is fitted on the pool."""
        name = self._name(kind)
        w = w.astype(np.float32)
        channel_axis = 3 if kind == "DEPTHWISE_CONV_2D" else 0
        n_out = w.shape[channel_axis]
        fit = b is None
        bias = np.zeros(n_out) if b is None else np.asarray(b)
        w_t = self._const(f"{name}/weights", w, "weight")
        b_t = self._const(f"{name}/bias", bias.astype(np.float32), "bias")
        op = Op(kind, (x, w_t, b_t), -1, **options)  # type: ignore[arg-type]
        if fit:
            # Folded batch norm: standardize each channel, then a random gain and offset.
            z = run_op(self.graph, op, self.values)
            axes = tuple(range(z.ndim - 1))
            mean, sd = z.mean(axis=axes), z.std(axis=axes) + 1e-6
            gain = self.rng.uniform(0.7, 1.4, n_out)
            shift = self.rng.normal(0.3, 0.4, n_out)
            shape = [1] * w.ndim
            shape[channel_axis] = -1
            w_scaled = w * (gain / sd).reshape(shape)
            self.graph.tensors[w_t].data = w_scaled.astype(np.float32)
            self.graph.tensors[b_t].data = (shift - mean * gain / sd).astype(np.float32)
        op.activation = act
        return self._emit(op, name)

    def conv(self, x: int, filters: int, kernel: int | tuple[int, int] = 3, stride: int = 1,
             padding: str = "SAME", act: str = "RELU") -> int:
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        c = self.shape(x)[-1]
        w = self.rng.normal(0.0, np.sqrt(2.0 / (kh * kw * c)), (filters, kh, kw, c))
        return self._weighted("CONV_2D", x, w, act, padding=padding,
                              stride=(stride, stride))

    def depthwise(self, x: int, kernel: int = 3, stride: int = 1, multiplier: int = 1,
                  padding: str = "SAME", act: str = "RELU") -> int:
        c = self.shape(x)[-1]
        w = self.rng.normal(0.0, np.sqrt(2.0 / (kernel * kernel)),
                            (1, kernel, kernel, c * multiplier))
        return self._weighted("DEPTHWISE_CONV_2D", x, w, act, padding=padding,
                              stride=(stride, stride), depth_multiplier=multiplier)

    def fc(self, x: int, units: int, act: str = "RELU", per_channel: bool = True) -> int:
        n_in = int(np.prod(self.shape(x)[1:]))
        w = self.rng.normal(0.0, np.sqrt(2.0 / n_in), (units, n_in))
        return self._weighted("FULLY_CONNECTED", x, w, act, per_channel=per_channel)

    def fc_fixed(self, x: int, w: np.ndarray, b: np.ndarray, act: str = "NONE",
                 per_channel: bool = True) -> int:
        """A FULLY_CONNECTED with given weights (units, inputs) and bias."""
        return self._weighted("FULLY_CONNECTED", x, w, act, b, per_channel=per_channel)

    def _pool(self, kind: str, x: int, size: int | tuple[int, int], stride: int | None,
              padding: str) -> int:
        fh, fw = (size, size) if isinstance(size, int) else size
        s = (fh, fw) if stride is None else (stride, stride)
        return self._emit(Op(kind, (x,), -1, padding=padding, stride=s, filter_size=(fh, fw)),
                          self._name(kind))

    def average_pool(self, x: int, size: int | tuple[int, int], stride: int | None = None,
                     padding: str = "VALID") -> int:
        return self._pool("AVERAGE_POOL_2D", x, size, stride, padding)

    def max_pool(self, x: int, size: int | tuple[int, int], stride: int | None = None,
                 padding: str = "VALID") -> int:
        return self._pool("MAX_POOL_2D", x, size, stride, padding)

    def global_average_pool(self, x: int) -> int:
        _, h, w, _ = self.shape(x)
        return self.average_pool(x, (h, w))

    def reshape(self, x: int, shape: tuple[int, ...]) -> int:
        name = self._name("RESHAPE")
        target = self._const(f"{name}/shape", np.asarray(shape, dtype=np.int32), "int32")
        return self._emit(Op("RESHAPE", (x, target), -1), name, tuple(shape))

    def flatten(self, x: int) -> int:
        return self.reshape(x, (1, int(np.prod(self.shape(x)[1:]))))

    def mean(self, x: int, axes: tuple[int, ...] = (1, 2), keep_dims: bool = False) -> int:
        name = self._name("MEAN")
        axes_t = self._const(f"{name}/axes", np.asarray(axes, dtype=np.int32), "int32")
        return self._emit(Op("MEAN", (x, axes_t), -1, keep_dims=keep_dims), name)

    def add(self, a: int, b: int, act: str = "NONE") -> int:
        return self._emit(Op("ADD", (a, b), -1, activation=act), self._name("ADD"))

    def softmax(self, x: int) -> int:
        return self._emit(Op("SOFTMAX", (x,), -1), self._name("SOFTMAX"))

    def logistic(self, x: int) -> int:
        return self._emit(Op("LOGISTIC", (x,), -1), self._name("LOGISTIC"))

    def head(self, x: int, n_outputs: int, per_channel: bool = True,
             as_conv: bool = False) -> int:
        """The classifier's last layer: n_outputs logits (1 = one binary logit).

        A FULLY_CONNECTED on a [1, F] tensor, or with `as_conv` a 1x1 CONV_2D on a
        [1, 1, 1, F] tensor (TFLM's person-detection model ends so).
        """
        f = self.values[x].reshape(self.values[x].shape[0], -1).astype(np.float64)
        classes = np.unique(self.pool_class)
        means = np.stack([f[self.pool_class == c].mean(axis=0) for c in classes])
        centred = f - means[np.searchsorted(classes, self.pool_class)]
        spread = means - f.mean(axis=0)
        if f.shape[1] > _FULL_COVARIANCE_MAX:
            # A wide layer (micro_speech's 4000 features): the diagonal keeps it quick.
            directions = spread / (centred.var(axis=0) + 1e-6 + centred.var() * _SHRINKAGE)
        else:
            cov = centred.T @ centred / f.shape[0]
            ridge = np.eye(f.shape[1]) * np.trace(cov) / f.shape[1]
            cov = (1 - _SHRINKAGE) * cov + _SHRINKAGE * ridge
            directions = np.linalg.solve(cov, spread.T).T
        if n_outputs == 1:
            directions = directions[-1:] - directions[:1]
        else:
            # A trained head is not the exact discriminant (two classes would get mirrored
            # rows with equal scales): a random part per row breaks the symmetry.
            size = np.linalg.norm(directions, axis=1, keepdims=True)
            noise = self.rng.standard_normal(directions.shape)
            noise *= size / np.linalg.norm(noise, axis=1, keepdims=True)
            directions = directions + _HEAD_NOISE * noise
        logits = f @ directions.T
        scale = _LOGIT_SPREAD / (logits.std() + 1e-12)
        w, logits = directions * scale, logits * scale
        b = _balanced_bias(logits)
        name = self._name("CONV_2D" if as_conv else "FULLY_CONNECTED")
        if as_conv:
            w = w.reshape(n_outputs, 1, 1, -1)
        w_t = self._const(f"{name}/weights", w.astype(np.float32), "weight")
        b_t = self._const(f"{name}/bias", b.astype(np.float32), "bias")
        if as_conv:
            op = Op("CONV_2D", (x, w_t, b_t), -1, padding="VALID")
        else:
            op = Op("FULLY_CONNECTED", (x, w_t, b_t), -1, per_channel=per_channel)
        return self._emit(op, name)

    def finish(self, output: int) -> Graph:
        self.graph.output = output
        return self.graph


def _balanced_bias(logits: np.ndarray) -> np.ndarray:
    """Biases that make the pool's arg-max classes (or a binary logit's signs) balanced."""
    n, k = logits.shape
    if k == 1:
        return -np.array([np.median(logits[:, 0])])
    b = -logits.mean(axis=0)
    step = 0.5 * logits.std()
    for i in range(_BALANCE_STEPS):
        share = np.bincount(np.argmax(logits + b, axis=1), minlength=k) / n
        if np.abs(share - 1.0 / k).max() < 0.25 / k:
            break
        b -= step * (share - 1.0 / k) * k / np.sqrt(1.0 + i)
    return b - b.mean()
