/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The TinyFix MCUmgr group on Zephyr: one handler per command and op, each running the
 * portable group code (src/smp/tinyfix_smp.c) on the SMP streamer's zcbor states, under the
 * lock that guards the correction context (the lab link, the shell and local inference take
 * it too). Group errors go out as SMP version 2 "err" maps, as Zephyr's own groups send them.
 */

#include <errno.h>

#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <zephyr/mgmt/mcumgr/mgmt/handlers.h>
#include <zephyr/mgmt/mcumgr/mgmt/mgmt.h>
#include <zephyr/mgmt/mcumgr/smp/smp.h>
#include <zephyr/sys/util.h>

#include <tinyfix/smp.h>
#include <tinyfix/tinyfix_mgmt.h>
#include <tinyfix/tinyfix_zephyr.h>

LOG_MODULE_REGISTER(tinyfix_mgmt, CONFIG_TINYFIX_LOG_LEVEL);

/* A response chunk leaves room for the SMP header and the response's other keys. */
#define MGMT_CHUNK MIN(TINYFIX_SMP_CHUNK_MAX, CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE - 128)
BUILD_ASSERT(CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE >= 128 + 16,
	     "the TinyFix group needs MCUMGR_TRANSPORT_NETBUF_SIZE of at least 144");

static struct tinyfix_smp group_state;
static uint8_t capture_buf[CONFIG_TINYFIX_MCUMGR_CAPTURE_BYTES];
static bool serving;

static int run(struct smp_streamer *ctxt, uint8_t cmd, bool write)
{
	int ret;

	if (!serving) {
		return MGMT_ERR_EBADSTATE;
	}
	if (tinyfix_zephyr_lock() == NULL) {
		return MGMT_ERR_EBADSTATE;
	}
	ret = tinyfix_smp_handle(&group_state, cmd, write, ctxt->reader->zs, ctxt->writer->zs);
	tinyfix_zephyr_unlock();
	if (ret < 0) {
		return -ret;
	}
	if (ret > 0) {
		return smp_add_cmd_err(ctxt->writer->zs, CONFIG_TINYFIX_MCUMGR_GROUP_ID,
				       (uint16_t)ret)
			       ? MGMT_ERR_EOK
			       : MGMT_ERR_EMSGSIZE;
	}
	return MGMT_ERR_EOK;
}

static int info_read(struct smp_streamer *ctxt)
{
	return run(ctxt, TINYFIX_SMP_CMD_INFO, false);
}

static int params_read(struct smp_streamer *ctxt)
{
	return run(ctxt, TINYFIX_SMP_CMD_PARAMS, false);
}

static int params_write(struct smp_streamer *ctxt)
{
	return run(ctxt, TINYFIX_SMP_CMD_PARAMS, true);
}

static int stats_read(struct smp_streamer *ctxt)
{
	return run(ctxt, TINYFIX_SMP_CMD_STATS, false);
}

static int adapt_write(struct smp_streamer *ctxt)
{
	return run(ctxt, TINYFIX_SMP_CMD_ADAPT, true);
}

static int capture_read(struct smp_streamer *ctxt)
{
	return run(ctxt, TINYFIX_SMP_CMD_CAPTURE, false);
}

static int capture_write(struct smp_streamer *ctxt)
{
	return run(ctxt, TINYFIX_SMP_CMD_CAPTURE, true);
}

static const struct mgmt_handler tinyfix_mgmt_handlers[] = {
	[TINYFIX_SMP_CMD_INFO] = {info_read, NULL},
	[TINYFIX_SMP_CMD_PARAMS] = {params_read, params_write},
	[TINYFIX_SMP_CMD_STATS] = {stats_read, NULL},
	[TINYFIX_SMP_CMD_ADAPT] = {NULL, adapt_write},
	[TINYFIX_SMP_CMD_CAPTURE] = {capture_read, capture_write},
};

static struct mgmt_group tinyfix_mgmt_group = {
	.mg_handlers = tinyfix_mgmt_handlers,
	.mg_handlers_count = ARRAY_SIZE(tinyfix_mgmt_handlers),
	.mg_group_id = CONFIG_TINYFIX_MCUMGR_GROUP_ID,
};

static void tinyfix_mgmt_register_group(void)
{
	mgmt_register_group(&tinyfix_mgmt_group);
}

MCUMGR_HANDLER_DEFINE(tinyfix_mgmt, tinyfix_mgmt_register_group);

int tinyfix_mgmt_init(struct tinyfix_link *link, bool capture)
{
	int err;

	if (link == NULL) {
		return -EINVAL;
	}
	if (tinyfix_zephyr_lock() == NULL) {
		return -ENODEV;
	}
	err = tinyfix_smp_init(&group_state, link, capture ? capture_buf : NULL,
			       capture ? sizeof(capture_buf) : 0U, MGMT_CHUNK);
	serving = err == 0;
	tinyfix_zephyr_unlock();
	if (err != 0) {
		return -EINVAL;
	}
	LOG_INF("MCUmgr group %d%s", CONFIG_TINYFIX_MCUMGR_GROUP_ID,
		capture ? ", capture" : "");
	return 0;
}

bool tinyfix_mgmt_capture_wanted(void)
{
	return serving && tinyfix_smp_capture_wanted(&group_state);
}

void tinyfix_mgmt_capture_record(uint32_t t_ms, const uint8_t *raw, const int8_t *features)
{
	if (!tinyfix_mgmt_capture_wanted() || tinyfix_zephyr_lock() == NULL) {
		return;
	}
	tinyfix_smp_capture_record(&group_state, t_ms, raw, features);
	tinyfix_zephyr_unlock();
}
