/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Context life cycle and the per-frame pipeline that chains the stages.
 */

#include <string.h>

#include "tinyfix_internal.h"

static void derive(struct tinyfix_ctx *ctx)
{
	const struct tinyfix_params *p = &ctx->params;
	uint16_t c;

	for (c = 0; c < p->n_classes; c++) {
		/* Both factors are at most 64.0, so the product fits Q16.16 in int32. */
		ctx->eff_scale[c] = (int32_t)tf_round_shift(
			(int64_t)p->inv_temperature * p->class_scale[c], TF_Q16_SHIFT);
	}
}

void tinyfix_reset_stream(struct tinyfix_ctx *ctx)
{
	if (ctx == NULL) {
		return;
	}
#if TINYFIX_WITH_VOTE
	tinyfix_vote_reset(ctx);
#endif
#if TINYFIX_WITH_ANOMALY
	tinyfix_anomaly_reset(ctx);
#endif
	memset(ctx->in_mean, 0, sizeof(ctx->in_mean));
	memset(ctx->in_var, 0, sizeof(ctx->in_var));
	memset(ctx->in_last, 0, sizeof(ctx->in_last));
	ctx->in_seen = 0;
	ctx->mon_conf = 0;
	memset(ctx->mon_hist, 0, sizeof(ctx->mon_hist));
	ctx->mon_frames = 0;
	ctx->mon_advised = false;
}

const char *tinyfix_capacity_limit(const struct tinyfix_model_info *model)
{
	if (model == NULL) {
		return NULL;
	}
	if (model->n_classes > TINYFIX_MAX_CLASSES) {
		return "TINYFIX_MAX_CLASSES";
	}
	if (model->n_channels > TINYFIX_MAX_CHANNELS) {
		return "TINYFIX_MAX_CHANNELS";
	}
	if (model->n_features > TINYFIX_MAX_FEATURES) {
		return "TINYFIX_MAX_FEATURES";
	}
	return NULL;
}

/* The class and output counts each kind of model must have. */
static bool counts_match_kind(const struct tinyfix_model_info *m)
{
	const uint32_t outputs = tf_model_outputs(m);

	switch (m->kind) {
	case TINYFIX_MODEL_CLASSIFIER:
		return m->n_classes >= 2U && outputs == m->n_classes;
	case TINYFIX_MODEL_BINARY:
		return m->n_classes == 2U && outputs == 1U;
	case TINYFIX_MODEL_AUTOENCODER:
		return m->n_classes == 2U && outputs >= 1U && m->n_features == 0U &&
		       m->output_type == TINYFIX_DTYPE_INT8 && m->input_quant.multiplier > 0;
	default:
		return false;
	}
}

int tinyfix_init(struct tinyfix_ctx *ctx, const struct tinyfix_model_info *model)
{
	int err;

	if (ctx == NULL || model == NULL) {
		return TINYFIX_ERR_ARG;
	}
	if (model->output_type > TINYFIX_DTYPE_FLOAT32) {
		return TINYFIX_ERR_UNSUPPORTED;
	}
	if (tinyfix_capacity_limit(model) != NULL) {
		return TINYFIX_ERR_CAPACITY;
	}
	if (!counts_match_kind(model) ||
	    (model->output_type != TINYFIX_DTYPE_FLOAT32 && model->output_quant.multiplier <= 0) ||
	    (model->n_channels > 0U && model->input_quant.multiplier <= 0)) {
		return TINYFIX_ERR_ARG;
	}
	memset(ctx, 0, sizeof(*ctx));
	ctx->model = *model;
	err = tinyfix_params_identity(&ctx->params, model);
	if (err != TINYFIX_OK) {
		return err;
	}
	derive(ctx);
	tinyfix_input_prepare(ctx);
	tinyfix_recon_prepare(ctx);
	tinyfix_reset_stream(ctx);
	ctx->ready = true;
	return TINYFIX_OK;
}

