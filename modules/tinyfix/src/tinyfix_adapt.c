/* SPDX-License-Identifier: Apache-2.0 */
/*
 * On-device adaptation: one bounded SGD step on the class biases per labelled frame. The
 * change lives beside the applied parameters (bias_delta), so a reset or a new parameter set
 * returns exactly to the flashed values.
 */

#include <string.h>

#include "tinyfix_internal.h"

#if TINYFIX_WITH_ADAPT

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
	return TINYFIX_OK;
}

void tinyfix_adapt_reset(struct tinyfix_ctx *ctx)
{
	if (ctx != NULL) {
		memset(ctx->bias_delta, 0, sizeof(ctx->bias_delta));
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
