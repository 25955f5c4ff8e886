# SPDX-License-Identifier: Apache-2.0
"""Fixed-point primitives: bit-exact to the golden model, and close to real math."""

import math
import zlib

import golden
from hypothesis import given
from hypothesis import strategies as st


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_exp_matches_golden_and_math(core, x):
    got = core.lib.tinyfix_exp_q16(x)
    assert got == golden.exp_q16(x)
    expected = math.exp(min(x, 0) / 65536) * 2**30
    assert abs(got - expected) <= 2 + expected * 2e-6


@given(st.integers(min_value=1, max_value=2**31 - 1))
def test_log_matches_golden_and_math(core, x):
    got = core.lib.tinyfix_log_q16(x)
    assert got == golden.log_q16(x)
    assert abs(got / 65536 - math.log(x / 65536)) < 3e-5


def test_log_of_non_positive_is_marked(core):
    assert core.lib.tinyfix_log_q16(0) == -(2**31)
    assert core.lib.tinyfix_log_q16(-5) == -(2**31)


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_isqrt_is_floor_sqrt(core, x):
    assert core.lib.tinyfix_isqrt64(x) == math.isqrt(x)


@given(st.integers(min_value=-(2**31), max_value=2**31),
       st.integers(min_value=2**30, max_value=2**31 - 1),
       st.integers(min_value=-40, max_value=46))
def test_mul_q31_matches_golden(core, x, mult, shift):
    assert core.lib.tinyfix_mul_q31(x, mult, shift) == golden.mul_q31(x, mult, shift)


@given(st.floats(min_value=2.0**-40, max_value=2.0**20, allow_nan=False, width=32))
def test_quant_from_float_is_tflm_quantize_multiplier(core, scale):
    q = core.ffi.new("struct tinyfix_quant *")
    assert core.lib.tinyfix_quant_from_float(scale, 3, q) == 0
    assert (q.multiplier, q.shift) == golden.quant_from_float(scale)
    assert q.zero_point == 3


def test_quant_from_float_refuses_nan_inf_negative(core):
    q = core.ffi.new("struct tinyfix_quant *")
    for bad in (float("nan"), float("inf"), -0.5):
        assert core.lib.tinyfix_quant_from_float(bad, 0, q) == core.lib.TINYFIX_ERR_ARG


@given(st.binary(max_size=300), st.binary(max_size=50))
def test_crc32_is_zlib_and_chains(core, a, b):
    lib = core.lib
    assert lib.tinyfix_crc32(0, a, len(a)) == zlib.crc32(a)
    assert lib.tinyfix_crc32(lib.tinyfix_crc32(0, a, len(a)), b, len(b)) == zlib.crc32(a + b)


@given(st.integers(min_value=2**30, max_value=2**31 - 1))
def test_reciprocal_is_within_a_few_units_of_exact(core, d):
    got = core.lib.tinyfix_recip_q30(d)
    assert got == golden.recip_q30(d)
    assert abs(got - 2**61 / d) <= 4


def test_quant_from_float_leaves_its_output_alone_on_error(core):
    q = core.ffi.new("struct tinyfix_quant *", {"multiplier": 7, "shift": 8, "zero_point": 9})
    assert core.lib.tinyfix_quant_from_float(3e38, 1, q) == core.lib.TINYFIX_ERR_ARG
    assert (q.multiplier, q.shift, q.zero_point) == (7, 8, 9)


def test_strerror_is_safe_for_any_code(core):
    for code in (-(2**31), 2**31 - 1, -11, 1):
        assert core.ffi.string(core.lib.tinyfix_strerror(code)) == b"unknown error"
