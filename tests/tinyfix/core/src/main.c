/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TinyFix on the target: the core's stages through its public API, then the Zephyr glue
 * (devicetree defaults from app.overlay, the shared context, settings, shell).
 *
 * Test model: 4 int8 logits, scale 1/16, zero point 0, so a raw value q is the logit
 * q * 4096 in Q16.16.
 */

#include <string.h>

#include <zephyr/kernel.h>
#include <zephyr/shell/shell.h>
#include <zephyr/shell/shell_dummy.h>
#include <zephyr/sys/util.h>
#include <zephyr/ztest.h>

#include <tinyfix/tinyfix.h>
#include <tinyfix/tinyfix_zephyr.h>

#include "settings_ram.h"

#define N_CLASSES   4
#define MODEL_CRC   0x1234ABCDu /* the app.overlay node's model-crc */
#define OTHER_CRC   0x0BADF00Du
#define Q16(x)      ((int32_t)((x) * 65536))
#define RAW_TO_Q16  4096

static struct tinyfix_model_info model_a;     /* what the devicetree node was fitted for */
static struct tinyfix_model_info model_other; /* same shape, another model */
static struct tinyfix_ctx ctx;                /* core suites */
static struct tinyfix_ctx zctx;               /* the glue's active context */
static struct tinyfix_params params;
static struct tinyfix_params params2;
static struct tinyfix_result res;

static const int8_t zeros[N_CLASSES];

static void model_make(struct tinyfix_model_info *m, uint32_t crc, uint16_t n_classes)
{
	memset(m, 0, sizeof(*m));
	m->model_crc = crc;
	m->n_classes = n_classes;
	m->output_type = TINYFIX_DTYPE_INT8;
	zassert_ok(tinyfix_quant_from_float(1.0f / 16.0f, 0, &m->output_quant));
}

static void *models_setup(void)
{
	model_make(&model_a, MODEL_CRC, N_CLASSES);
	model_make(&model_other, OTHER_CRC, N_CLASSES);
	return NULL;
}

static void core_before(void *fixture)
{
	ARG_UNUSED(fixture);
	zassert_ok(tinyfix_init(&ctx, &model_a));
}

/* Identity with the changes a test makes, sealed and applied to the core context. */
static void apply(struct tinyfix_params *p)
{
	tinyfix_params_seal(p);
	zassert_ok(tinyfix_set_params(&ctx, p));
}

/* ---- Identity ------------------------------------------------------------------------- */

ZTEST_SUITE(tinyfix_identity, NULL, models_setup, core_before, NULL, NULL);

ZTEST(tinyfix_identity, test_identity_keeps_argmax_and_probabilities_sum_to_one)
{
	static const int8_t frames[][N_CLASSES] = {
		{10, -20, 30, 0},    {-128, 127, -128, -128}, {0, 0, 0, 0},
		{127, 127, -128, 5}, {-5, -6, -7, -4},        {-128, -128, -128, -127},
	};

	for (size_t i = 0; i < ARRAY_SIZE(frames); i++) {
		int argmax = 0;
		int32_t sum = 0;

		for (int c = 1; c < N_CLASSES; c++) {
			if (frames[i][c] > frames[i][argmax]) {
				argmax = c;
			}
		}
		zassert_ok(tinyfix_process(&ctx, frames[i], NULL, 0, &res));
		zassert_equal(res.top_class, argmax, "frame %zu", i);
		zassert_equal(res.decision, argmax, "frame %zu", i);
		for (int c = 0; c < N_CLASSES; c++) {
			zassert_equal(res.logit[c], frames[i][c] * RAW_TO_Q16, "frame %zu", i);
			sum += res.prob[c];
		}
		zassert_within(sum, TINYFIX_Q15_ONE, N_CLASSES, "frame %zu: sum %d", i, sum);
		zassert_equal(res.vote_class, -1, "voting is off");
		zassert_false(res.anomaly, "anomaly stage is off");
	}
}

/* ---- Scaling and thresholds ------------------------------------------------------------ */

ZTEST_SUITE(tinyfix_scale, NULL, models_setup, core_before, NULL, NULL);

ZTEST(tinyfix_scale, test_temperature_above_one_lowers_top_confidence)
{
	static const int8_t frame[N_CLASSES] = {40, 8, -16, 0};
	uint16_t base, hot, cold;

	zassert_ok(tinyfix_process(&ctx, frame, NULL, 0, &res));
	base = res.top_prob;

	zassert_ok(tinyfix_params_identity(&params, &model_a));
	params.inv_temperature = Q16(0.5); /* T = 2 */
	apply(&params);
	zassert_ok(tinyfix_process(&ctx, frame, NULL, 0, &res));
	zassert_equal(res.top_class, 0);
	hot = res.top_prob;

	params.inv_temperature = Q16(2.0); /* T = 0.5 */
	apply(&params);
	zassert_ok(tinyfix_process(&ctx, frame, NULL, 0, &res));
	zassert_equal(res.top_class, 0);
	cold = res.top_prob;

	zassert_true(hot < base && base < cold, "T=2 %u, T=1 %u, T=0.5 %u", hot, base, cold);
}

