/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stage 0: the re-fitted last layer. A whole layer has the arithmetic of TFLM's reference
 * int8 FULLY_CONNECTED (per-channel multiplier and shift, doubling high multiply, rounding
 * divide by a power of two), so the model's own layer comes back bit for bit; a residual
 * adds Q16.16 logits from a subset of the features to the model's own output. The host
 * evaluates through this file, so its figures are bit-exact to the device's.
 */

#include <string.h>

#include "tinyfix_internal.h"

#if TINYFIX_MAX_FEATURES > 0

static int32_t doubling_high_mul(int32_t a, int32_t b)
{
	int64_t ab;
	int64_t nudge;

	if (a == INT32_MIN && b == INT32_MIN) {
		return INT32_MAX;
	}
	ab = (int64_t)a * b;
	nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
	return (int32_t)((ab + nudge) / (1LL << 31)); /* C division truncates, as TFLM's */
}

static int32_t rounding_divide_pot(int32_t x, int exponent)
{
	const int32_t mask = (int32_t)((1LL << exponent) - 1);
	const int32_t remainder = x & mask;
	const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);

	return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static int32_t requantize(int32_t acc, int32_t multiplier, int32_t shift)
{
	const int left = shift > 0 ? shift : 0;
	const int right = shift > 0 ? 0 : -shift;

	return rounding_divide_pot(doubling_high_mul(tf_sat32((int64_t)acc * (1LL << left)),
						     multiplier),
				   right);
}

/* The weight in use: the set value, plus what on-device adaptation learned. */
static inline int32_t weight(const struct tinyfix_ctx *ctx, size_t i, bool adapted)
{
	int32_t w = ctx->params.head.weights[i];

#if TINYFIX_WITH_ADAPT
	if (adapted) {
		w += (ctx->head_delta[i] + 128) >> 8;
		w = w < -127 ? -127 : (w > 127 ? 127 : w);
	}
#else
	(void)adapted;
#endif
	return w;
}

/* A whole layer's row: every feature, as TFLM's FULLY_CONNECTED. */
static int32_t row_acc(struct tinyfix_ctx *ctx, const int8_t *features, uint16_t row, bool adapted)
{
	const struct tinyfix_params *p = &ctx->params;
	const int32_t in_offset = -ctx->model.feature_zero_point;
	size_t i = (size_t)row * p->n_features;
	int32_t acc = p->head.bias[row];

	for (uint16_t f = 0; f < p->n_features; f++, i++) {
		acc += weight(ctx, i, adapted) * ((int32_t)features[f] + in_offset);
	}
	return acc;
}

/*
 * A residual's rows in one pass over its column bitmap (skipping empty bytes), so a few
 * hundred columns of a 4000-feature vector cost their own products and little else.
 */
static void residual_accs(struct tinyfix_ctx *ctx, const int8_t *features, int32_t *acc,
			  bool adapted)
{
	const struct tinyfix_params *p = &ctx->params;
	const int32_t in_offset = -ctx->model.feature_zero_point;
	const uint16_t k = p->head_columns;
	uint16_t j = 0;

	for (uint16_t r = 0; r < p->head_rows; r++) {
		acc[r] = p->head.bias[r];
	}
	for (uint16_t byte = 0; byte < (uint16_t)((p->n_features + 7U) / 8U); byte++) {
		uint8_t bits = p->head.columns[byte];

		for (uint16_t f = (uint16_t)(byte * 8U); bits != 0U; f++, bits >>= 1) {
			if ((bits & 1U) != 0U) {
				int32_t x = (int32_t)features[f] + in_offset;

				for (uint16_t r = 0; r < p->head_rows; r++) {
					acc[r] += weight(ctx, (size_t)r * k + j, adapted) * x;
				}
				j++;
			}
		}
	}
}

#if TINYFIX_WITH_ADAPT
/* Keep the values the head read, which the next label's weight step needs. */
static void keep_features(struct tinyfix_ctx *ctx, const int8_t *features)
{
	const struct tinyfix_params *p = &ctx->params;
	uint16_t j = 0;

	if (p->head_columns == 0U) {
		memcpy(ctx->last_features, features, p->n_features);
	} else {
		for (uint16_t f = 0; f < p->n_features; f++) {
			if (((p->head.columns[f / 8U] >> (f % 8U)) & 1U) != 0U) {
				ctx->last_features[j++] = features[f];
			}
		}
	}
	ctx->have_features = true;
}
#endif

bool tinyfix_head_run(struct tinyfix_ctx *ctx, const int8_t *features, int8_t *out, int32_t *delta)
{
	const struct tinyfix_params *p = &ctx->params;
	const struct tinyfix_head_params *h = &p->head;
	const bool adapted = (p->flags & TINYFIX_STAGE_ADAPT) != 0U;
	/* A binary model's one row is class 1's logit; class 0 is its complement. */
	const uint16_t first_class = ctx->model.kind == TINYFIX_MODEL_BINARY ? 1U : 0U;
	uint16_t r;

#if TINYFIX_WITH_ADAPT
	if (adapted) {
		keep_features(ctx, features);
	}
#endif
	if (p->head_columns > 0U) {
		int32_t acc[TINYFIX_MAX_CLASSES];

		residual_accs(ctx, features, acc, adapted);
		memset(delta, 0, sizeof(int32_t) * p->n_classes);
		for (r = 0; r < p->head_rows; r++) {
			delta[first_class + r] =
				tinyfix_mul_q31(acc[r], h->multiplier[r], h->shift[r]);
		}
		return false;
	}
	for (r = 0; r < p->head_rows; r++) {
		int32_t v = requantize(row_acc(ctx, features, r, adapted), h->multiplier[r],
				       h->shift[r]) +
			    ctx->model.output_quant.zero_point;

		out[r] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
	}
	return true;
}

#endif /* TINYFIX_MAX_FEATURES > 0 */
