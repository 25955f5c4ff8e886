/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Autoencoders as anomaly detectors: the reconstruction error between the int8 input and the
 * int8 output is the anomaly score, judged by the adaptive threshold (stage 5). Integer only
 * and without a division per frame: the output-to-input scale ratio and 1/n are prepared at
 * init, so a Cortex-M0/M3 computes the same score as the host.
 */

#include <string.h>

#include "tinyfix_internal.h"

/* d is rounded to 1/256 of an input step before squaring, so d^2 is Q16 (LSB^2). */
#define RECON_D_SHIFT 8

void tinyfix_recon_prepare(struct tinyfix_ctx *ctx)
{
	const struct tinyfix_quant *in = &ctx->model.input_quant;
	const struct tinyfix_quant *out = &ctx->model.output_quant;
	uint32_t n = tf_model_outputs(&ctx->model);
	uint8_t k = 0;

	ctx->recon_ratio_q16 = 0;
	ctx->recon_inv_n = 0;
	ctx->recon_n_shift = 0;
	if (ctx->model.kind != TINYFIX_MODEL_AUTOENCODER || in->multiplier <= 0 ||
	    out->multiplier <= 0) {
		return;
	}
	if (in->multiplier == out->multiplier && in->shift == out->shift) {
		/* The common case, exact: both tensors share one scale. */
		ctx->recon_ratio_q16 = TINYFIX_Q16_ONE;
	} else {
		/* out / in = (m_out / m_in) * 2^(shift_out - shift_in); 2^61 / m_in by Newton. */
		uint64_t prod = (uint64_t)(uint32_t)out->multiplier *
				tinyfix_recip_q30((uint32_t)in->multiplier);
		int right = 61 - TF_Q16_SHIFT - (out->shift - in->shift);

		if (right <= 0) {
			ctx->recon_ratio_q16 = INT32_MAX; /* a ratio beyond 2^15: saturate */
		} else if (right >= 63) {
			ctx->recon_ratio_q16 = 0;
		} else {
			ctx->recon_ratio_q16 = (int64_t)((prod + (1ULL << (right - 1))) >> right);
		}
	}
	while ((n << k) < (1UL << 30)) {
		k++;
	}
	ctx->recon_n_shift = k;
	ctx->recon_inv_n = tinyfix_recip_q30(n << k); /* 2^61 / (n << k) */
}

/* Sum over the elements of d^2 in Q16 LSB^2, saturated at UINT64_MAX. */
static uint64_t squared_error_sum(const struct tinyfix_ctx *ctx, const int8_t *input,
				  const int8_t *output)
{
	const int32_t zx = ctx->model.input_quant.zero_point;
	const int32_t zy = ctx->model.output_quant.zero_point;
	const uint32_t n = tf_model_outputs(&ctx->model);
	uint64_t sum = 0;

	for (uint32_t i = 0; i < n; i++) {
		int64_t dy = ((int64_t)output[i] - zy) * ctx->recon_ratio_q16;
		int64_t dx = ((int64_t)input[i] - zx) * TINYFIX_Q16_ONE;
		int64_t d = tf_round_shift(dy - dx, RECON_D_SHIFT);
		uint64_t sq = (uint64_t)(d * d);

		sum = (sum > UINT64_MAX - sq) ? UINT64_MAX : sum + sq;
	}
	return sum;
}

/* sum / n / 2^score_shift in Q16.16, with the prepared reciprocal; saturated. */
static int32_t mean_score(const struct tinyfix_ctx *ctx, uint64_t sum)
{
	int t = 0;
	int right;
	uint64_t prod;

	while ((sum >> t) >= (1ULL << 32)) {
		t++;
	}
	/* (sum >> t) * 2^61 / (n << k) = sum / n * 2^(61 - k - t) */
	prod = (sum >> t) * ctx->recon_inv_n;
	right = 61 - ctx->recon_n_shift - t + ctx->params.anomaly.score_shift;
	if (right <= 0) {
		return INT32_MAX;
	}
	if (right >= 64) {
		return 0;
	}
	prod = (prod >> (right - 1)) + 1U; /* round half up */
	prod >>= 1;
	return prod > (uint64_t)INT32_MAX ? INT32_MAX : (int32_t)prod;
}

int tinyfix_process_recon(struct tinyfix_ctx *ctx, const int8_t *input, const void *raw,
			  int32_t time_ms, struct tinyfix_result *res)
{
	int32_t score;
	bool warm;

	(void)time_ms; /* the adaptive threshold counts samples, not time */
	if (ctx == NULL || input == NULL || raw == NULL || res == NULL || !ctx->ready ||
	    ctx->model.kind != TINYFIX_MODEL_AUTOENCODER) {
		return TINYFIX_ERR_ARG;
	}
	memset(res, 0, sizeof(*res));
	score = mean_score(ctx, squared_error_sum(ctx, input, raw));
	res->anomaly_score = score;
	res->vote_class = -1;
	res->top_class = TINYFIX_NO_DECISION;
	res->decision = TINYFIX_NO_DECISION;
#if TINYFIX_WITH_ANOMALY
	if ((ctx->params.flags & TINYFIX_STAGE_ANOMALY) != 0U) {
		warm = ctx->anom_count >= ctx->params.anomaly.warmup;
		tinyfix_anomaly_step(ctx, score, res);
		if (warm) {
			res->top_class = res->anomaly ? 1 : 0;
			res->decision = res->top_class;
		}
	}
#else
	(void)warm;
#endif
	res->prob[0] = res->anomaly ? 0U : TINYFIX_Q15_ONE;
	res->prob[1] = res->anomaly ? TINYFIX_Q15_ONE : 0U;
	res->top_prob = TINYFIX_Q15_ONE;
	return TINYFIX_OK;
}