ZTEST(tinyfix_scale, test_bias_moves_the_decision_and_threshold_withholds_it)
{
	zassert_ok(tinyfix_params_identity(&params, &model_a));
	params.flags |= TINYFIX_STAGE_THRESHOLD;
	params.class_bias[2] = Q16(1.5);
	params.class_threshold[2] = TINYFIX_Q15_ONE / 2;
	apply(&params);

	/* Logits (0, 0, 1.5, 0): class 2 on top with p = 0.6 >= 0.5. */
	zassert_ok(tinyfix_process(&ctx, zeros, NULL, 0, &res));
	zassert_equal(res.top_class, 2);
	zassert_equal(res.logit[2], Q16(1.5));
	zassert_equal(res.decision, 2, "p2 = %u", res.top_prob);

	/* Logits (1, 0, 1.5, 0): class 2 still on top but p = 0.49 < 0.5. */
	static const int8_t frame[N_CLASSES] = {16, 0, 0, 0};

	zassert_ok(tinyfix_process(&ctx, frame, NULL, 0, &res));
	zassert_equal(res.top_class, 2);
	zassert_true(res.top_prob < TINYFIX_Q15_ONE / 2);
	zassert_equal(res.decision, TINYFIX_NO_DECISION);
}

/* ---- Voting ----------------------------------------------------------------------------- */

/*
 * TFLM micro_speech RecognizeCommands::ProcessLatestResults, ported line by line (class 0 is
 * "silence"), as the reference the vote stage must match frame by frame.
 */
#define RC_MAX 64

struct rc_ref {
	int32_t time[RC_MAX];
	int8_t score[RC_MAX][N_CLASSES];
	int head;
	int count;
	int prev_top;
	int64_t prev_time;
	int32_t window_ms;
	int32_t threshold;
	int32_t suppression_ms;
	int32_t min_count;
};

static void rc_init(struct rc_ref *r, int32_t window_ms, int32_t threshold,
		    int32_t suppression_ms, int32_t min_count)
{
	memset(r, 0, sizeof(*r));
	r->prev_top = 0;
	r->prev_time = INT32_MIN;
	r->window_ms = window_ms;
	r->threshold = threshold;
	r->suppression_ms = suppression_ms;
	r->min_count = min_count;
}

static void rc_process(struct rc_ref *r, const int8_t *latest, int32_t now, int *found,
		       int *score, bool *is_new)
{
	int slot = (r->head + r->count) % RC_MAX;
	int32_t average[N_CLASSES] = {0};
	int top = 0;
	int32_t top_score = 0;
	int64_t since_last;

	r->time[slot] = now;
	memcpy(r->score[slot], latest, N_CLASSES);
	r->count++;
	while (r->count > 0 && r->time[r->head] < (int64_t)now - r->window_ms) {
		r->head = (r->head + 1) % RC_MAX;
		r->count--;
	}
	if (r->count < r->min_count || now - r->time[r->head] < r->window_ms / 4) {
		*found = r->prev_top;
		*score = 0;
		*is_new = false;
		return;
	}
	for (int i = 0; i < r->count; i++) {
		for (int c = 0; c < N_CLASSES; c++) {
			average[c] += r->score[(r->head + i) % RC_MAX][c] + 128;
		}
	}
	for (int c = 0; c < N_CLASSES; c++) {
		average[c] /= r->count;
		if (average[c] > top_score) {
			top_score = average[c];
			top = c;
		}
	}
	if (r->prev_top == 0 || r->prev_time == INT32_MIN) {
		since_last = INT32_MAX;
	} else {
		since_last = now - r->prev_time;
	}
	*is_new = top_score > r->threshold && (top != r->prev_top || since_last > r->suppression_ms);
	if (*is_new) {
		r->prev_top = top;
		r->prev_time = now;
	}
	*found = top;
	*score = top_score;
}

static void vote_like_recognize_commands(int32_t window_ms, uint8_t threshold,
					 int32_t suppression_ms, uint8_t min_count)
{
	zassert_ok(tinyfix_params_identity(&params, &model_a));
	params.flags |= TINYFIX_STAGE_VOTE;
	params.class_flags[0] = TINYFIX_CLASS_BACKGROUND;
	params.vote.mode = TINYFIX_VOTE_AVERAGE;
	params.vote.source = TINYFIX_VOTE_FROM_RAW;
	params.vote.window_ms = window_ms;
	params.vote.threshold = threshold;
	params.vote.suppression_ms = suppression_ms;
	params.vote.min_count = min_count;
	apply(&params);
}

ZTEST_SUITE(tinyfix_vote, NULL, models_setup, core_before, NULL, NULL);

