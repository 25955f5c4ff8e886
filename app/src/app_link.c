/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Platform side of the TinyFix link. The protocol itself (framing, requests, replies,
 * repeats, errors) is the module's dispatcher; this file only supplies what it needs:
 * bytes out, the model's description, Invoke(), live sensor windows, persistence and
 * clocks. The dispatcher works on the active context, so it runs under the glue's lock,
 * which the shell and the local pipeline also take.
 */

#include <errno.h>
#include <string.h>

#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <zephyr/sys/util.h>

#include <app_version.h>
#include <tinyfix/link.h>
#include <tinyfix/tinyfix_zephyr.h>
#if defined(CONFIG_TINYFIX_MCUMGR)
#include <tinyfix/tinyfix_mgmt.h>
#endif
#include <tinyfix/wire.h>

#include "app_link.h"
#include "cycles.h"
#include "input.h"
#include "link_uart.h"
#include "model_info.h"
#include "model_runner.h"

LOG_MODULE_REGISTER(link, CONFIG_APP_LOG_LEVEL);

/*
 * Frames, and a staging area for a parameter blob of any size this build takes: a set is
 * checked whole before it replaces the active one. An input larger than a frame goes
 * straight into the model's input tensor instead (no second copy).
 */
static uint8_t link_rx[CONFIG_APP_LINK_MAX_FRAME];
static uint8_t link_tx[TINYFIX_LINK_TX_SIZE(CONFIG_APP_LINK_MAX_FRAME)];
static uint8_t link_scratch[TINYFIX_LINK_SCRATCH_SIZE(CONFIG_APP_LINK_MAX_FRAME)];
static uint8_t link_params[TINYFIX_PARAMS_BLOB_MAX];
#if MODEL_IS_AUTOENCODER
/* Invoke() may reuse the input tensor; the reconstruction error needs the input after it. */
static uint8_t link_recon[MODEL_INPUT_BYTES];
#endif
static const struct tinyfix_link_buffers link_bufs = {
	.params = link_params,
	.params_size = sizeof(link_params),
#if MODEL_IS_AUTOENCODER
	.recon = link_recon,
	.recon_size = sizeof(link_recon),
#endif
	.rx = link_rx,
	.rx_size = sizeof(link_rx),
	.tx = link_tx,
	.tx_size = sizeof(link_tx),
	.scratch = link_scratch,
	.scratch_size = sizeof(link_scratch),
};
static struct tinyfix_link link;
static uint16_t link_n_features;
static uint32_t last_request_ms;
static bool ever_requested;
/* Snapshot for persisting: too large for the stack with the head stage. */
static struct tinyfix_params persist_tmp;

static void op_write(void *user, const uint8_t *data, size_t len)
{
	ARG_UNUSED(user);
	link_uart_write(data, len);
}

static void tensor_to_wire(struct tinyfix_wire_tensor *w, const struct model_tensor *t)
{
	memset(w, 0, sizeof(*w));
	if (t->dtype == 0U) {
		return;
	}
	w->dtype = t->dtype; /* both use TfLiteType numbering */
	w->ndims = (uint8_t)MIN(t->ndims, TINYFIX_WIRE_MAX_DIMS);
	for (uint8_t i = 0; i < w->ndims; i++) {
		w->dims[i] = t->dims[i];
	}
	memcpy(&w->scale_f32, &t->scale, sizeof(w->scale_f32));
	w->zero_point = t->zero_point;
}

static void op_info(void *user, struct tinyfix_wire_info *info)
{
	const struct model_desc *m = model_desc();

	ARG_UNUSED(user);
	info->model_crc = m->crc;
	info->cycle_hz = app_cycles_hz();
	tensor_to_wire(&info->input, &m->input);
	tensor_to_wire(&info->output, &m->output);
	/* Only a feature vector the core was sized for: the head stage must be able to use it. */
	if (link_n_features > 0U) {
		tensor_to_wire(&info->feature, &m->feature);
	} else {
		memset(&info->feature, 0, sizeof(info->feature));
	}
	info->fw_version = APP_VERSION_STRING;
	info->board = CONFIG_BOARD_TARGET;
}

static int op_invoke(void *user, const uint8_t *input, size_t len, const uint8_t **raw,
		     const int8_t **features, uint32_t *cycles)
{
	ARG_UNUSED(user);
	ARG_UNUSED(len); /* the dispatcher checked it against the INFO input tensor */

	return model_invoke(input, raw, features, cycles) == 0 ? 0 : TINYFIX_WIRE_ERR_INVOKE;
}

static uint8_t *op_input_buffer(void *user)
{
	ARG_UNUSED(user);
	return model_input_buffer();
}

