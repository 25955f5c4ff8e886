/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Integer math for the stages: scaling, e^x, ln x, integer square root, and float scales
 * turned into multiplier/shift pairs. Every function here has an exact integer twin in
 * host/src/tinyfix/golden.py; change both or neither.
 */

#include <string.h>

#include "tinyfix_internal.h"

#define LOG2E_Q30 1549082005LL /* log2(e) */
#define LN2_Q30   744261118LL  /* ln(2) */
#define ONE_Q30   (1LL << 30)

/* 2^(i/16) in Q30: e^x is 2^(x log2 e), split into a table step and a short series. */
static const int32_t exp2_sixteenths[16] = {
	1073741824, 1121280436, 1170923762, 1222764986, 1276901417, 1333434672,
	1392470869, 1454120821, 1518500250, 1585730000, 1655936265, 1729250827,
	1805811301, 1885761398, 1969251188, 2056437387,
};

int tinyfix_quant_from_float(float scale, int32_t zero_point, struct tinyfix_quant *q)
{
	uint32_t bits;
	int32_t exponent, multiplier, shift;

	if (q == NULL) {
		return TINYFIX_ERR_ARG;
	}
	memcpy(&bits, &scale, sizeof(bits));
	exponent = (int32_t)((bits >> 23) & 0xFFu);
	if ((bits & 0x80000000u) != 0U || exponent == 0xFF) {
		return TINYFIX_ERR_ARG; /* negative, NaN or infinite */
	}
	if (exponent == 0) {
		/* Zero or subnormal: a scale this small is zero for every stage. */
		multiplier = 0;
		shift = 0;
	} else {
		/* 1.m * 2^(e-127) = (1.m / 2) * 2^(e-126): 24 mantissa bits fit Q31. */
		multiplier = (int32_t)(((bits & 0x7FFFFFu) | 0x800000u) << 7);
		shift = exponent - 126;
		if (shift > 30) {
			return TINYFIX_ERR_ARG; /* *q untouched on error */
		}
		if (shift < -62) {
			multiplier = 0;
			shift = 0;
		}
	}
	q->multiplier = multiplier;
	q->shift = shift;
	q->zero_point = zero_point;
	return TINYFIX_OK;
}

int32_t tinyfix_mul_q31(int64_t x, int32_t multiplier, int32_t shift)
{
	int64_t prod = x * (int64_t)multiplier;
	int32_t right = 31 - shift;

	if (right > 62) {
		return 0;
	}
	if (right <= 0) {
		int64_t limit = INT64_MAX >> (-right);

		if (prod > limit || prod < -limit) {
			return prod > 0 ? INT32_MAX : INT32_MIN;
		}
		return tf_sat32(prod * ((int64_t)1 << (-right)));
	}
	return tf_sat32(tf_round_shift(prod, right));
}

int32_t tinyfix_exp_q16(int32_t x)
{
	int64_t y;
	int32_t k;
	int64_t r, t, t2, t3, poly, v;

	if (x > 0) {
		x = 0;
	}
	y = tf_round_shift((int64_t)x * LOG2E_Q30, 16); /* x log2 e, Q30 */
	k = (int32_t)(y >> 30);                         /* floor, <= 0 */
	if (k < -31) {
		return 0;
	}
	r = y & 0x3FFFFFF;             /* [0, 1/16) in Q30 */
	t = (r * LN2_Q30) >> 30;       /* r ln2 in Q30 */
	t2 = (t * t) >> 30;
	t3 = (t2 * t) >> 30;
	/* e^t, error < 2e-7 for t < ln2/16; 32-bit divisions avoid libgcc's 64-bit helper. */
	poly = ONE_Q30 + t + (int32_t)t2 / 2 + (int32_t)t3 / 6;
	v = tf_round_shift((int64_t)exp2_sixteenths[(y >> 26) & 0xF] * poly, 30);
	return (int32_t)tf_round_shift(v, -k);
}

static int msb_index(uint32_t x)
{
#if defined(__GNUC__)
	return 31 - __builtin_clz(x);
#else
	int n = 0;

	while (x >>= 1) {
		n++;
	}
	return n;
#endif
}

int32_t tinyfix_log_q16(int32_t x)
{
	int msb;
	int64_t m;
	int32_t frac = 0;
	int i;

	if (x <= 0) {
		return INT32_MIN;
	}
	msb = msb_index((uint32_t)x);
	m = (int64_t)x << (30 - msb); /* mantissa in [1, 2), Q30 */
	/* One bit of log2 per squaring. */
	for (i = 15; i >= 0; i--) {
		m = (m * m) >> 30;
		if (m >= (2 * ONE_Q30)) {
			m >>= 1;
			frac |= (int32_t)1 << i;
		}
	}
	return (int32_t)tf_round_shift(((int64_t)(msb - 16) * 65536 + frac) * LN2_Q30, 30);
}

uint32_t tinyfix_recip_q30(uint32_t d)
{
	/* Newton-Raphson on 1/D, D = d / 2^31 in [0.5, 1): start at 48/17 - 32/17 D, three
	 * steps X += X (1 - D X) reach 32 bits. Replaces a 64-bit division (and libgcc's 700-byte
	 * helper) on cores without one.
	 */
	int64_t x = 3031741621LL - (((int64_t)2021161081 * d) >> 31);
	int i;

	for (i = 0; i < 3; i++) {
		int64_t e = ONE_Q30 - ((x * d) >> 31);

		x += (x * e) >> 30;
	}
	return (uint32_t)x;
}

uint32_t tinyfix_isqrt64(uint64_t x)
{
	uint64_t res = 0;
	uint64_t bit = (uint64_t)1 << 62;

	while (bit > x) {
		bit >>= 2;
	}
	while (bit != 0U) {
		if (x >= res + bit) {
			x -= res + bit;
			res = (res >> 1) + bit;
		} else {
			res >>= 1;
		}
		bit >>= 2;
	}
	return (uint32_t)res;
}