ZTEST(tinyfix_vote, test_detects_at_expected_frames_and_respects_suppression)
{
	/* RecognizeCommands' defaults; 10 frames of "yes" (class 2), then "no" (class 3). */
	static const int8_t yes[N_CLASSES] = {-128, -128, 127, -128};
	static const int8_t no[N_CLASSES] = {-128, -128, -128, 127};
	/* Frame 3: first with 3 frames spanning window/4. Frame 18: "no" averages 208 > 200.
	 * Frame 34: "no" again once 1500 ms of suppression have passed (t = 3400 > 1800 + 1500).
	 */
	static const struct {
		int frame;
		int cls;
	} expected[] = {{3, 2}, {18, 3}, {34, 3}};
	size_t next = 0;

	vote_like_recognize_commands(1000, 200, 1500, 3);
	for (int i = 0; i < 36; i++) {
		zassert_ok(tinyfix_process(&ctx, i < 10 ? yes : no, NULL, i * 100, &res));
		if (next < ARRAY_SIZE(expected) && i == expected[next].frame) {
			zassert_true(res.vote_new, "frame %d: no detection", i);
			zassert_true(res.vote_event, "frame %d", i);
			zassert_equal(res.vote_class, expected[next].cls, "frame %d", i);
			next++;
		} else {
			zassert_false(res.vote_new, "frame %d: unexpected detection of %d", i,
				      res.vote_class);
		}
	}
	zassert_equal(next, ARRAY_SIZE(expected));
}

ZTEST(tinyfix_vote, test_matches_recognize_commands_frame_by_frame)
{
	static struct rc_ref ref;
	uint32_t seed = 12345;
	int32_t now = 0;
	int detections = 0;

	vote_like_recognize_commands(1000, 180, 1500, 3);
	rc_init(&ref, 1000, 180, 1500, 3);
	for (int i = 0; i < 400; i++) {
		int8_t frame[N_CLASSES];
		int seg = (i / 12) % N_CLASSES;
		int found, score;
		bool is_new;

		for (int c = 0; c < N_CLASSES; c++) {
			seed = seed * 1103515245u + 12345u;
			frame[c] = (int8_t)(c == seg ? 20 + (int)((seed >> 16) % 108)
						     : -128 + (int)((seed >> 16) % 90));
		}
		seed = seed * 1103515245u + 12345u;
		now += 70 + (int32_t)((seed >> 16) % 60); /* at most 15 frames per window */

		rc_process(&ref, frame, now, &found, &score, &is_new);
		zassert_ok(tinyfix_process(&ctx, frame, NULL, now, &res));
		zassert_equal(res.vote_class, found, "frame %d", i);
		zassert_equal(res.vote_score, score, "frame %d", i);
		zassert_equal(res.vote_new, is_new, "frame %d", i);
		detections += is_new ? 1 : 0;
	}
	zassert_true(detections >= 5, "stream too quiet to compare: %d detections", detections);
}

ZTEST(tinyfix_vote, test_refuses_time_going_backwards)
{
	vote_like_recognize_commands(1000, 200, 1500, 3);
	zassert_ok(tinyfix_process(&ctx, zeros, NULL, 500, &res));
	zassert_equal(tinyfix_process(&ctx, zeros, NULL, 499, &res), TINYFIX_ERR_TIME);
	zassert_ok(tinyfix_process(&ctx, zeros, NULL, 500, &res));
}

/* ---- Adaptive threshold ------------------------------------------------------------------ */

static void anomaly_on_class1(void)
{
	zassert_ok(tinyfix_params_identity(&params, &model_a));
	params.flags |= TINYFIX_STAGE_ANOMALY;
	params.anomaly.mode = TINYFIX_ANOMALY_HIGH;
	params.anomaly.class_index = 1;
	params.anomaly.window = 16;
	params.anomaly.warmup = 8;
	params.anomaly.alpha_q8 = 3 * 256;
	apply(&params);
}

static bool anomaly_frame(int8_t score_raw)
{
	int8_t frame[N_CLASSES] = {0, score_raw, 0, 0};

	zassert_ok(tinyfix_process(&ctx, frame, NULL, 0, &res));
	return res.anomaly;
}

ZTEST_SUITE(tinyfix_anomaly, NULL, models_setup, core_before, NULL, NULL);

ZTEST(tinyfix_anomaly, test_flags_spike_after_warmup_and_keeps_baseline)
{
	anomaly_on_class1();
	for (int i = 0; i < 10; i++) {
		zassert_false(anomaly_frame((int8_t)(15 + i % 3)), "sample %d", i); /* ~1.0 */
	}
	zassert_true(anomaly_frame(40), "2.5 is far above 1.0 +/- 3 sigma");
	zassert_within(res.anomaly_mean, Q16(1.0), Q16(0.1));
	zassert_true(res.anomaly_sigma > 0 && res.anomaly_sigma < Q16(0.1));
	/* The spike stayed out of the window, so the next normal sample is normal. */
	zassert_false(anomaly_frame(16));
	zassert_true(anomaly_frame(40), "a second spike is flagged as well");
}

