# SPDX-License-Identifier: Apache-2.0
"""Golden model of the C core for tests only: the same integer arithmetic written plainly in
Python (arbitrary-precision ints, so overflow in C shows up as a mismatch), plus reference
implementations the core must agree with (float softmax, TFLM's RecognizeCommands and int8
FULLY_CONNECTED)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
LOG2E_Q30 = 1549082005
LN2_Q30 = 744261118
EXP2_SIXTEENTHS = [round(2 ** (i / 16) * 2**30) for i in range(16)]


def sat32(v: int) -> int:
    return max(INT32_MIN, min(INT32_MAX, v))


def round_shift(v: int, n: int) -> int:
    return (v + (1 << (n - 1))) >> n if n > 0 else v


def quant_from_float(scale: float) -> tuple[int, int]:
    """(multiplier, shift) as TFLM's QuantizeMultiplier for a float32 scale."""
    if scale == 0:
        return 0, 0
    mant, exp = math.frexp(scale)
    mult = round(mant * 2**31)
    if mult == 2**31:
        mult //= 2
        exp += 1
    if exp < -62:
        return 0, 0
    return mult, exp


def mul_q31(x: int, mult: int, shift: int) -> int:
    right = 31 - shift
    if right > 62:
        return 0
    prod = x * mult
    if right <= 0:
        return sat32(prod << -right)
    return sat32(round_shift(prod, right))


def exp_q16(x: int) -> int:
    x = min(x, 0)
    y = round_shift(x * LOG2E_Q30, 16)
    k = y >> 30
    if k < -31:
        return 0
    r = y & 0x3FFFFFF
    t = (r * LN2_Q30) >> 30
    t2 = (t * t) >> 30
    t3 = (t2 * t) >> 30
    poly = 2**30 + t + t2 // 2 + t3 // 6  # all non-negative: floor is C truncation
    v = round_shift(EXP2_SIXTEENTHS[(y >> 26) & 0xF] * poly, 30)
    return round_shift(v, -k)


def recip_q30(d: int) -> int:
    x = 3031741621 - ((2021161081 * d) >> 31)
    for _ in range(3):
        e = 2**30 - ((x * d) >> 31)
        x += (x * e) >> 30
    return x


def log_q16(x: int) -> int:
    if x <= 0:
        return INT32_MIN
    msb = x.bit_length() - 1
    m = x << (30 - msb)
    frac = 0
    for i in range(15, -1, -1):
        m = (m * m) >> 30
        if m >= 2**31:
            m >>= 1
            frac |= 1 << i
    return round_shift(((msb - 16) * 65536 + frac) * LN2_Q30, 30)


@dataclass
class GoldenParams:
    """The fields of struct tinyfix_params the stages read, as Python ints."""

    n_classes: int
    flags: int = 0x02
    output_kind: int = 0
    inv_temperature: int = 65536
    class_scale: list[int] = field(default_factory=list)
    class_bias: list[int] = field(default_factory=list)
    class_threshold: list[int] = field(default_factory=list)

    @classmethod
    def from_c(cls, c) -> GoldenParams:
        n = c.n_classes
        return cls(
            n_classes=n, flags=c.flags, output_kind=c.output_kind,
            inv_temperature=c.inv_temperature,
            class_scale=list(c.class_scale[0:n]), class_bias=list(c.class_bias[0:n]),
            class_threshold=list(c.class_threshold[0:n]),
        )


def correct_frame(p: GoldenParams, raw: list[int], out_mult: int, out_shift: int,
                  out_zp: int) -> tuple[list[int], list[int], int, int]:
    """Stages 1-3 of the integer path for int8/int16 outputs: logits, probs, top, decision."""
    floor_q16 = max(1, mul_q31(1 << 15, out_mult, out_shift))
    logits = []
    for c in range(p.n_classes):
        x = mul_q31(raw[c] - out_zp, out_mult, out_shift + 16)
        if p.output_kind == 1:
            x = log_q16(max(x, floor_q16))
        logit = x
        if p.flags & 0x02:
            eff = round_shift(p.inv_temperature * p.class_scale[c], 16)
            logit = round_shift(x * eff, 16) + p.class_bias[c]
        logits.append(sat32(logit))
    top = max(range(p.n_classes), key=lambda c: (logits[c], -c))
    mx = logits[top]
    e = [exp_q16(max(INT32_MIN, logit - mx)) for logit in logits]
    total, k = sum(e), 0
    while (total >> k) >= 2**31:
        k += 1
    inv = recip_q30(total >> k)
    probs = [round_shift(ec * inv, 46 + k) for ec in e]
    decision = top
    if p.flags & 0x04 and probs[top] < p.class_threshold[top]:
        decision = -1
    return logits, probs, top, decision


