/* SPDX-License-Identifier: Apache-2.0 */
/*
 * On-device adaptation: one bounded SGD step on the class biases (and a re-fitted head's
 * weights) per labelled frame. The
 * change lives beside the applied parameters (bias_delta), so a reset or a new parameter set
 * returns exactly to the flashed values.
 */

#include <string.h>

#include "tinyfix_internal.h"

#if TINYFIX_WITH_ADAPT

#if TINYFIX_MAX_FEATURES > 0
/* The same step on the head's weights, over the features it read (all, or its columns). */
static void adapt_head(struct tinyfix_ctx *ctx, const struct tinyfix_result *res, int label)
{
	const struct tinyfix_params *p = &ctx->params;
	const struct tinyfix_adapt_params *a = &p->adapt;
	const int32_t bound = (int32_t)a->head_clamp << 8;
	const uint16_t n_cols = p->head_columns > 0U ? p->head_columns : p->n_features;
	/* A binary model's one row is class 1's logit. */
	const uint16_t first_class = ctx->model.kind == TINYFIX_MODEL_BINARY ? 1U : 0U;
	uint16_t r, j;

	for (r = 0; r < p->head_rows; r++) {
		uint16_t c = (uint16_t)(first_class + r);
		int32_t grad = (int32_t)res->prob[c] - (c == label ? TINYFIX_Q15_ONE : 0);
		/* lr (Q16) * grad (Q15) -> steps in 1/256 LSB per feature LSB: >> 23. */
		int64_t rate = (int64_t)a->head_learning_rate * grad;
		int16_t *delta = &ctx->head_delta[(size_t)r * n_cols];

		for (j = 0; j < n_cols; j++) {
			int32_t x = (int32_t)ctx->last_features[j] - ctx->model.feature_zero_point;
			int64_t step = tf_round_shift(rate * x, 23);

			delta[j] = (int16_t)tf_clamp64((int64_t)delta[j] - step, -bound, bound);
		}
	}
}
#endif

int tinyfix_adapt_label(struct tinyfix_ctx *ctx, const struct tinyfix_result *res, int label)
{
	const struct tinyfix_adapt_params *a;
	uint16_t c;

	if (ctx == NULL || res == NULL || !ctx->ready || label < 0 ||
	    label >= (int)ctx->params.n_classes) {
		return TINYFIX_ERR_ARG;
	}
	if ((ctx->params.flags & TINYFIX_STAGE_ADAPT) == 0U) {
		return TINYFIX_ERR_UNSUPPORTED;
	}
	a = &ctx->params.adapt;
	for (c = 0; c < ctx->params.n_classes; c++) {
		/* d(cross-entropy)/d(bias_c) = p_c - [c == label], Q15. */
		int32_t grad = (int32_t)res->prob[c] - (c == label ? TINYFIX_Q15_ONE : 0);
		int64_t step = tf_round_shift((int64_t)a->learning_rate * grad, 15);

		ctx->bias_delta[c] =
			(int32_t)tf_clamp64((int64_t)ctx->bias_delta[c] - step, -a->clamp, a->clamp);
	}
#if TINYFIX_MAX_FEATURES > 0
	if (ctx->have_features && a->head_learning_rate > 0 &&
	    (ctx->params.flags & TINYFIX_STAGE_HEAD) != 0U) {
		adapt_head(ctx, res, label);
	}
#endif
	return TINYFIX_OK;
}

void tinyfix_adapt_reset(struct tinyfix_ctx *ctx)
{
	if (ctx != NULL) {
		memset(ctx->bias_delta, 0, sizeof(ctx->bias_delta));
#if TINYFIX_MAX_FEATURES > 0
		memset(ctx->head_delta, 0, sizeof(ctx->head_delta));
		ctx->have_features = false;
#endif
	}
}

#else /* !TINYFIX_WITH_ADAPT */

int tinyfix_adapt_label(struct tinyfix_ctx *ctx, const struct tinyfix_result *res, int label)
{
	(void)ctx;
	(void)res;
	(void)label;
	return TINYFIX_ERR_UNSUPPORTED;
}

void tinyfix_adapt_reset(struct tinyfix_ctx *ctx)
{
	(void)ctx;
}

#endif /* TINYFIX_WITH_ADAPT */