ZTEST(tinyfix_anomaly, test_no_decision_during_warmup)
{
	anomaly_on_class1();
	zassert_false(anomaly_frame(16));
	zassert_false(anomaly_frame(15));
	zassert_false(anomaly_frame(100), "only 2 of 8 warm-up samples seen");
	zassert_equal(res.anomaly_mean, 0);
	zassert_equal(res.anomaly_sigma, 0);
}

/* ---- Drift monitor ------------------------------------------------------------------------ */

ZTEST_SUITE(tinyfix_monitor, NULL, models_setup, core_before, NULL, NULL);

/* Frames whose top class cycles through `classes` of the 4, with a clear winner. */
static void monitor_frames(int n, int classes)
{
	for (int i = 0; i < n; i++) {
		int8_t raw[N_CLASSES] = {-40, -40, -40, -40};

		raw[i % classes] = 40;
		zassert_ok(tinyfix_process(&ctx, raw, NULL, i, &res));
	}
}

ZTEST(tinyfix_monitor, test_advises_once_when_the_class_mix_moves)
{
	struct tinyfix_drift drift;

	zassert_ok(tinyfix_params_identity(&params, &model_a));
	params.flags |= TINYFIX_STAGE_MONITOR;
	params.monitor.rate_shift = 4;
	params.monitor.min_frames = 32;
	params.monitor.prior_tv = 8192; /* 0.25 */
	for (int c = 0; c < N_CLASSES; c++) {
		params.monitor.ref_prior[c] = 8192; /* calibrated on an even mix */
	}
	apply(&params);

	monitor_frames(128, 4);
	zassert_ok(tinyfix_drift_status(&ctx, &drift));
	zassert_equal(drift.flags, 0, "an even mix matches the reference");
	zassert_equal(drift.frames, 128);

	monitor_frames(128, 1); /* now only class 0 */
	zassert_ok(tinyfix_drift_status(&ctx, &drift));
	zassert_true(drift.prior_tv > 8192);
	zassert_equal(drift.flags, TINYFIX_DRIFT_ADVISED | TINYFIX_DRIFT_PRIOR);
	zassert_true(drift.newly_advised);
	zassert_ok(tinyfix_drift_status(&ctx, &drift));
	zassert_false(drift.newly_advised, "advised once per parameter set");
}

ZTEST(tinyfix_monitor, test_status_refused_when_the_stage_is_off)
{
	struct tinyfix_drift drift;

	zassert_equal(tinyfix_drift_status(&ctx, &drift), TINYFIX_ERR_UNSUPPORTED);
}

/* ---- Parameter sets ----------------------------------------------------------------------- */

ZTEST_SUITE(tinyfix_params, NULL, models_setup, core_before, NULL, NULL);

/* The good set puts class 1 on top of an all-zero frame with logit 2.0. */
static void assert_good_set_active(const struct tinyfix_params *good, const char *what)
{
	zassert_equal(ctx.params.crc, good->crc, "%s replaced the set", what);
	zassert_ok(tinyfix_process(&ctx, zeros, NULL, 0, &res));
	zassert_equal(res.top_class, 1, "%s", what);
	zassert_equal(res.logit[1], Q16(2.0), "%s", what);
}

ZTEST(tinyfix_params, test_rejected_sets_return_their_error_and_keep_previous)
{
	static struct tinyfix_params good;

	zassert_ok(tinyfix_params_identity(&good, &model_a));
	good.class_bias[1] = Q16(2.0);
	apply(&good);
	assert_good_set_active(&good, "good");

	params = good;
	params.model_crc = OTHER_CRC;
	tinyfix_params_seal(&params);
	zassert_equal(tinyfix_set_params(&ctx, &params), TINYFIX_ERR_MODEL);
	assert_good_set_active(&good, "wrong model");

	params = good;
	params.class_bias[0] = Q16(1.0); /* changed after sealing */
	zassert_equal(tinyfix_set_params(&ctx, &params), TINYFIX_ERR_CRC);
	assert_good_set_active(&good, "bad crc");

	params = good;
	params.inv_temperature = 0;
	tinyfix_params_seal(&params);
	zassert_equal(tinyfix_set_params(&ctx, &params), TINYFIX_ERR_RANGE);
	assert_good_set_active(&good, "inv_temperature 0");

	params = good;
	params.class_threshold[2] = TINYFIX_Q15_ONE + 1;
	tinyfix_params_seal(&params);
	zassert_equal(tinyfix_set_params(&ctx, &params), TINYFIX_ERR_RANGE);
	assert_good_set_active(&good, "threshold above 1.0");

	params = good;
	params.format_version = TINYFIX_PARAMS_VERSION + 1;
	tinyfix_params_seal(&params);
	zassert_equal(tinyfix_set_params(&ctx, &params), TINYFIX_ERR_VERSION);
	assert_good_set_active(&good, "version");

	params = good;
	params.n_classes = N_CLASSES - 1;
	tinyfix_params_seal(&params);
	zassert_equal(tinyfix_set_params(&ctx, &params), TINYFIX_ERR_CLASSES);
	assert_good_set_active(&good, "class count");

	params = good;
	params.flags |= TINYFIX_STAGE_HEAD; /* a head without features */
	tinyfix_params_seal(&params);
	zassert_equal(tinyfix_set_params(&ctx, &params), TINYFIX_ERR_UNSUPPORTED);
	assert_good_set_active(&good, "head without features");
}

