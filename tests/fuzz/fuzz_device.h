/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * A device for the fuzz harnesses: the TinyFix core and the link dispatcher with platform
 * ops that behave as the firmware's do (a model whose outputs depend on every input byte,
 * an input tensor WRITE can stage into, a sensor, storage). It watches its own responses,
 * so a harness can check what the device said against what it did.
 */

#ifndef FUZZ_DEVICE_H_
#define FUZZ_DEVICE_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <tinyfix/link.h>
#include <tinyfix/tinyfix.h>
#include <tinyfix/wire.h>

/* Shared with scripts/gen_fuzz_seeds.py, which frames real requests for this model. */
#define FUZZ_MODEL_CRC 0x7E57F022U
#define FUZZ_CLASSES   6U
#define FUZZ_CHANNELS  3U
#define FUZZ_INPUT_LEN (64U * FUZZ_CHANNELS)
#define FUZZ_FEATURES  8U
#define FUZZ_MAX_FRAME 512U
#define FUZZ_PARAMS_STAGE 1024U

/* A property of the harness failed: say which, and crash so libFuzzer keeps the input. */
#define FUZZ_CHECK(cond, what)                                                                    \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz property violated: %s\n", (what));                  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

struct fuzz_device {
	struct tinyfix_ctx ctx;
	struct tinyfix_link link;
	uint8_t input[FUZZ_INPUT_LEN];
	uint8_t raw[FUZZ_CLASSES];
	int8_t features[FUZZ_FEATURES];
	uint8_t stored[FUZZ_PARAMS_STAGE];
	size_t stored_len;
	uint32_t clock;
	/* What the device sent, parsed back: frames by type, accepted parameter sets. */
	struct tinyfix_wire_rx out_rx;
	uint8_t out_buf[FUZZ_MAX_FRAME];
	unsigned int sent[256];
	uint16_t last_info_seq;
	unsigned int params_accepted;
	uint32_t accepted_crc;
};

/* The model the device runs. */
void fuzz_model(struct tinyfix_model_info *model);

/* A non-identity parameter set for fuzz_model(), sealed. */
void fuzz_params(struct tinyfix_params *params, int variant);

/* Boot: core, link, and the set of fuzz_params(.., 0) active. */
void fuzz_device_boot(struct fuzz_device *dev);

/* The device must still answer INFO: one is sent, and its response must come back. */
void fuzz_device_check_info(struct fuzz_device *dev);

/* The active set is whole and valid, and changed only by a SET_PARAMS the device accepted. */
void fuzz_device_check_params(struct fuzz_device *dev, uint32_t crc_at_boot);

#endif /* FUZZ_DEVICE_H_ */
