/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Drift monitor: exponential running statistics of what the device sees after correction,
 * set against the figures the host stored with the parameter set when it fitted them. Cheap
 * per frame (one add and shift per class); the comparison runs only when asked.
 */

#include <string.h>

#include "tinyfix_internal.h"

#if TINYFIX_WITH_MONITOR

#define Q23_ONE (1L << 23)

void tinyfix_monitor_step(struct tinyfix_ctx *ctx, const struct tinyfix_result *res)
{
	const int shift = ctx->params.monitor.rate_shift;
	uint16_t c;

	/* The first frame seeds the averages, so they need no warm-up from zero. */
	if (ctx->mon_frames == 0U) {
		ctx->mon_conf = (int32_t)res->top_prob << 8;
		for (c = 0; c < ctx->params.n_classes; c++) {
			ctx->mon_hist[c] = c == (uint16_t)res->top_class ? Q23_ONE : 0;
		}
	} else {
		ctx->mon_conf += (((int32_t)res->top_prob << 8) - ctx->mon_conf) >> shift;
		for (c = 0; c < ctx->params.n_classes; c++) {
			int32_t hit = c == (uint16_t)res->top_class ? Q23_ONE : 0;

			ctx->mon_hist[c] += (hit - ctx->mon_hist[c]) >> shift;
		}
	}
	if (ctx->mon_frames < UINT32_MAX) {
		ctx->mon_frames++;
	}
}

int tinyfix_drift_status(struct tinyfix_ctx *ctx, struct tinyfix_drift *out)
{
	const struct tinyfix_monitor_params *m;
	uint32_t tv = 0;
	uint32_t z_max = 0;
	uint16_t c;

	if (out != NULL) {
		memset(out, 0, sizeof(*out));
	}
	if (ctx == NULL || out == NULL || !ctx->ready) {
		return TINYFIX_ERR_ARG;
	}
	if ((ctx->params.flags & TINYFIX_STAGE_MONITOR) == 0U) {
		return TINYFIX_ERR_UNSUPPORTED;
	}
	m = &ctx->params.monitor;
	out->frames = ctx->mon_frames;
	out->mean_conf = (uint16_t)(ctx->mon_conf >> 8);
	for (c = 0; c < ctx->params.n_classes; c++) {
		int32_t d = (ctx->mon_hist[c] >> 8) - (int32_t)m->ref_prior[c];

		tv += (uint32_t)(d < 0 ? -d : d);
	}
	out->prior_tv = (uint16_t)(tv / 2U > TINYFIX_Q15_ONE ? TINYFIX_Q15_ONE : tv / 2U);
	for (c = 0; m->input_z_q8 != 0U && c < ctx->params.n_channels && ctx->in_seen > 0U; c++) {
		int64_t d = (int64_t)ctx->in_mean[c] - m->ref_in_mean[c];
		uint64_t z = (uint64_t)((d < 0 ? -d : d) << 8) / (uint32_t)m->ref_in_std[c];

		if (z > z_max) {
			z_max = z > 65535U ? 65535U : (uint32_t)z;
		}
	}
	out->input_z_q8 = (uint16_t)z_max;

	if (ctx->mon_frames >= m->min_frames) {
		if ((int32_t)out->mean_conf < (int32_t)m->ref_conf - (int32_t)m->conf_drop) {
			out->flags |= TINYFIX_DRIFT_CONF;
		}
		if (out->prior_tv > m->prior_tv) {
			out->flags |= TINYFIX_DRIFT_PRIOR;
		}
		if (m->input_z_q8 != 0U && out->input_z_q8 > m->input_z_q8) {
			out->flags |= TINYFIX_DRIFT_INPUT;
		}
	}
	if (out->flags != 0U) {
		out->flags |= TINYFIX_DRIFT_ADVISED;
		out->newly_advised = !ctx->mon_advised;
		ctx->mon_advised = true;
	}
	return TINYFIX_OK;
}

#else /* !TINYFIX_WITH_MONITOR */

int tinyfix_drift_status(struct tinyfix_ctx *ctx, struct tinyfix_drift *out)
{
	(void)ctx;
	if (out != NULL) {
		memset(out, 0, sizeof(*out));
	}
	return TINYFIX_ERR_UNSUPPORTED;
}

#endif /* TINYFIX_WITH_MONITOR */