ZTEST(tinyfix_params, test_encode_decode_round_trip)
{
	static uint8_t buf[TINYFIX_ZEPHYR_PARAMS_BLOB_MAX];
	struct tinyfix_model_info m = model_a;
	size_t written = 0;

	m.n_channels = 2;
	m.input_quant = m.output_quant;
	zassert_ok(tinyfix_params_identity(&params, &m));
	params.flags = TINYFIX_STAGE_SCALE | TINYFIX_STAGE_THRESHOLD | TINYFIX_STAGE_VOTE |
		       TINYFIX_STAGE_ANOMALY | TINYFIX_STAGE_INPUT;
	params.output_kind = TINYFIX_OUTPUT_PROBS;
	params.inv_temperature = Q16(0.75);
	params.class_scale[2] = 70000;
	params.class_bias[3] = -123456;
	params.class_threshold[1] = 20000;
	params.class_flags[0] = TINYFIX_CLASS_BACKGROUND;
	params.vote.mode = TINYFIX_VOTE_MAJORITY;
	params.vote.threshold = 150;
	params.vote.window_ms = 750;
	params.anomaly.mode = TINYFIX_ANOMALY_BOTH;
	params.anomaly.class_index = 3;
	params.anomaly.window = 12;
	params.anomaly.warmup = 5;
	params.input.fill_mode = TINYFIX_FILL_MEAN;
	params.input.clip_k_q8 = 3 * 256;
	params.input.offset[0] = Q16(-3.0);
	params.input.gain[1] = Q16(2.0);
	params.adapt.clamp = Q16(1.0);
	tinyfix_params_seal(&params);
	zassert_ok(tinyfix_params_validate(&params, &m));

	zassert_ok(tinyfix_params_encode(&params, buf, sizeof(buf), &written));
	zassert_equal(written, tinyfix_params_encoded_size(N_CLASSES, 2, 0, 0, 0));
	zassert_ok(tinyfix_params_decode(buf, written, &params2));
	zassert_mem_equal(&params2, &params, sizeof(params));
	zassert_ok(tinyfix_params_validate(&params2, &m));

	zassert_equal(tinyfix_params_decode(buf, written - 1U, &params2), TINYFIX_ERR_FORMAT);
	buf[10] ^= 0x40; /* inside model_crc: decodes, but the set's CRC no longer matches */
	zassert_ok(tinyfix_params_decode(buf, written, &params2));
	zassert_equal(tinyfix_params_validate(&params2, &m), TINYFIX_ERR_CRC);
}

ZTEST(tinyfix_params, test_blob_bound_matches_largest_encoding)
{
	/* The largest: a residual reading every feature (the whole layer plus its bitmap). */
	const uint16_t rows = TINYFIX_MAX_FEATURES > 0 ? TINYFIX_MAX_CLASSES : 0;

	zassert_equal(tinyfix_params_encoded_size(TINYFIX_MAX_CLASSES, TINYFIX_MAX_CHANNELS,
						  TINYFIX_MAX_FEATURES, rows, TINYFIX_MAX_FEATURES),
		      TINYFIX_ZEPHYR_PARAMS_BLOB_MAX);
}

/* ---- Last-layer re-fit (only in builds with the head stage) ------------------------------- */

#if TINYFIX_MAX_FEATURES > 0

#define N_FEATURES 4

ZTEST_SUITE(tinyfix_head, NULL, models_setup, NULL, NULL, NULL);

/* A context for model m and an identity set with an empty whole-layer head to fill in. */
static void start_head_params(const struct tinyfix_model_info *m)
{
	zassert_ok(tinyfix_init(&ctx, m));
	zassert_ok(tinyfix_params_identity(&params, m));
	params.flags |= TINYFIX_STAGE_HEAD;
	params.n_features = N_FEATURES;
	params.head_rows = N_CLASSES;
}

