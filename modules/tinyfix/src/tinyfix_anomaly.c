/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stage 5: adaptive threshold. Exact sliding-window mean and variance from integer running
 * sums (no cancellation error, unlike float Welford with removal); the decision compares
 * N*x - S against alpha * sqrt(N*Q - S^2), which is (x - mean) against alpha * sigma
 * scaled by N, so only one integer square root per sample is needed. A fixed floor (min_dev)
 * under alpha * sigma keeps a very quiet baseline from flagging every small wobble.
 */

#include "tinyfix_internal.h"

#if TINYFIX_WITH_ANOMALY

static void push(struct tinyfix_ctx *ctx, int64_t x)
{
	const struct tinyfix_anomaly_params *a = &ctx->params.anomaly;

	if (ctx->anom_count >= a->window) {
		int64_t old = ctx->anom_value[ctx->anom_head];

		ctx->anom_sum -= old;
		ctx->anom_sumsq -= old * old;
		ctx->anom_count--;
	}
	ctx->anom_value[ctx->anom_head] = (int32_t)x;
	ctx->anom_head = (uint16_t)((ctx->anom_head + 1U) % a->window);
	ctx->anom_sum += x;
	ctx->anom_sumsq += x * x;
	ctx->anom_count++;
}

void tinyfix_anomaly_reset(struct tinyfix_ctx *ctx)
{
	const struct tinyfix_anomaly_params *a = &ctx->params.anomaly;

	ctx->anom_head = 0;
	ctx->anom_count = 0;
	ctx->anom_sum = 0;
	ctx->anom_sumsq = 0;
	if (a->seed_sigma <= 0 || a->window < 2U) {
		return;
	}
	/* mean +/- sigma in turn: exactly that mean and (population) sigma for an even
	 * count; an odd window's last value is the mean.
	 */
	for (uint16_t i = 0; i < a->window; i++) {
		int64_t x = a->seed_mean;

		if (i + 1U < a->window || (a->window % 2U) == 0U) {
			x += (i % 2U) == 0U ? a->seed_sigma : -a->seed_sigma;
		}
		push(ctx, tf_clamp64(x, -TF_SCORE_CLAMP, TF_SCORE_CLAMP));
	}
}

void tinyfix_anomaly_step(struct tinyfix_ctx *ctx, int32_t score, struct tinyfix_result *res)
{
	const struct tinyfix_anomaly_params *a = &ctx->params.anomaly;
	const int64_t x = tf_clamp64(score, -TF_SCORE_CLAMP, TF_SCORE_CLAMP);
	const int64_t n = ctx->anom_count;
	bool anomaly = false;
	bool outside_guard = false;

	res->anomaly_mean = 0;
	res->anomaly_sigma = 0;
	if (n >= a->warmup) {
		int64_t var_n2 = n * ctx->anom_sumsq - ctx->anom_sum * ctx->anom_sum;
		uint32_t root = tinyfix_isqrt64(var_n2 > 0 ? (uint64_t)var_n2 : 0U);
		int64_t dev = (n * x - ctx->anom_sum) * 256;
		int64_t limit = (int64_t)a->alpha_q8 * root;
		/* The floor under alpha * sigma, in the same scale (n * 256 * deviation). */
		int64_t floor = n * a->min_dev * 256;
		int64_t guard = (int64_t)a->guard_q8 * root;

		if (floor > limit) {
			limit = floor;
		}
		if (floor > guard) {
			guard = floor;
		}
		anomaly = (a->mode != TINYFIX_ANOMALY_LOW && dev > limit) ||
			  (a->mode != TINYFIX_ANOMALY_HIGH && -dev > limit);
		outside_guard = a->guard_q8 > 0U && (dev > guard || -dev > guard);
		/* |sum| < 2^31 and root < 2^32: 32-bit divisions, no libgcc 64-bit helper. */
		res->anomaly_mean = (int32_t)ctx->anom_sum / (int32_t)n;
		res->anomaly_sigma = (int32_t)(root / (uint32_t)n);
	}
	res->anomaly = anomaly;

	/* Anomalies stay out of the baseline unless asked, so one event cannot raise it; so
	 * do frames outside the guard band.
	 */
	if ((a->options & TINYFIX_ANOMALY_FROZEN) != 0U ||
	    (anomaly && (a->options & TINYFIX_ANOMALY_LEARN_ANOMALIES) == 0U) ||
	    (outside_guard && !anomaly)) {
		return;
	}
	push(ctx, x);
}

#endif /* TINYFIX_WITH_ANOMALY */
