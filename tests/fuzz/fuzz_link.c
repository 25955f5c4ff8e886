/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The request dispatcher, tinyfix_link_feed(), with every message type: bytes from the
 * cable go in as they come. After any input the active parameter set is whole and valid
 * and changed only by a SET_PARAMS the device accepted, every byte the device sent is a
 * valid frame, and the device still answers INFO.
 */

#include "fuzz_device.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_device dev;
	uint32_t crc_at_boot;
	size_t half = size / 2U;

	fuzz_device_boot(&dev);
	crc_at_boot = dev.ctx.params.crc;
	/* In two pieces: a frame may arrive split across UART reads. */
	(void)tinyfix_link_feed(&dev.link, data, half);
	(void)tinyfix_link_feed(&dev.link, data + half, size - half);
	fuzz_device_check_params(&dev, crc_at_boot);
	fuzz_device_check_info(&dev);
	return 0;
}