ZTEST(tinyfix_head, test_head_replaces_logits_from_features)
{
	static const int8_t raw[N_CLASSES] = {100, 0, 0, 0};
	static const int8_t features[N_FEATURES] = {0, 0, 0, 100};
	struct tinyfix_model_info m = model_a;
	static uint8_t buf[TINYFIX_ZEPHYR_PARAMS_BLOB_MAX];
	size_t written;

	m.n_features = N_FEATURES;
	start_head_params(&m);
	for (int c = 0; c < N_CLASSES; c++) {
		params.head.multiplier[c] = 1 << 30; /* 0.5 */
		params.head.shift[c] = 0;
	}
	params.head.bias[1] = -7;
	for (int c = 0; c < N_CLASSES; c++) {
		params.head.weights[c * N_FEATURES + c] = 127;
	}
	params.head.weights[1] = -127;
	tinyfix_params_seal(&params);
	zassert_ok(tinyfix_set_params(&ctx, &params));

	/* Class 3 gets 127 * 100 * 0.5, saturated to 127; the raw output says class 0. */
	zassert_ok(tinyfix_process(&ctx, raw, features, 0, &res));
	zassert_equal(res.top_class, 3);
	zassert_equal(res.logit[3], 127 * RAW_TO_Q16);
	zassert_ok(tinyfix_process(&ctx, raw, NULL, 0, &res));
	zassert_equal(res.top_class, 0, "no features: the head is skipped");

	/* The head travels in the blob, negative weights and bias included. */
	zassert_ok(tinyfix_params_encode(&params, buf, sizeof(buf), &written));
	zassert_equal(written, tinyfix_params_encoded_size(N_CLASSES, 0, N_FEATURES, N_CLASSES, 0));
	zassert_ok(tinyfix_params_decode(buf, written, &params2));
	zassert_mem_equal(&params2, &params, sizeof(params));
	zassert_ok(tinyfix_params_validate(&params2, &m));
}

ZTEST(tinyfix_head, test_a_residual_adds_its_columns_to_the_models_logits)
{
	static const int8_t raw[N_CLASSES] = {100, 0, 0, 0};
	static const int8_t features[N_FEATURES] = {0, 0, 0, 100};
	struct tinyfix_model_info m = model_a;

	m.n_features = N_FEATURES;
	start_head_params(&m);
	params.head_columns = 1;
	params.head.columns[0] = 1U << 3; /* feature 3 only */
	for (int c = 0; c < N_CLASSES; c++) {
		/* 2^30 * 2^(1 - 31): one Q16.16 step per accumulator unit */
		params.head.multiplier[c] = 1 << 30;
		params.head.shift[c] = 1;
	}
	params.head.weights[2] = 1; /* class 2 gains 1 * (100 - zero point) */
	tinyfix_params_seal(&params);
	zassert_ok(tinyfix_set_params(&ctx, &params));
	zassert_ok(tinyfix_process(&ctx, raw, features, 0, &res));
	/* The model's own logits stay; class 2's grows by 100 - feature zero point. */
	zassert_equal(res.logit[0], 100 * RAW_TO_Q16);
	zassert_equal(res.logit[2], 100 - m.feature_zero_point);
}

#endif /* TINYFIX_MAX_FEATURES > 0 */

/* ---- Devicetree defaults ------------------------------------------------------------------ */

static void glue_before(void *fixture)
{
	ARG_UNUSED(fixture);
	settings_ram_clear();
	zassert_ok(tinyfix_zephyr_init(&zctx, &model_a));
}

ZTEST_SUITE(tinyfix_dt, NULL, models_setup, glue_before, NULL, NULL);

ZTEST(tinyfix_dt, test_node_values_arrive_including_negative_bias)
{
	zassert_ok(tinyfix_zephyr_default_params(&params, &model_a));
	zassert_equal(params.model_crc, MODEL_CRC);
	zassert_equal(params.flags, TINYFIX_STAGE_SCALE | TINYFIX_STAGE_THRESHOLD);
	zassert_equal(params.inv_temperature, Q16(0.5));
	zassert_equal(params.class_scale[0], Q16(1.0));
	zassert_equal(params.class_scale[3], Q16(2.0));
	zassert_equal(params.class_bias[0], 0);
	zassert_equal(params.class_bias[1], Q16(-1.0), "got %d", params.class_bias[1]);
	zassert_equal(params.class_bias[2], Q16(0.5));
	zassert_equal(params.class_threshold[0], 0);
	zassert_equal(params.class_threshold[1], TINYFIX_Q15_ONE / 2);
	zassert_equal(params.class_flags[0], TINYFIX_CLASS_BACKGROUND);
	zassert_equal(params.class_flags[1], 0);
	zassert_equal(params.vote.threshold, 180);
	/* Absent properties keep the identity values. */
	zassert_equal(params.vote.min_count, 3);
	zassert_equal(params.vote.window_ms, 1000);
	zassert_equal(params.vote.suppression_ms, 1500);
	zassert_equal(params.anomaly.window, 8);
	zassert_equal(params.anomaly.warmup, 8);
	zassert_equal(params.anomaly.alpha_q8, 512);
	zassert_equal(params.adapt.learning_rate, TINYFIX_Q16_ONE / 64);
	zassert_equal(params.n_channels, 0);
	zassert_equal(params.n_features, 0);
	zassert_ok(tinyfix_params_validate(&params, &model_a), "the set is sealed and valid");
}

