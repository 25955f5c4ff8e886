/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared between the core's source files; not part of the API.
 */

#ifndef TINYFIX_INTERNAL_H_
#define TINYFIX_INTERNAL_H_

#include <tinyfix/tinyfix.h>

#define TF_Q16_SHIFT 16
/* Anomaly scores kept within +/-128.0 so the sum of a window (<= 256 values) fits int32. */
#define TF_SCORE_CLAMP ((1L << 23) - 1)

static inline int32_t tf_sat32(int64_t v)
{
	if (v > INT32_MAX) {
		return INT32_MAX;
	}
	if (v < INT32_MIN) {
		return INT32_MIN;
	}
	return (int32_t)v;
}

static inline int64_t tf_clamp64(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : (v > hi ? hi : v);
}

/* Arithmetic right shift with round-half-up; GCC and Clang shift signed values arithmetically. */
static inline int64_t tf_round_shift(int64_t v, int n)
{
	return n > 0 ? (v + ((int64_t)1 << (n - 1))) >> n : v;
}

/* Elements of the model's output tensor. */
static inline uint32_t tf_model_outputs(const struct tinyfix_model_info *m)
{
	return m->n_outputs != 0U ? m->n_outputs : m->n_classes;
}

/* Stage 3, shared by both stage 1-2 paths: top class, its probability and the decision. */
static inline void tf_decide(const struct tinyfix_params *p, struct tinyfix_result *res,
			     uint16_t top)
{
	res->top_class = (int16_t)top;
	res->top_prob = res->prob[top];
	res->decision = (int16_t)top;
	if ((p->flags & TINYFIX_STAGE_THRESHOLD) != 0U &&
	    res->top_prob < p->class_threshold[top]) {
		res->decision = TINYFIX_NO_DECISION;
	}
}

/*
 * Stages 1-3 (tinyfix_scale.c or tinyfix_scale_float.c): raw (or head) output to result.
 * delta: per-class Q16.16 additions to the logits before scaling (a residual head), or NULL.
 */
void tinyfix_correct_frame(const struct tinyfix_ctx *ctx, const void *raw, const int32_t *delta,
			   struct tinyfix_result *res);

/*
 * Stage 0. A whole layer writes the replacement int8 output to out (head_rows values); a
 * residual writes the per-class Q16.16 logit additions to delta (n_classes values) instead.
 * Returns true for a whole layer.
 */
bool tinyfix_head_run(struct tinyfix_ctx *ctx, const int8_t *features, int8_t *out, int32_t *delta);

/* Autoencoders: output / input scale ratio and 1/n, prepared at init. */
void tinyfix_recon_prepare(struct tinyfix_ctx *ctx);

/* Stage 4. The timestamp was checked by the caller. */
void tinyfix_vote_step(struct tinyfix_ctx *ctx, const void *raw, int32_t time_ms,
		       struct tinyfix_result *res);
void tinyfix_vote_reset(struct tinyfix_ctx *ctx);
bool tinyfix_vote_time_ok(const struct tinyfix_ctx *ctx, int32_t time_ms);

/* Stage 5. The reset empties the window, or fills it with the seeded baseline. */
void tinyfix_anomaly_step(struct tinyfix_ctx *ctx, int32_t score, struct tinyfix_result *res);
void tinyfix_anomaly_reset(struct tinyfix_ctx *ctx);

/* Drift monitor: fold one frame's result into the running statistics. */
void tinyfix_monitor_step(struct tinyfix_ctx *ctx, const struct tinyfix_result *res);

/* Reciprocal of the input scale for quantization, as multiplier and shift. */
void tinyfix_input_prepare(struct tinyfix_ctx *ctx);

#endif /* TINYFIX_INTERNAL_H_ */
