/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stages 1-3 in single-precision float, for cores with an FPU (TINYFIX_USE_FLOAT=1). The
 * results come back in the same Q16.16 / Q15 fields as the integer path; the two agree
 * within the tolerance tests/host/test_float_path.py states.
 */

#include "tinyfix_internal.h"

#if TINYFIX_USE_FLOAT

#include <math.h>

static float quant_scale(const struct tinyfix_quant *q)
{
	return ldexpf((float)q->multiplier, (int)q->shift - 31);
}

static int32_t to_q(float v, float one)
{
	float f = v * one;

	if (!(f > -2147483648.0f)) {
		return f != f ? 0 : INT32_MIN;
	}
	if (f >= 2147483647.0f) {
		return INT32_MAX;
	}
	return (int32_t)lrintf(f);
}

static float dequant(const struct tinyfix_model_info *m, const void *raw, uint16_t i)
{
	const float scale = quant_scale(&m->output_quant);
	const float zp = (float)m->output_quant.zero_point;
	float x;

	switch (m->output_type) {
	case TINYFIX_DTYPE_INT8:
		return scale * ((float)((const int8_t *)raw)[i] - zp);
	case TINYFIX_DTYPE_INT16:
		return scale * ((float)((const int16_t *)raw)[i] - zp);
	default:
		x = ((const float *)raw)[i];
		return x != x ? 0.0f : x;
	}
}

/* As the integer path's class_input(): a binary model's output is class 1's. */
static float class_input(const struct tinyfix_ctx *ctx, const void *raw, uint16_t c)
{
	const struct tinyfix_model_info *m = &ctx->model;
	const bool probs = ctx->params.output_kind == TINYFIX_OUTPUT_PROBS;
	const float floor_p = m->output_type == TINYFIX_DTYPE_FLOAT32
				      ? 1e-30f
				      : 0.5f * quant_scale(&m->output_quant);
	float x;

	if (m->kind == TINYFIX_MODEL_BINARY) {
		x = dequant(m, raw, 0);
		if (c == 0U) {
			if (!probs) {
				return 0.0f;
			}
			x = 1.0f - x;
		}
	} else {
		x = dequant(m, raw, c);
	}
	return probs ? logf(x < floor_p ? floor_p : x) : x;
}

void tinyfix_correct_frame(const struct tinyfix_ctx *ctx, const void *raw, const int32_t *delta,
			   struct tinyfix_result *res)
{
	const struct tinyfix_params *p = &ctx->params;
	float logit[TINYFIX_MAX_CLASSES];
	float max_logit = -INFINITY;
	float sum = 0.0f;
	uint16_t c, top = 0;

	for (c = 0; c < p->n_classes; c++) {
		float x = class_input(ctx, raw, c);

		if (delta != NULL) {
			x += (float)delta[c] / 65536.0f;
		}
		if ((p->flags & TINYFIX_STAGE_SCALE) != 0U) {
			x = x * ((float)ctx->eff_scale[c] / 65536.0f) +
			    (float)p->class_bias[c] / 65536.0f;
		}
		logit[c] = x + (float)ctx->bias_delta[c] / 65536.0f;
		res->logit[c] = to_q(logit[c], 65536.0f);
		if (logit[c] > max_logit) {
			max_logit = logit[c];
			top = c;
		}
	}
	for (c = 0; c < p->n_classes; c++) {
		logit[c] = expf(logit[c] - max_logit);
		sum += logit[c];
	}
	for (c = 0; c < p->n_classes; c++) {
		res->prob[c] = (uint16_t)to_q(logit[c] / sum, 32768.0f);
	}
	tf_decide(p, res, top);
}

#endif /* TINYFIX_USE_FLOAT */