class RecognizeCommands:
    """TFLM micro_speech's RecognizeCommands, ported line by line (int8 scores in)."""

    def __init__(self, window_ms: int = 1000, threshold: int = 200, suppression_ms: int = 1500,
                 minimum_count: int = 3, max_results: int = 50) -> None:
        self.window_ms = window_ms
        self.threshold = threshold
        self.suppression_ms = suppression_ms
        self.minimum_count = minimum_count
        self.max_results = max_results
        self.results: list[tuple[int, list[int]]] = []
        self.prev_top = 0  # "silence"
        self.prev_time = INT32_MIN

    def process(self, scores: list[int], now: int) -> tuple[int, int, bool]:
        if self.results and now < self.results[0][0]:
            raise ValueError("time went backwards")
        if len(self.results) < self.max_results:
            self.results.append((now, list(scores)))
        limit = now - self.window_ms
        while self.results and self.results[0][0] < limit:
            self.results.pop(0)
        n = len(self.results)
        duration = now - self.results[0][0]
        if n < self.minimum_count or duration < self.window_ms // 4:
            return self.prev_top, 0, False
        avg = [sum(r[1][i] + 128 for r in self.results) // n for i in range(len(scores))]
        top, top_score = 0, 0
        for i, s in enumerate(avg):
            if s > top_score:
                top, top_score = i, s
        if self.prev_top == 0 or self.prev_time == INT32_MIN:
            since = INT32_MAX
        else:
            since = now - self.prev_time
        is_new = False
        if top_score > self.threshold and (top != self.prev_top or since > self.suppression_ms):
            self.prev_top, self.prev_time, is_new = top, now, True
        return top, top_score, is_new


class AdaptiveThreshold:
    """Stage 5 in exact integers: window sums, decision on N*x - S against alpha*sqrt."""

    def __init__(self, window: int, warmup: int, alpha_q8: int, mode: int = 0,
                 learn_anomalies: bool = False) -> None:
        self.window, self.warmup, self.alpha_q8 = window, warmup, alpha_q8
        self.mode, self.learn = mode, learn_anomalies
        self.values: list[int] = []

    def step(self, score: int) -> tuple[bool, int, int]:
        x = max(-(1 << 23) + 1, min((1 << 23) - 1, score))
        n = len(self.values)
        anomaly, mean, sigma = False, 0, 0
        if n >= self.warmup:
            s, q = sum(self.values), sum(v * v for v in self.values)
            root = math.isqrt(max(0, n * q - s * s))
            dev = (n * x - s) * 256
            limit = self.alpha_q8 * root
            anomaly = (self.mode != 1 and dev > limit) or (self.mode != 0 and -dev > limit)
            mean = s // n if s >= 0 else -((-s) // n)  # C truncates toward zero
            sigma = root // n
        if not anomaly or self.learn:
            self.values.append(x)
            if len(self.values) > self.window:
                self.values.pop(0)
        return anomaly, mean, sigma


def tflm_fully_connected(features: list[int], weights: list[list[int]], bias: list[int],
                         feature_zp: int, mults: list[int], shifts: list[int],
                         out_zp: int) -> list[int]:
    """TFLM reference int8 FULLY_CONNECTED, per-channel multipliers, ported line by line."""

    def high_mul(a: int, b: int) -> int:
        if a == b == INT32_MIN:
            return INT32_MAX
        ab = a * b
        nudge = (1 << 30) if ab >= 0 else (1 - (1 << 30))
        v = ab + nudge
        return v >> 31 if v >= 0 else -((-v) >> 31)  # C division truncates toward zero

    def divide_pot(x: int, exponent: int) -> int:
        mask = (1 << exponent) - 1
        remainder = x & mask
        threshold = (mask >> 1) + (1 if x < 0 else 0)
        return (x >> exponent) + (1 if remainder > threshold else 0)

    out = []
    for row, b, mult, shift in zip(weights, bias, mults, shifts, strict=True):
        acc = b + sum(w * (f - feature_zp) for w, f in zip(row, features, strict=True))
        left, right = max(shift, 0), max(-shift, 0)
        v = divide_pot(high_mul(sat32(acc * (1 << left)), mult), right) + out_zp
        out.append(max(-128, min(127, v)))
    return out


def recon_score(x: list[int], y: list[int], in_q: tuple[int, int, int],
                out_q: tuple[int, int, int], score_shift: int) -> int:
    """tinyfix_process_recon()'s score: the mean of d^2 over the elements, d = output -
    input in input steps (ratio of scales in Q16.16, d rounded to 1/256 step), / 2^shift,
    Q16.16. in_q, out_q: (multiplier, shift, zero point); 1/n by the same reciprocal."""
    (m_in, s_in, z_in), (m_out, s_out, z_out) = in_q, out_q
    if (m_in, s_in) == (m_out, s_out):
        ratio = 65536
    else:
        right = 61 - 16 - (s_out - s_in)
        prod = m_out * recip_q30(m_in)
        ratio = 2**31 - 1 if right <= 0 else 0 if right >= 63 else round_shift(prod, right)
    total = 0
    for q_x, q_y in zip(x, y, strict=True):
        d = round_shift((q_y - z_out) * ratio - (q_x - z_in) * 65536, 8)
        total = min(total + d * d, 2**64 - 1)
    n = len(x)
    k = 0
    while (n << k) < 2**30:
        k += 1
    inv = recip_q30(n << k)
    t = 0
    while (total >> t) >= 2**32:
        t += 1
    prod = (total >> t) * inv
    right = 61 - k - t + score_shift
    if right <= 0:
        return INT32_MAX
    if right >= 64:
        return 0
    return min(INT32_MAX, ((prod >> (right - 1)) + 1) >> 1)
