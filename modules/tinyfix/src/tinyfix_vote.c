/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Stage 4: multi-frame voting. With source RAW, mode AVERAGE and class 0 as the only
 * background class it reproduces TFLM micro_speech's RecognizeCommands frame by frame
 * (window pruning, minimum count, the window/4 duration rule, integer average, strict top,
 * threshold and suppression). Differences, by design: a frame older than the previous one is
 * refused (RecognizeCommands compares with the oldest), and when the ring is full the oldest
 * frame is dropped (RecognizeCommands drops the newest).
 */

#include "tinyfix_internal.h"

#if TINYFIX_WITH_VOTE

static int16_t first_background(const struct tinyfix_params *p)
{
	uint16_t c;

	for (c = 0; c < p->n_classes; c++) {
		if ((p->class_flags[c] & TINYFIX_CLASS_BACKGROUND) != 0U) {
			return (int16_t)c;
		}
	}
	return -1;
}

void tinyfix_vote_reset(struct tinyfix_ctx *ctx)
{
	ctx->vote_head = 0;
	ctx->vote_count = 0;
	/* RecognizeCommands starts with "silence" on top and no detection time. */
	ctx->vote_prev_top = first_background(&ctx->params);
	ctx->vote_prev_valid = false;
	ctx->vote_prev_time = 0;
}

static uint8_t slot(const struct tinyfix_ctx *ctx, uint8_t age_from_oldest)
{
	return (uint8_t)((ctx->vote_head + age_from_oldest) % TINYFIX_MAX_VOTE_FRAMES);
}

bool tinyfix_vote_time_ok(const struct tinyfix_ctx *ctx, int32_t time_ms)
{
	if (ctx->vote_count == 0U) {
		return true;
	}
	return time_ms >= ctx->vote_time[slot(ctx, (uint8_t)(ctx->vote_count - 1U))];
}

/* Score8 of class c for this frame. */
static uint8_t frame_score(const struct tinyfix_ctx *ctx, const void *raw,
			   const struct tinyfix_result *res, uint16_t c)
{
	if (ctx->params.vote.source == TINYFIX_VOTE_FROM_RAW) {
		return (uint8_t)(((const int8_t *)raw)[c] + 128);
	}
	uint32_t s = ((uint32_t)res->prob[c] + 64U) >> 7;

	return (uint8_t)(s > 255U ? 255U : s);
}

void tinyfix_vote_step(struct tinyfix_ctx *ctx, const void *raw, int32_t time_ms,
		       struct tinyfix_result *res)
{
	const struct tinyfix_params *p = &ctx->params;
	const struct tinyfix_vote_params *v = &p->vote;
	uint32_t sum[TINYFIX_MAX_CLASSES] = {0};
	uint8_t *frame;
	uint16_t c, top = 0;
	uint32_t best = 0;
	uint8_t i, n;
	int64_t since_last;

	/* Push, dropping the oldest when full. */
	if (ctx->vote_count == TINYFIX_MAX_VOTE_FRAMES) {
		ctx->vote_head = slot(ctx, 1);
		ctx->vote_count--;
	}
	i = slot(ctx, ctx->vote_count);
	ctx->vote_count++;
	ctx->vote_time[i] = time_ms;
	frame = ctx->vote_score[i];
	for (c = 0; c < p->n_classes; c++) {
		frame[c] = frame_score(ctx, raw, res, c);
	}
	if (v->mode == TINYFIX_VOTE_MAJORITY) {
		/* One vote for the frame's top class (strict, lowest index on ties). */
		uint8_t hi = frame[0];
		uint16_t arg = 0;

		for (c = 1; c < p->n_classes; c++) {
			if (frame[c] > hi) {
				hi = frame[c];
				arg = c;
			}
		}
		for (c = 0; c < p->n_classes; c++) {
			frame[c] = c == arg ? 1U : 0U;
		}
	}

	/* Prune frames older than the window. */
	while (ctx->vote_count > 0U &&
	       (int64_t)ctx->vote_time[ctx->vote_head] < (int64_t)time_ms - v->window_ms) {
		ctx->vote_head = slot(ctx, 1);
		ctx->vote_count--;
	}
	n = ctx->vote_count;
	res->vote_class = ctx->vote_prev_top;
	res->vote_score = 0;
	if (n < v->min_count ||
	    (int64_t)time_ms - ctx->vote_time[ctx->vote_head] < v->window_ms / 4) {
		return;
	}

	for (i = 0; i < n; i++) {
		frame = ctx->vote_score[slot(ctx, i)];
		for (c = 0; c < p->n_classes; c++) {
			sum[c] += frame[c];
		}
	}
	for (c = 0; c < p->n_classes; c++) {
		uint32_t s = v->mode == TINYFIX_VOTE_MAJORITY ? (sum[c] * 256U) / n : sum[c] / n;

		if (s > 255U) {
			s = 255U;
		}
		if (s > best) {
			best = s;
			top = c;
		}
	}

	if (ctx->vote_prev_top < 0 || !ctx->vote_prev_valid ||
	    (p->class_flags[ctx->vote_prev_top] & TINYFIX_CLASS_BACKGROUND) != 0U) {
		since_last = INT64_MAX;
	} else {
		since_last = (int64_t)time_ms - ctx->vote_prev_time;
	}
	if (best > v->threshold &&
	    ((int16_t)top != ctx->vote_prev_top || since_last > v->suppression_ms)) {
		ctx->vote_prev_top = (int16_t)top;
		ctx->vote_prev_time = time_ms;
		ctx->vote_prev_valid = true;
		res->vote_new = true;
		res->vote_event = (p->class_flags[top] & TINYFIX_CLASS_BACKGROUND) == 0U;
	}
	res->vote_class = (int16_t)top;
	res->vote_score = (uint8_t)best;
}

#endif /* TINYFIX_WITH_VOTE */
