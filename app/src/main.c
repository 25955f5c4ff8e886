/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TinyFix application: sensor (or replay) window -> tinyfix input quantization ->
 * TFLM Invoke() -> tinyfix_process() -> application logic (log, LED). The calibration link
 * runs in the same thread, between windows, so the interpreter and the tinyfix context
 * never have two users at once; while the host talks, local inference pauses. Built around
 * a user's model (-DTINYFIX_MODEL=...), it has no local input: the host link feeds it.
 */

#include <errno.h>
#include <string.h>

#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <zephyr/sys/printk.h>

#include <app_version.h>
#include <tinyfix/tinyfix.h>
#include <tinyfix/tinyfix_zephyr.h>
#if defined(CONFIG_TINYFIX_MCUMGR)
#include <tinyfix/tinyfix_mgmt.h>
#endif

#include "app_link.h"
#include "cycles.h"
#include "decision.h"
#include "input.h"
#include "model_info.h"
#include "model_runner.h"
#if defined(CONFIG_APP_TEST_POWER_CUT)
#include "power_cut.h"
#endif
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
#if !defined(CONFIG_APP_INPUT_NONE)
BUILD_ASSERT((INPUT_FRAMES * INPUT_CHANNELS) == MODEL_INPUT_ELEMENTS && MODEL_INPUT_DTYPE == 9,
	     "the local input provider feeds 64 x 3 int8 windows: another model needs "
	     "CONFIG_APP_INPUT_NONE (the host link feeds it)");
/* A window is 768 bytes: static rather than on the main stack. */
static struct input_window window;
#endif

/* From the UART ISR, the input provider's timer or its sampling thread. */
static void wake_app(void)
{
	k_sem_give(&wake);
}

static int core_dtype(uint8_t tflite_type, enum tinyfix_dtype *out)
{
	switch (tflite_type) {
	case 9: /* kTfLiteInt8 */
		*out = TINYFIX_DTYPE_INT8;
		return TINYFIX_OK;
	case 7: /* kTfLiteInt16 */
		*out = TINYFIX_DTYPE_INT16;
		return TINYFIX_OK;
	case 1: /* kTfLiteFloat32 */
		*out = TINYFIX_DTYPE_FLOAT32;
		return TINYFIX_OK;
	default:
		return TINYFIX_ERR_UNSUPPORTED;
	}
}

/*
 * The core's view of the model, by the rules the host applies to INFO (tinyfix.device):
 * channels are the input's last dimension when it is int8 and fits CONFIG_TINYFIX_MAX_CHANNELS.
 */
static int model_info_from(const struct model_desc *m, struct tinyfix_model_info *info)
{
	uint16_t last = m->input.ndims > 0 ? m->input.dims[m->input.ndims - 1] : 0;
	enum tinyfix_dtype out_type;
	int err;

	memset(info, 0, sizeof(*info));
	info->model_crc = m->crc;
	info->n_classes = MODEL_NUM_CLASSES;
	info->kind = MODEL_KIND;
	info->n_outputs = MODEL_NUM_OUTPUTS;
	err = core_dtype(m->output.dtype, &out_type);
	if (err != TINYFIX_OK) {
		return err;
	}
	info->output_type = out_type;
	if (m->input.dtype == 9 && last <= TINYFIX_MAX_CHANNELS) {
		info->n_channels = last;
	}
	if (out_type != TINYFIX_DTYPE_FLOAT32) {
		err = tinyfix_quant_from_float(m->output.scale, m->output.zero_point,
					       &info->output_quant);
	}
	if (err == TINYFIX_OK && m->input.dtype == 9) {
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

static const char *dtype_name(uint8_t t)
{
	return t == 9 ? "int8" : t == 7 ? "int16" : t == 1 ? "float32" : "other";
}

/* "[1 64 3] int8" into buf. */
static void format_tensor(char *buf, size_t size, const struct model_tensor *t)
{
	size_t at = 0;

	at += (size_t)snprintk(buf, size, "[");
	for (uint8_t i = 0; i < t->ndims && at < size; i++) {
		at += (size_t)snprintk(&buf[at], size - at, i == 0 ? "%u" : " %u", t->dims[i]);
	}
	if (at < size) {
		(void)snprintk(&buf[at], size - at, "] %s", dtype_name(t->dtype));
	}
}

/* One line: "model: crc 0x..., input [1 64 3] int8, output [1 6] int8". */
static void print_tensor(const char *what, uint32_t crc, const struct model_tensor *in,
			 const struct model_tensor *out)
{
	char a[48];
	char b[48];

	format_tensor(a, sizeof(a), in);
	format_tensor(b, sizeof(b), out);
	printk("%s 0x%08x, input %s, output %s\n", what, crc, a, b);
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

#if !defined(CONFIG_APP_INPUT_NONE)
/* One local window through the whole pipeline. */
static void classify(const struct input_window *w)
{
	static int8_t input[INPUT_FRAMES * INPUT_CHANNELS];
	static int8_t raw[MODEL_LOGICAL_OUTPUT_BYTES];
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

#if defined(CONFIG_APP_LINK)
	app_link_input_clobbered(); /* the input tensor is about to be ours, not the host's */
#endif
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

#if defined(CONFIG_TINYFIX_MCUMGR)
	/* An MCUmgr CAPTURE records the windows the device classifies on its own. */
	tinyfix_mgmt_capture_record(w->t_ms, (const uint8_t *)raw, feat);
#endif
#if defined(CONFIG_APP_INPUT_REPLAY)
	replay_check_window(w->index, input, raw, feat, &res, cycles_invoke, cycles_fix);
#endif
	decision_apply(&res, voted, w->label);
}
#endif /* !CONFIG_APP_INPUT_NONE */

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
	print_tensor("model: crc", m->crc, &m->input, &m->output);
	printk("model: %u classes (%s), features %u (%s)\n", (unsigned int)MODEL_NUM_CLASSES,
	       MODEL_KIND == 2   ? "autoencoder"
	       : MODEL_KIND == 1 ? "binary"
				 : "classifier",
	       (unsigned int)m->feature.count, m->feature_mode);
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
#if defined(CONFIG_APP_TEST_POWER_CUT)
	(void)power_cut_arm(); /* test build: counts (and cuts) the settings' flash steps */
#endif
	params_crc = active_params_crc();
	printk("tinyfix: parameters 0x%08x (%s)\n", params_crc,
	       params_crc == identity_params.crc ? "identity" : "corrected");

	(void)decision_init(); /* without an LED the decisions are still logged */

#if defined(CONFIG_APP_LINK)
	(void)app_link_init(&fix, &fix_model, wake_app); /* logged; local inference goes on */
#endif

#if defined(CONFIG_APP_INPUT_NONE)
	printk("input: none, the host link feeds the model\n");
#else
	err = input_init(wake_app);
	if (err != 0) {
		LOG_ERR("input %s not started (%d)", input_name(), err);
	} else {
		printk("input: %s, a window every %d ms\n", input_name(), CONFIG_APP_HOP_MS);
	}
#endif
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
#if !defined(CONFIG_APP_INPUT_NONE)
		while ((err = input_get(&window)) == 0) {
			classify(&window);
		}
		if (err != -EAGAIN && err != -ENODATA) {
			LOG_WRN("no window (%d)", err);
		}
#endif
	}
	return 0;
}