int tinyfix_set_params(struct tinyfix_ctx *ctx, const struct tinyfix_params *params)
{
	int err;

	if (ctx == NULL || params == NULL || !ctx->ready) {
		return TINYFIX_ERR_ARG;
	}
	err = tinyfix_params_validate(params, &ctx->model);
	if (err != TINYFIX_OK) {
		return err;
	}
	ctx->params = *params;
	derive(ctx);
	tinyfix_adapt_reset(ctx);
	tinyfix_reset_stream(ctx);
	return TINYFIX_OK;
}

int tinyfix_process(struct tinyfix_ctx *ctx, const void *raw, const int8_t *features,
		    int32_t time_ms, struct tinyfix_result *res)
{
	const struct tinyfix_params *p;

	if (ctx == NULL || raw == NULL || res == NULL || !ctx->ready ||
	    ctx->model.kind == TINYFIX_MODEL_AUTOENCODER) {
		return TINYFIX_ERR_ARG;
	}
	p = &ctx->params;
#if TINYFIX_WITH_VOTE
	if ((p->flags & TINYFIX_STAGE_VOTE) != 0U && !tinyfix_vote_time_ok(ctx, time_ms)) {
		return TINYFIX_ERR_TIME;
	}
#else
	(void)time_ms;
#endif
	const int32_t *delta = NULL;
#if TINYFIX_MAX_FEATURES > 0
	int8_t head_out[TINYFIX_MAX_CLASSES];
	int32_t head_delta[TINYFIX_MAX_CLASSES];

#if TINYFIX_WITH_ADAPT
	ctx->have_features = false; /* a label refers to this frame's features only */
#endif

	if ((p->flags & TINYFIX_STAGE_HEAD) != 0U && features != NULL) {
		if (tinyfix_head_run(ctx, features, head_out, head_delta)) {
			raw = head_out;
		} else {
			delta = head_delta;
		}
	}
#else
	(void)features;
#endif
	tinyfix_correct_frame(ctx, raw, delta, res);

	res->vote_class = -1;
	res->vote_score = 0;
	res->vote_new = false;
	res->vote_event = false;
#if TINYFIX_WITH_VOTE
	if ((p->flags & TINYFIX_STAGE_VOTE) != 0U) {
		tinyfix_vote_step(ctx, raw, time_ms, res);
	}
#endif

	res->anomaly = false;
	res->anomaly_score = 0;
	res->anomaly_mean = 0;
	res->anomaly_sigma = 0;
	(void)p; /* unused when every optional stage is compiled out */
#if TINYFIX_WITH_MONITOR
	if ((p->flags & TINYFIX_STAGE_MONITOR) != 0U) {
		tinyfix_monitor_step(ctx, res);
	}
#endif
#if TINYFIX_WITH_ANOMALY
	if ((p->flags & TINYFIX_STAGE_ANOMALY) != 0U) {
		res->anomaly_score = res->logit[p->anomaly.class_index];
		tinyfix_anomaly_step(ctx, res->anomaly_score, res);
	}
#endif
	return TINYFIX_OK;
}

int tinyfix_anomaly_update(struct tinyfix_ctx *ctx, int32_t score, struct tinyfix_result *res)
{
	if (ctx == NULL || res == NULL || !ctx->ready) {
		return TINYFIX_ERR_ARG;
	}
#if TINYFIX_WITH_ANOMALY
	res->anomaly_score = score;
	tinyfix_anomaly_step(ctx, score, res);
	return TINYFIX_OK;
#else
	(void)score;
	return TINYFIX_ERR_UNSUPPORTED;
#endif
}

const char *tinyfix_strerror(int err)
{
#ifdef TINYFIX_NO_ERRMSG
	(void)err;
	return "";
#else
	static const char *const text[] = {
		"ok",
		"bad argument",
		"unsupported parameter format version",
		"parameter CRC mismatch",
		"parameters are for another model",
		"class, channel or feature count differs from the model",
		"parameter out of range",
		"exceeds this build's capacity",
		"timestamp went backwards",
		"malformed parameter blob",
		"not supported by this build or model",
	};

	if (err > 0 || err <= -(int)(sizeof(text) / sizeof(text[0]))) { /* no -INT_MIN */
		return "unknown error";
	}
	return text[-err];
#endif
}
