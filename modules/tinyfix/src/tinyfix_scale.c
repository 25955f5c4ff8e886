/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stages 1-3 in integer math: dequantize, log domain for probability outputs, vector
 * scaling, softmax, per-class thresholds.
 *
 * Confidence is a fixed-point softmax rather than a log-domain margin: thresholds, voting and
 * the host's calibration error (ECE) all need probabilities, and for a dozen classes the
 * softmax costs one exp per class and one 64-bit division per frame.
 */

#include "tinyfix_internal.h"

#if !TINYFIX_USE_FLOAT

/* Raw output element c as Q16.16 real value. */
static int32_t dequant_q16(const struct tinyfix_model_info *m, const void *raw, uint16_t c)
{
	int32_t q;

	switch (m->output_type) {
	case TINYFIX_DTYPE_INT8:
		q = ((const int8_t *)raw)[c];
		break;
	case TINYFIX_DTYPE_INT16:
		q = ((const int16_t *)raw)[c];
		break;
	default: {
		/* A float tensor in an integer build: one conversion, saturated. */
		float f = ((const float *)raw)[c] * 65536.0f;

		if (!(f > -2147483648.0f)) {
			return f != f ? 0 : INT32_MIN; /* NaN becomes 0 */
		}
		if (f >= 2147483647.0f) {
			return INT32_MAX;
		}
		return (int32_t)(f + (f >= 0.0f ? 0.5f : -0.5f));
	}
	}
	/* x * 2^16 as a larger shift, not a larger x: x stays in tinyfix_mul_q31()'s domain. */
	return tinyfix_mul_q31((int64_t)q - m->output_quant.zero_point, m->output_quant.multiplier,
			       m->output_quant.shift + TF_Q16_SHIFT);
}

/*
 * Class c's value before scaling, Q16.16: the dequantized output (its log for probability
 * outputs). A binary model's one output is class 1's; class 0 is 0 for a logit and 1 - p for
 * a probability, so that softmax over the two gives back the sigmoid.
 */
static int32_t class_input(const struct tinyfix_ctx *ctx, const void *raw, uint16_t c,
			   int32_t floor_q16)
{
	const struct tinyfix_model_info *m = &ctx->model;
	const bool probs = ctx->params.output_kind == TINYFIX_OUTPUT_PROBS;
	int32_t x;

	if (m->kind == TINYFIX_MODEL_BINARY) {
		x = dequant_q16(m, raw, 0);
		if (c == 0U) {
			if (!probs) {
				return 0;
			}
			x = TINYFIX_Q16_ONE - x;
		}
	} else {
		x = dequant_q16(m, raw, c);
	}
	if (probs) {
		x = tinyfix_log_q16(x < floor_q16 ? floor_q16 : x);
	}
	return x;
}

void tinyfix_correct_frame(const struct tinyfix_ctx *ctx, const void *raw, const int32_t *delta,
			   struct tinyfix_result *res)
{
	const struct tinyfix_params *p = &ctx->params;
	const struct tinyfix_model_info *m = &ctx->model;
	const bool scale_on = (p->flags & TINYFIX_STAGE_SCALE) != 0U;
	int32_t floor_q16 = 1;
	int32_t max_logit = INT32_MIN;
	int32_t e[TINYFIX_MAX_CLASSES]; /* e^(logit - max), Q2.30 */
	int64_t sum = 0;
	uint32_t inv;
	int k = 0;
	uint16_t c, top = 0;

	if (p->output_kind == TINYFIX_OUTPUT_PROBS && m->output_type != TINYFIX_DTYPE_FLOAT32) {
		/* log(0) has no value: empty bins count as half a quantization step. */
		floor_q16 = tinyfix_mul_q31(1 << 15, m->output_quant.multiplier,
					    m->output_quant.shift);
		if (floor_q16 < 1) {
			floor_q16 = 1;
		}
	}
	for (c = 0; c < p->n_classes; c++) {
		int64_t x = class_input(ctx, raw, c, floor_q16);
		int64_t logit;

		if (delta != NULL) {
			x += delta[c];
		}
		logit = x;
		if (scale_on) {
			logit = tf_round_shift(x * ctx->eff_scale[c], TF_Q16_SHIFT) +
				p->class_bias[c];
		}
		res->logit[c] = tf_sat32(logit + ctx->bias_delta[c]);
		if (res->logit[c] > max_logit) {
			max_logit = res->logit[c];
			top = c;
		}
	}
	for (c = 0; c < p->n_classes; c++) {
		int64_t d = tf_clamp64((int64_t)res->logit[c] - max_logit, INT32_MIN, 0);

		e[c] = tinyfix_exp_q16((int32_t)d);
		sum += e[c];
	}
	/* prob = e / sum in Q15. sum is in [2^30, 2^36] (the top class contributes e^0):
	 * normalise it to [2^30, 2^31) by k bits and multiply by its reciprocal.
	 */
	while ((sum >> k) >= (1LL << 31)) {
		k++;
	}
	inv = tinyfix_recip_q30((uint32_t)(sum >> k)); /* 2^61 / (sum >> k) */
	for (c = 0; c < p->n_classes; c++) {
		res->prob[c] = (uint16_t)tf_round_shift((int64_t)e[c] * inv, 46 + k);
	}
	tf_decide(p, res, top);
}

#endif /* !TINYFIX_USE_FLOAT */