static int op_capture(void *user, uint8_t dtype, void *values, size_t cap, uint16_t *n_values,
		      uint32_t *t_ms)
{
	static struct input_window w;
	struct tinyfix_ctx *ctx = user;
	/* Two hops: a window is due within one; more means the sampler is stuck. */
	int err = input_wait(&w, K_MSEC(2 * CONFIG_APP_HOP_MS + 100));

	if (err != 0) {
		return TINYFIX_WIRE_ERR_SENSOR;
	}
	if (dtype == TINYFIX_WIRE_DTYPE_FLOAT32) {
		uint32_t *out = values;

		if (cap < sizeof(w.samples)) {
			return TINYFIX_WIRE_ERR_NO_SPACE;
		}
		for (size_t i = 0; i < ARRAY_SIZE(w.samples); i++) {
			float f = (float)w.samples[i] / 65536.0f;

			memcpy(&out[i], &f, sizeof(f));
		}
	} else {
		if (cap < ARRAY_SIZE(w.samples)) {
			return TINYFIX_WIRE_ERR_NO_SPACE;
		}
		/* The caller holds the context (app_link_poll() locks it). */
		if (tinyfix_input_correct(ctx, w.samples, INPUT_FRAMES, values) != TINYFIX_OK) {
			return TINYFIX_WIRE_ERR_SENSOR;
		}
	}
	*n_values = ARRAY_SIZE(w.samples);
	*t_ms = w.t_ms;
	return 0;
}

static int op_persist(void *user, const uint8_t *blob, size_t len)
{
	ARG_UNUSED(user);
	ARG_UNUSED(blob);
	ARG_UNUSED(len);

	/* The blob is the set just applied; the glue re-encodes it under its settings key. */
	if (tinyfix_zephyr_get_params(&persist_tmp) != TINYFIX_OK) {
		return -ENODEV;
	}
	return tinyfix_zephyr_params_save(&persist_tmp) == TINYFIX_OK ? 0 : -EIO;
}

static uint32_t op_cycles(void *user)
{
	ARG_UNUSED(user);
	return app_cycles();
}

static uint32_t op_uptime(void *user)
{
	ARG_UNUSED(user);
	return k_uptime_get_32();
}

static int op_reset_model(void *user)
{
	ARG_UNUSED(user);
	return model_reset() == 0 ? 0 : TINYFIX_WIRE_ERR_INVOKE;
}

static const struct tinyfix_link_ops link_ops = {
	.write = op_write,
	.info = op_info,
	.invoke = op_invoke,
	.input_buffer = op_input_buffer,
	.capture = IS_ENABLED(CONFIG_APP_INPUT_SENSOR) || IS_ENABLED(CONFIG_APP_REPLAY_CAPTURE)
			   ? op_capture
			   : NULL,
	.persist = IS_ENABLED(CONFIG_TINYFIX_SETTINGS) ? op_persist : NULL,
	.cycles = op_cycles,
	.uptime_ms = op_uptime,
	/* Offered for a model with state only: the host then resets it for every sample. */
	.reset_model = MODEL_STATEFUL ? op_reset_model : NULL,
};

int app_link_init(struct tinyfix_ctx *ctx, const struct tinyfix_model_info *info,
		  void (*notify)(void))
{
	int err;

	link_n_features = info->n_features;
	if (tinyfix_zephyr_lock() == NULL) {
		return -ENODEV;
	}
	err = tinyfix_link_init(&link, ctx, &link_ops, ctx, &link_bufs);
	tinyfix_zephyr_unlock();
	if (err != 0) {
		LOG_ERR("link not started: dispatcher refused the model or buffers (%d)", err);
		return err;
	}
#if defined(CONFIG_TINYFIX_MCUMGR)
	/* The MCUmgr group runs on the same link: one staging area, one validation path. */
	err = tinyfix_mgmt_init(&link, !IS_ENABLED(CONFIG_APP_INPUT_NONE));
	if (err != 0) {
		LOG_ERR("MCUmgr group not started (%d)", err);
	}
#endif
	err = link_uart_init(notify);
	if (err != 0) {
		LOG_ERR("link UART %s not started (%d)", link_uart_name(), err);
		return err;
	}
	LOG_INF("link on %s, max frame %d bytes%s%s", link_uart_name(), CONFIG_APP_LINK_MAX_FRAME,
		link_ops.capture != NULL ? ", capture" : "",
		link_ops.reset_model != NULL ? ", model reset" : "");
	return 0;
}

int app_link_poll(void)
{
	uint8_t chunk[64];
	int answered = 0;
	size_t n;

	while ((n = link_uart_read(chunk, sizeof(chunk))) > 0) {
		int ret;

		if (tinyfix_zephyr_lock() == NULL) {
			return answered;
		}
		ret = tinyfix_link_feed(&link, chunk, n);
		tinyfix_zephyr_unlock();
		if (ret > 0) {
			answered += ret;
			last_request_ms = k_uptime_get_32();
			ever_requested = true;
		}
	}
	return answered;
}

bool app_link_busy(void)
{
	return ever_requested &&
	       (uint32_t)(k_uptime_get_32() - last_request_ms) < CONFIG_APP_LINK_HOLD_MS;
}

void app_link_input_clobbered(void)
{
	if (tinyfix_zephyr_lock() == NULL) {
		return;
	}
	if (tinyfix_link_input_pending(&link)) {
		LOG_WRN("local inference overwrote an input the host was staging");
	}
	tinyfix_link_input_clobbered(&link);
	tinyfix_zephyr_unlock();
}