ZTEST(tinyfix_dt, test_node_for_another_model_falls_back_to_identity)
{
	zassert_equal(tinyfix_zephyr_default_params(&params, &model_other), TINYFIX_ERR_MODEL);
	zassert_ok(tinyfix_params_identity(&params2, &model_other));
	zassert_mem_equal(&params, &params2, sizeof(params));
}

ZTEST(tinyfix_dt, test_node_with_other_class_count_falls_back_to_identity)
{
	struct tinyfix_model_info m5 = model_a;

	m5.n_classes = N_CLASSES + 1;
	zassert_equal(tinyfix_zephyr_default_params(&params, &m5), TINYFIX_ERR_CLASSES);
	zassert_ok(tinyfix_params_identity(&params2, &m5));
	zassert_mem_equal(&params, &params2, sizeof(params));
}

ZTEST(tinyfix_dt, test_init_applies_node_to_active_context)
{
	/* Logits = biases (0, -1, 0.5, 0): class 2 on top with p = 0.41 < its 0.5 threshold. */
	zassert_ok(tinyfix_zephyr_process(zeros, NULL, 0, &res));
	zassert_equal(res.logit[1], Q16(-1.0));
	zassert_equal(res.top_class, 2);
	zassert_equal(res.decision, TINYFIX_NO_DECISION, "p = %u", res.top_prob);
}

/* ---- The glue: shared context, settings, shell ------------------------------------------- */

static uint32_t active_crc(void)
{
	zassert_ok(tinyfix_zephyr_get_params(&params2));
	return params2.crc;
}

static void *glue_setup(void)
{
	const struct shell *sh = shell_backend_dummy_get_ptr();

	models_setup();
	WAIT_FOR(shell_ready(sh), 20000, k_msleep(1));
	zassert_true(shell_ready(sh), "dummy shell backend not ready");
	return NULL;
}

ZTEST_SUITE(tinyfix_zephyr, NULL, glue_setup, glue_before, NULL, NULL);

ZTEST(tinyfix_zephyr, test_set_params_rejects_wrong_model_and_keeps_active)
{
	uint32_t before = active_crc();

	zassert_ok(tinyfix_zephyr_get_params(&params));
	params.model_crc = OTHER_CRC;
	tinyfix_params_seal(&params);
	zassert_equal(tinyfix_zephyr_set_params(&params), TINYFIX_ERR_MODEL);
	zassert_equal(active_crc(), before);

	params.model_crc = MODEL_CRC;
	params.class_bias[0] = Q16(5.0); /* not resealed */
	zassert_equal(tinyfix_zephyr_set_params(&params), TINYFIX_ERR_CRC);
	zassert_equal(active_crc(), before);
}

ZTEST(tinyfix_zephyr, test_saved_set_is_restored_at_init)
{
	const char *key;
	size_t len;

	zassert_ok(tinyfix_zephyr_get_params(&params));
	params.class_bias[3] = Q16(3.0);
	tinyfix_params_seal(&params);
	zassert_ok(tinyfix_zephyr_params_save(&params));
	key = settings_ram_name();
	zassert_not_null(key);
	zassert_str_equal(key, "tinyfix/params");
	zassert_not_null(settings_ram_value(&len));
	zassert_equal(len, tinyfix_params_encoded_size(N_CLASSES, 0, 0, 0, 0));
	zassert_not_equal(active_crc(), params.crc, "saving does not apply");

	zassert_ok(tinyfix_zephyr_init(&zctx, &model_a));
	zassert_equal(active_crc(), params.crc, "the stored set wins over the devicetree");
	zassert_ok(tinyfix_zephyr_params_load());
	zassert_ok(tinyfix_zephyr_process(zeros, NULL, 0, &res));
	zassert_equal(res.top_class, 3);
}

ZTEST(tinyfix_zephyr, test_corrupt_stored_set_is_rejected_and_active_kept)
{
	uint32_t before = active_crc();
	uint8_t *blob;
	size_t len;

	zassert_ok(tinyfix_zephyr_get_params(&params));
	params.class_bias[3] = Q16(3.0);
	tinyfix_params_seal(&params);
	zassert_ok(tinyfix_zephyr_params_save(&params));
	blob = settings_ram_value(&len);
	zassert_not_null(blob);
	blob[len - 8U] ^= 0x01; /* in the adaptation clamp, before the CRC */

	zassert_equal(tinyfix_zephyr_params_load(), TINYFIX_ERR_CRC);
	zassert_equal(active_crc(), before);

	blob[0] ^= 0xFF; /* magic */
	zassert_equal(tinyfix_zephyr_params_load(), TINYFIX_ERR_FORMAT);
	zassert_equal(active_crc(), before);
}

