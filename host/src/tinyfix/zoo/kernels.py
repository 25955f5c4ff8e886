# SPDX-License-Identifier: Apache-2.0
"""Float reference kernels with TensorFlow Lite's semantics (NHWC, SAME/VALID, strides).

They define what the zoo's float graphs compute: the labels, the calibration ranges and the
float twin's expected outputs all come from here, so padding and averaging follow TFLite
exactly (SAME pads `total // 2` before, the rest after; a SAME average pool divides by the
number of real elements under the window, not by the window size).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Big batches are cut into chunks so an im2col copy stays around this many floats.
_CHUNK_FLOATS = 8_000_000
# Kernels up to this many taps run as a loop over taps, bigger ones through im2col.
_MAX_TAP_LOOP = 9


def output_size(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "SAME":
        return math.ceil(size / stride)
    return (size - kernel) // stride + 1


def _pads(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int]:
    if padding != "SAME":
        return 0, 0
    out = output_size(size, kernel, stride, padding)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], padding: str,
             fill: float = 0.0) -> np.ndarray:
    """(N, Ho, Wo, C, kh, kw) strided view of the padded input."""
    (kh, kw), (sh, sw) = kernel, stride
    top, bottom = _pads(x.shape[1], kh, sh, padding)
    left, right = _pads(x.shape[2], kw, sw, padding)
    if top or bottom or left or right:
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    view = sliding_window_view(x, (kh, kw), axis=(1, 2))
    return view[:, ::sh, ::sw]


def _chunked(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
             per_sample: int) -> np.ndarray:
    step = max(1, _CHUNK_FLOATS // max(per_sample, 1))
    if x.shape[0] <= step:
        return fn(x)
    return np.concatenate([fn(x[i:i + step]) for i in range(0, x.shape[0], step)])


def _taps(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], padding: str,
          tap: Callable[[np.ndarray, int, int], np.ndarray], channels: int) -> np.ndarray:
    """Sum over kernel taps of tap(strided input slice, i, j): one slice per tap is far
    cheaper than an im2col copy for small kernels."""
    (kh, kw), (sh, sw) = kernel, stride
    n, h, w, _ = x.shape
    ho, wo = output_size(h, kh, sh, padding), output_size(w, kw, sw, padding)
    top, bottom = _pads(h, kh, sh, padding)
    left, right = _pads(w, kw, sw, padding)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    out = np.zeros((n, ho, wo, channels), dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            out += tap(xp[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :], i, j)
    return out


def activation(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "RELU":
        return np.maximum(x, 0.0)
    if kind == "RELU6":
        return np.clip(x, 0.0, 6.0)
    return x


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: tuple[int, int],
           padding: str) -> np.ndarray:
    """x (N, H, W, C), w (O, kh, kw, C) as TFLite stores CONV_2D filters, b (O,)."""
    o, kh, kw, c = w.shape
    flat_w = w.transpose(1, 2, 3, 0).reshape(kh * kw * c, o)
    if kh == kw == 1:
        return x[:, ::stride[0], ::stride[1]] @ flat_w + b
    if kh * kw <= _MAX_TAP_LOOP:
        return _taps(x, (kh, kw), stride, padding, lambda part, i, j: part @ w[:, i, j, :].T,
                     o) + b

    def run(part: np.ndarray) -> np.ndarray:
        win = _windows(part, (kh, kw), stride, padding)
        cols = np.ascontiguousarray(win.transpose(0, 1, 2, 4, 5, 3))
        n, ho, wo = cols.shape[:3]
        return (cols.reshape(n * ho * wo, -1) @ flat_w).reshape(n, ho, wo, o) + b

    ho = output_size(x.shape[1], kh, stride[0], padding)
    wo = output_size(x.shape[2], kw, stride[1], padding)
    return _chunked(run, x, ho * wo * kh * kw * c)


def depthwise_conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: tuple[int, int],
                     padding: str, multiplier: int) -> np.ndarray:
    """x (N, H, W, C), w (1, kh, kw, C * multiplier): output channel c*m+k reads channel c."""
    _, kh, kw, out_c = w.shape
    c = x.shape[-1]
    taps = w[0].reshape(kh, kw, c, multiplier)

    def tap(part: np.ndarray, i: int, j: int) -> np.ndarray:
        return (part[..., None] * taps[i, j]).reshape(*part.shape[:3], out_c)

    return _taps(x, (kh, kw), stride, padding, tap, out_c) + b


def average_pool(x: np.ndarray, size: tuple[int, int], stride: tuple[int, int],
                 padding: str) -> np.ndarray:
    total = _windows(x, size, stride, padding).sum(axis=(4, 5))
    ones = np.ones((1, *x.shape[1:3], 1), dtype=x.dtype)
    count = _windows(ones, size, stride, padding).sum(axis=(4, 5))
    return total / count


def max_pool(x: np.ndarray, size: tuple[int, int], stride: tuple[int, int],
             padding: str) -> np.ndarray:
    return _windows(x, size, stride, padding, fill=-np.inf).max(axis=(4, 5))


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
