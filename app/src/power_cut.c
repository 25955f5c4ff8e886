/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test-only power cut for native_sim (CONFIG_APP_TEST_POWER_CUT, scenario
 * sample.tinyfix.app.power_loss). Why: persisting a parameter set is one NVS write of a few
 * hundred bytes that lasts microseconds, so killing the process at a random moment almost
 * never lands inside it. Here every flash operation of the settings store is counted instead,
 * one step per byte written and one per sector erased, and with --power_cut_at=N the process
 * ends at once when step N would start: the first N steps reached the flash, nothing after
 * them did, which is what the flash holds when power goes at that moment. With
 * --power_cut_torn the byte being written at the cut is left half programmed (the bits of
 * its high nibble only), as an interrupted program operation can leave NOR flash.
 *
 * Zephyr v4.3's flash simulator has no write callback, so the settings store's NVS file
 * system gets a pass-through flash device in front of the simulator (its flash_device,
 * reached with settings_storage_get(); set after the boot's settings load). The simulator
 * maps its file (--flash=FILE) MAP_SHARED: the bytes written before the cut are in that file
 * when the process exits, and posix_exit() writes nothing to it.
 *
 * Every operation is printed, so that the test can see the sequence one persistence makes.
 */

#include <stdbool.h>
#include <stdint.h>

#include <zephyr/device.h>
#include <zephyr/drivers/flash.h>
#include <zephyr/fs/nvs.h>
#include <zephyr/kernel.h>
#include <zephyr/settings/settings.h>
#include <zephyr/sys/printk.h>

#include "cmdline.h"
#include "posix_board_if.h"
#include "posix_native_task.h"

#include "power_cut.h"

/* The process' exit status at a cut, for the test to tell a cut from a crash. */
#define POWER_CUT_EXIT 42

static uint32_t cut_at = UINT32_MAX; /* UINT32_MAX: never */
static bool cut_torn;
static uint32_t steps;
static const struct device *flash_dev;

static void cut(const char *what, off_t offset, size_t done, size_t len)
{
	printk("power cut: at step %u, %s 0x%05lx after %zu of %zu bytes\n", steps, what,
	       (long)offset, done, len);
	posix_exit(POWER_CUT_EXIT);
}

static int cut_read(const struct device *dev, off_t offset, void *data, size_t len)
{
	ARG_UNUSED(dev);
	return flash_read(flash_dev, offset, data, len);
}

static int cut_write(const struct device *dev, off_t offset, const void *data, size_t len)
{
	size_t room = cut_at - steps;
	size_t unit = flash_get_write_block_size(flash_dev);
	int err;

	ARG_UNUSED(dev);
	printk("power cut: write 0x%05lx %zu bytes from step %u\n", (long)offset, len, steps);
	if (len > room) {
		/* The write blocks that were through before the power went. */
		room -= room % unit;
		if (room > 0 && flash_write(flash_dev, offset, data, room) != 0) {
			printk("power cut: partial write failed\n");
		}
		if (cut_torn && unit == 1U) {
			/* Programming clears bits: those of the low nibble are not cleared yet. */
			uint8_t torn = ((const uint8_t *)data)[room] | 0x0FU;

			(void)flash_write(flash_dev, offset + room, &torn, 1);
		}
		steps += room;
		cut("write", offset, room, len);
	}
	err = flash_write(flash_dev, offset, data, len);
	steps += len;
	return err;
}

static int cut_erase(const struct device *dev, off_t offset, size_t size)
{
	ARG_UNUSED(dev);
	printk("power cut: erase 0x%05lx %zu bytes at step %u\n", (long)offset, size, steps);
	if (steps >= cut_at) {
		cut("erase", offset, 0, size);
	}
	steps++;
	return flash_erase(flash_dev, offset, size);
}

static const struct flash_parameters *cut_get_parameters(const struct device *dev)
{
	ARG_UNUSED(dev);
	return flash_get_parameters(flash_dev);
}

#if defined(CONFIG_FLASH_PAGE_LAYOUT)
static void cut_page_layout(const struct device *dev, const struct flash_pages_layout **layout,
			    size_t *layout_size)
{
	const struct flash_driver_api *api = flash_dev->api;

	ARG_UNUSED(dev);
	api->page_layout(flash_dev, layout, layout_size);
}
#endif

static DEVICE_API(flash, cut_api) = {
	.read = cut_read,
	.write = cut_write,
	.erase = cut_erase,
	.get_parameters = cut_get_parameters,
#if defined(CONFIG_FLASH_PAGE_LAYOUT)
	.page_layout = cut_page_layout,
#endif
};

static struct device_state cut_state = {.initialized = true};
static const struct device cut_dev = {
	.name = "power_cut",
	.api = &cut_api,
	.state = &cut_state,
};

int power_cut_arm(void)
{
	struct nvs_fs *fs = NULL;
	int err = settings_storage_get((void **)&fs);

	if (err != 0 || fs == NULL || fs->flash_device == NULL) {
		printk("power cut: no NVS settings store (%d)\n", err);
		return -ENODEV;
	}
	flash_dev = fs->flash_device;
	fs->flash_device = &cut_dev;
	if (cut_at == UINT32_MAX) {
		printk("power cut: counting flash steps, no cut\n");
	} else {
		printk("power cut: armed at step %u\n", cut_at);
	}
	return 0;
}

static void power_cut_options(void)
{
	static struct args_struct_t options[] = {
		{.option = "power_cut_at",
		 .name = "N",
		 .type = 'u',
		 .dest = &cut_at,
		 .descript = "Test build: exit at once when flash step N of the settings store "
			     "would start (a byte written or a sector erased, counted from 0 "
			     "after boot), as a power cut would"},
		{.is_switch = true,
		 .option = "power_cut_torn",
		 .type = 'b',
		 .dest = &cut_torn,
		 .descript = "Test build: at a cut inside a write, leave the byte being written "
			     "half programmed"},
		ARG_TABLE_ENDMARKER,
	};

	native_add_command_line_opts(options);
}

NATIVE_TASK(power_cut_options, PRE_BOOT_1, 10);
