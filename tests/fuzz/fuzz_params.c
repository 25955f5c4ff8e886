/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The parameter blob decoder and validator, as SET_PARAMS and the settings loader apply a
 * blob (the Zephyr settings handler adds only a length check and its read callback around
 * this path: decode, then tinyfix_set_params()). A rejected blob leaves the active set as it
 * was, byte for byte; an accepted one is whole and valid and re-encodes to the same bytes.
 */

#include <string.h>

#include "fuzz_device.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tinyfix_ctx ctx;
	static struct tinyfix_params decoded;
	static struct tinyfix_params before;
	static uint8_t again[FUZZ_PARAMS_STAGE];
	struct tinyfix_model_info model;
	size_t written = 0U;
	int err;

	fuzz_model(&model);
	FUZZ_CHECK(tinyfix_init(&ctx, &model) == TINYFIX_OK, "core init");
	fuzz_params(&before, 1);
	FUZZ_CHECK(tinyfix_set_params(&ctx, &before) == TINYFIX_OK, "boot set");
	memcpy(&before, &ctx.params, sizeof(before));

	err = tinyfix_params_decode(data, size, &decoded);
	if (err == TINYFIX_OK) {
		err = tinyfix_set_params(&ctx, &decoded);
	}
	if (err != TINYFIX_OK) {
		FUZZ_CHECK(memcmp(&before, &ctx.params, sizeof(before)) == 0,
			   "a rejected blob changed the active set");
		FUZZ_CHECK(tinyfix_strerror(err) != NULL, "an error without a message");
		return 0;
	}
	FUZZ_CHECK(tinyfix_params_validate(&ctx.params, &model) == TINYFIX_OK,
		   "an accepted set does not validate");
	FUZZ_CHECK(tinyfix_params_encode(&ctx.params, again, sizeof(again), &written) ==
			   TINYFIX_OK,
		   "an accepted set does not encode");
	FUZZ_CHECK(written <= size && memcmp(again, data, written) == 0,
		   "an accepted set does not re-encode to the blob it came from");
	return 0;
}
