/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A settings back-end in RAM (CONFIG_SETTINGS_CUSTOM) holding one record, so the settings
 * path of the glue runs unchanged on boards without flash. The test reads and corrupts the
 * record through settings_ram.h.
 */

#include <errno.h>
#include <string.h>

#include <zephyr/settings/settings.h>
#include <zephyr/sys/util.h>

#include "settings_ram.h"

static char ram_name[32];
static uint8_t ram_value[SETTINGS_RAM_MAX];
static size_t ram_len;
static bool ram_has;

static ssize_t ram_read(void *cb_arg, void *data, size_t len)
{
	size_t n = MIN(len, ram_len);

	ARG_UNUSED(cb_arg);
	memcpy(data, ram_value, n);
	return (ssize_t)n;
}

static int ram_load(struct settings_store *cs, const struct settings_load_arg *arg)
{
	ARG_UNUSED(cs);
	if (!ram_has ||
	    (arg != NULL && arg->subtree != NULL &&
	     !settings_name_steq(ram_name, arg->subtree, NULL))) {
		return 0;
	}
	return settings_call_set_handler(ram_name, ram_len, ram_read, NULL, arg);
}

static int ram_save(struct settings_store *cs, const char *name, const char *value,
		    size_t val_len)
{
	ARG_UNUSED(cs);
	if (value == NULL || val_len == 0U) {
		ram_has = false;
		return 0;
	}
	if (val_len > sizeof(ram_value) || strlen(name) >= sizeof(ram_name)) {
		return -ENOMEM;
	}
	strcpy(ram_name, name);
	memcpy(ram_value, value, val_len);
	ram_len = val_len;
	ram_has = true;
	return 0;
}

static const struct settings_store_itf ram_itf = {
	.csi_load = ram_load,
	.csi_save = ram_save,
};

static struct settings_store ram_store = {
	.cs_itf = &ram_itf,
};

int settings_backend_init(void)
{
	settings_src_register(&ram_store);
	settings_dst_register(&ram_store);
	return 0;
}

uint8_t *settings_ram_value(size_t *len)
{
	if (!ram_has) {
		return NULL;
	}
	*len = ram_len;
	return ram_value;
}

const char *settings_ram_name(void)
{
	return ram_has ? ram_name : NULL;
}

void settings_ram_clear(void)
{
	ram_has = false;
	ram_len = 0;
}
