/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Input correction before Invoke(): sensor offset and gain, missing-sample fill, z-score
 * clipping against exponential running statistics, and quantization to the int8 input
 * tensor with round-half-away-from-zero (as TFLite's quantizer) and saturation.
 */

#include "tinyfix_internal.h"

#if TINYFIX_WITH_INPUT

void tinyfix_input_prepare(struct tinyfix_ctx *ctx)
{
	const struct tinyfix_quant *q = &ctx->model.input_quant;

	/* 1/scale = 2^(31-shift) / m = (2^61 / m) * 2^(-30 - shift), with m in [2^30, 2^31). */
	if (q->multiplier <= 0) {
		ctx->in_inv_multiplier = 0;
		ctx->in_inv_shift = 0;
		return;
	}
	uint32_t r = tinyfix_recip_q30((uint32_t)q->multiplier); /* in (2^30, 2^31] */

	if (r >= (1UL << 31)) {
		ctx->in_inv_multiplier = (int32_t)(r >> 1);
		ctx->in_inv_shift = 2 - q->shift;
	} else {
		ctx->in_inv_multiplier = (int32_t)r;
		ctx->in_inv_shift = 1 - q->shift;
	}
}

static int8_t quantize(const struct tinyfix_ctx *ctx, int32_t x)
{
	/* |x| / 65536 / scale, rounded half away from zero. */
	int64_t mag = x < 0 ? -(int64_t)x : x;
	int32_t q = tinyfix_mul_q31(mag, ctx->in_inv_multiplier, ctx->in_inv_shift - 16);
	int64_t v = (int64_t)(x < 0 ? -q : q) + ctx->model.input_quant.zero_point;

	return (int8_t)tf_clamp64(v, -128, 127);
}

int tinyfix_input_correct(struct tinyfix_ctx *ctx, const int32_t *samples, size_t n_frames,
			  int8_t *out)
{
	const struct tinyfix_input_params *ip;
	uint16_t ch, c;
	int64_t lo[TINYFIX_MAX_CHANNELS], hi[TINYFIX_MAX_CHANNELS];
	bool clip;
	size_t f;

	if (ctx == NULL || samples == NULL || out == NULL || !ctx->ready ||
	    ctx->model.n_channels == 0U) {
		return TINYFIX_ERR_ARG;
	}
	ch = ctx->model.n_channels;
	ip = &ctx->params.input;
	if ((ctx->params.flags & (TINYFIX_STAGE_INPUT | TINYFIX_STAGE_MONITOR)) == 0U) {
		for (f = 0; f < n_frames * ch; f++) {
			out[f] = quantize(ctx, samples[f] == TINYFIX_SAMPLE_MISSING ? 0 : samples[f]);
		}
		return TINYFIX_OK;
	}
	/* The monitor alone keeps statistics of the inputs but changes none of them. */
	const bool correct = (ctx->params.flags & TINYFIX_STAGE_INPUT) != 0U;

	/* Clip bounds from the statistics at the start of the window: one sqrt per channel. */
	clip = correct && ip->clip_k_q8 != 0U && ctx->in_seen >= (1UL << ip->stats_shift);
	for (c = 0; clip && c < ch; c++) {
		int64_t bound = ((int64_t)ip->clip_k_q8 * tinyfix_isqrt64((uint64_t)ctx->in_var[c])) >> 8;

		lo[c] = (int64_t)ctx->in_mean[c] - bound;
		hi[c] = (int64_t)ctx->in_mean[c] + bound;
	}

	for (f = 0; f < n_frames; f++) {
		for (c = 0; c < ch; c++) {
			int32_t raw = samples[f * ch + c];
			int32_t x;

			if (raw == TINYFIX_SAMPLE_MISSING) {
				x = !correct ? 0
				    : ip->fill_mode == TINYFIX_FILL_LAST ? ctx->in_last[c]
									 : ctx->in_mean[c];
			} else {
				x = !correct ? raw
				    : tf_sat32(tf_round_shift(((int64_t)raw - ip->offset[c]) *
									ip->gain[c],
								TF_Q16_SHIFT));
				if (clip) {
					x = (int32_t)tf_clamp64(x, lo[c], hi[c]);
				}
				if (ctx->in_seen == 0U) {
					ctx->in_mean[c] = x;
				} else {
					int64_t d = tf_clamp64((int64_t)x - ctx->in_mean[c],
							       -(1LL << 30), 1LL << 30);

					ctx->in_mean[c] += (int32_t)(d >> ip->stats_shift);
					ctx->in_var[c] += (d * d - ctx->in_var[c]) >> ip->stats_shift;
				}
				ctx->in_last[c] = x;
			}
			out[f * ch + c] = quantize(ctx, x);
		}
		if (ctx->in_seen < UINT32_MAX) {
			ctx->in_seen++;
		}
	}
	return TINYFIX_OK;
}

#else /* !TINYFIX_WITH_INPUT */

void tinyfix_input_prepare(struct tinyfix_ctx *ctx)
{
	(void)ctx;
}

int tinyfix_input_correct(struct tinyfix_ctx *ctx, const int32_t *samples, size_t n_frames,
			  int8_t *out)
{
	(void)ctx;
	(void)samples;
	(void)n_frames;
	(void)out;
	return TINYFIX_ERR_UNSUPPORTED;
}

#endif /* TINYFIX_WITH_INPUT */