ZTEST(tinyfix_zephyr, test_load_without_stored_set_reports_enoent)
{
	zassert_equal(tinyfix_zephyr_params_load(), TINYFIX_ZEPHYR_ERR_FROM_ERRNO(-ENOENT));
}

ZTEST(tinyfix_zephyr, test_stored_set_for_another_model_is_ignored_at_init)
{
	zassert_ok(tinyfix_zephyr_get_params(&params));
	zassert_ok(tinyfix_zephyr_params_save(&params));
	zassert_equal(tinyfix_zephyr_params_save(NULL), TINYFIX_ERR_ARG);

	/* Neither the node nor the stored set fits this model: identity. */
	zassert_ok(tinyfix_zephyr_init(&zctx, &model_other));
	zassert_ok(tinyfix_params_identity(&params, &model_other));
	zassert_equal(active_crc(), params.crc);
}

ZTEST(tinyfix_zephyr, test_adapt_label_moves_bias_toward_label)
{
	int32_t before;

	zassert_ok(tinyfix_zephyr_process(zeros, NULL, 0, &res));
	zassert_equal(tinyfix_zephyr_adapt_label(&res, 0), TINYFIX_ERR_UNSUPPORTED,
		      "the set does not enable the ADAPT stage");

	zassert_ok(tinyfix_zephyr_get_params(&params));
	params.flags |= TINYFIX_STAGE_ADAPT;
	tinyfix_params_seal(&params);
	zassert_ok(tinyfix_zephyr_set_params(&params));
	zassert_ok(tinyfix_zephyr_process(zeros, NULL, 0, &res));
	before = res.logit[0];
	for (int i = 0; i < 50; i++) {
		zassert_ok(tinyfix_zephyr_adapt_label(&res, 0));
		zassert_ok(tinyfix_zephyr_process(zeros, NULL, 0, &res));
	}
	zassert_true(res.logit[0] > before, "class 0 logit %d -> %d", before, res.logit[0]);
	zassert_true(res.logit[0] - before <= params.adapt.clamp, "bounded by the clamp");
}

static int shell_run(const char *cmd, const char **out)
{
	const struct shell *sh = shell_backend_dummy_get_ptr();
	size_t len;
	int ret;

	shell_backend_dummy_clear_output(sh);
	ret = shell_execute_cmd(sh, cmd);
	*out = shell_backend_dummy_get_output(sh, &len);
	return ret;
}

ZTEST(tinyfix_zephyr, test_shell_show_prints_readable_units)
{
	const char *out;

	zassert_ok(shell_run("tinyfix show", &out));
	zassert_not_null(strstr(out, "0x1234abcd"), "%s", out);
	zassert_not_null(strstr(out, "-1.0000"), "negative bias: %s", out);
	zassert_not_null(strstr(out, "background"), "%s", out);
	zassert_not_null(strstr(out, "inv-temperature 0.5000"), "%s", out);
}

ZTEST(tinyfix_zephyr, test_shell_set_applies_resealed_set)
{
	const char *out;

	zassert_ok(shell_run("tinyfix set threshold 1 20000", &out), "%s", out);
	zassert_ok(tinyfix_zephyr_get_params(&params));
	zassert_equal(params.class_threshold[1], 20000);
	zassert_ok(tinyfix_params_validate(&params, &model_a));

	zassert_ok(shell_run("tinyfix set bias 2 -32768", &out), "%s", out);
	zassert_ok(shell_run("tinyfix set vote-window-ms 750", &out), "%s", out);
	zassert_ok(tinyfix_zephyr_get_params(&params));
	zassert_equal(params.class_bias[2], Q16(-0.5));
	zassert_equal(params.vote.window_ms, 750);
}

ZTEST(tinyfix_zephyr, test_shell_set_out_of_range_is_rejected_and_active_kept)
{
	uint32_t before = active_crc();
	const char *out;

	zassert_not_equal(shell_run("tinyfix set inv-temperature 0", &out), 0);
	zassert_not_null(strstr(out, "rejected"), "%s", out);
	zassert_equal(active_crc(), before);

	zassert_not_equal(shell_run("tinyfix set threshold 9 100", &out), 0, "no class 9");
	zassert_not_equal(shell_run("tinyfix set vote-threshold 256", &out), 0, "u8 field");
	zassert_not_equal(shell_run("tinyfix set nonsense 1", &out), 0);
	zassert_equal(active_crc(), before);
}

ZTEST(tinyfix_zephyr, test_shell_save_stores_active_set)
{
	const char *out;
	uint8_t *blob;
	size_t len;

	zassert_is_null(settings_ram_value(&len));
	zassert_ok(shell_run("tinyfix save", &out), "%s", out);
	blob = settings_ram_value(&len);
	zassert_not_null(blob);
	zassert_ok(tinyfix_params_decode(blob, len, &params));
	zassert_equal(params.crc, active_crc());
}
