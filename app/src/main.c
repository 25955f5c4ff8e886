/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TinyFix demo application: sensor (or replay) window -> tinyfix input quantization ->
 * TFLM Invoke() -> tinyfix_process() -> application logic (log, LED). The calibration link
 * runs in the same thread, between windows, so the interpreter and the tinyfix context
 * never have two users at once; while the host talks, local inference pauses.
 */

#include <errno.h>
#include <string.h>

#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <zephyr/sys/printk.h>

#include <app_version.h>
#include <tinyfix/tinyfix.h>
#include <tinyfix/tinyfix_zephyr.h>

#include "app_link.h"
#include "cycles.h"
#include "decision.h"
#include "input.h"
#include "model_runner.h"
#if defined(CONFIG_APP_INPUT_REPLAY)
#include "replay_check.h"
#endif

LOG_MODULE_REGISTER(app, CONFIG_APP_LOG_LEVEL);

/* The one context: the glue makes it the active one for the link and the shell. */
static struct tinyfix_ctx fix;
static struct tinyfix_model_info fix_model;
/* Identity set for this model, to tell whether the active set corrects anything. */
static struct tinyfix_params identity_params;
static K_SEM_DEFINE(wake, 0, 1);
/* A window is 768 bytes: static rather than on the main stack. */
static struct input_window window;

/* From the UART ISR, the input provider's timer or its sampling thread. */
static void wake_app(void)
{
	k_sem_give(&wake);
}

static int model_info_from(const struct model_desc *m, struct tinyfix_model_info *info)
{
	int err;

	memset(info, 0, sizeof(*info));
	info->model_crc = m->crc;
	info->n_classes = (uint16_t)m->output.count;
	info->output_type = TINYFIX_DTYPE_INT8;
	info->n_channels = INPUT_CHANNELS;
	err = tinyfix_quant_from_float(m->output.scale, m->output.zero_point,
				       &info->output_quant);
	if (err == TINYFIX_OK) {
		err = tinyfix_quant_from_float(m->input.scale, m->input.zero_point,
					       &info->input_quant);
	}
	if (err != TINYFIX_OK) {
		return err;
	}
	/* The runner reports features only when the core was sized for them. */
	if (m->feature.dtype != 0U) {
		info->n_features = (uint16_t)m->feature.count;
		info->feature_zero_point = m->feature.zero_point;
	}
	return TINYFIX_OK;
}

static uint32_t active_params_crc(void)
{
	struct tinyfix_ctx *ctx = tinyfix_zephyr_lock();
	uint32_t crc = 0;

	if (ctx != NULL) {
		crc = ctx->params.crc;
		tinyfix_zephyr_unlock();
	}
	return crc;
}

/* One local window through the whole pipeline. */
static void classify(const struct input_window *w)
{
	static int8_t input[INPUT_FRAMES * INPUT_CHANNELS];
	static int8_t raw[DECISION_N_CLASSES];
	static int8_t features[TINYFIX_MAX_FEATURES > 0 ? TINYFIX_MAX_FEATURES : 1];
	/* NULL when the model has no features the core could use (see model_info_from()). */
	int8_t *feat = fix_model.n_features > 0U ? features : NULL;
	struct tinyfix_result res;
	struct tinyfix_ctx *ctx;
	uint32_t cycles_invoke = 0;
	uint32_t cycles_fix;
	uint32_t start;
	bool voted;
	int err;

	ctx = tinyfix_zephyr_lock();
	if (ctx == NULL) {
		return;
	}
	err = tinyfix_input_correct(ctx, w->samples, INPUT_FRAMES, input);
	tinyfix_zephyr_unlock();
	if (err != TINYFIX_OK) {
		LOG_ERR("input correction failed: %s (%d)", tinyfix_strerror(err), err);
		return;
	}

	err = model_run(input, raw, feat, &cycles_invoke);
	if (err != 0) {
		return; /* logged by the runner */
	}

	ctx = tinyfix_zephyr_lock();
	if (ctx == NULL) {
		return;
	}
	start = app_cycles();
	err = tinyfix_process(ctx, raw, feat, (int32_t)(k_uptime_get_32() & INT32_MAX), &res);
	cycles_fix = app_cycles() - start;
	/* As the link's INFER does: the event is the vote's when the set votes. */
	voted = (ctx->params.flags & TINYFIX_STAGE_VOTE) != 0U;
	if (err == TINYFIX_ERR_TIME) {
		/* Uptime wrapped after 24.8 days: the voting window starts afresh. */
		tinyfix_reset_stream(ctx);
		err = tinyfix_process(ctx, raw, feat, (int32_t)(k_uptime_get_32() & INT32_MAX),
				      &res);
	}
	tinyfix_zephyr_unlock();
	if (err != TINYFIX_OK) {
		LOG_ERR("tinyfix_process failed: %s (%d)", tinyfix_strerror(err), err);
		return;
	}

#if defined(CONFIG_APP_INPUT_REPLAY)
	replay_check_window(w->index, input, raw, feat, &res, cycles_invoke, cycles_fix);
#endif
	decision_apply(&res, voted, w->label);
}

int main(void)
{
	const struct model_desc *m;
	uint32_t params_crc;
	int err;

	printk("TinyFix app %s on %s\n", APP_VERSION_STRING, CONFIG_BOARD_TARGET);
	app_cycles_init();

	err = model_init();
	if (err != 0) {
		LOG_ERR("model not loaded (%d); stopping", err);
		return 0;
	}
	m = model_desc();
	printk("model: crc 0x%08x, input [%u %u %u] int8, output [%u %u] int8, features %u (%s)\n",
	       m->crc, m->input.dims[0], m->input.dims[1], m->input.dims[2], m->output.dims[0],
	       m->output.dims[1], (unsigned int)m->feature.count, m->feature_mode);
	printk("model: arena used %u of %u bytes\n", (unsigned int)m->arena_used,
	       (unsigned int)m->arena_size);

	err = model_info_from(m, &fix_model);
	if (err == TINYFIX_OK) {
		err = tinyfix_params_identity(&identity_params, &fix_model);
	}
	if (err == TINYFIX_OK) {
		err = tinyfix_zephyr_init(&fix, &fix_model);
	}
	if (err != TINYFIX_OK) {
		LOG_ERR("tinyfix not started: %s (%d); stopping", tinyfix_strerror(err), err);
		return 0;
	}
	params_crc = active_params_crc();
	printk("tinyfix: parameters 0x%08x (%s)\n", params_crc,
	       params_crc == identity_params.crc ? "identity" : "corrected");

	(void)decision_init(); /* without an LED the decisions are still logged */

#if defined(CONFIG_APP_LINK)
	(void)app_link_init(&fix, &fix_model, wake_app); /* logged; local inference goes on */
#endif

	err = input_init(wake_app);
	if (err != 0) {
		LOG_ERR("input %s not started (%d)", input_name(), err);
	} else {
		printk("input: %s, a window every %d ms\n", input_name(), CONFIG_APP_HOP_MS);
	}
#if defined(CONFIG_APP_INPUT_REPLAY)
	replay_check_begin(m, params_crc == identity_params.crc, params_crc);
#endif

	for (;;) {
		(void)k_sem_take(&wake, K_FOREVER);
#if defined(CONFIG_APP_LINK)
		(void)app_link_poll();
		if (app_link_busy()) {
			/* Calibration mode: the host's windows only. */
			continue;
		}
#endif
		while ((err = input_get(&window)) == 0) {
			classify(&window);
		}
		if (err != -EAGAIN && err != -ENODATA) {
			LOG_WRN("no window (%d)", err);
		}
	}
	return 0;
}
