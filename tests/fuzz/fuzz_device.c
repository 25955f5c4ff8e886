/*
 * SPDX-License-Identifier: Apache-2.0
 */

#include "fuzz_device.h"

#include <string.h>

TINYFIX_LINK_BUFFERS_DEFINE(fuzz_bufs, FUZZ_MAX_FRAME, FUZZ_PARAMS_STAGE);

static uint32_t f32_bits(float f)
{
	uint32_t bits;

	memcpy(&bits, &f, sizeof(bits));
	return bits;
}

static void watch_response(struct fuzz_device *dev, const struct tinyfix_wire_frame *f)
{
	dev->sent[f->type]++;
	if (f->type == TINYFIX_WIRE_MSG_INFO) {
		dev->last_info_seq = f->seq;
	}
	/* SET_PARAMS response: status i16, params_crc u32, persisted u8. */
	if (f->type == TINYFIX_WIRE_MSG_SET_PARAMS && f->payload_len >= 6U &&
	    f->payload[0] == 0U && f->payload[1] == 0U) {
		dev->params_accepted++;
		dev->accepted_crc = (uint32_t)f->payload[2] | ((uint32_t)f->payload[3] << 8) |
				    ((uint32_t)f->payload[4] << 16) | ((uint32_t)f->payload[5] << 24);
	}
}

static void op_write(void *user, const uint8_t *data, size_t len)
{
	struct fuzz_device *dev = user;

	while (len > 0U) {
		struct tinyfix_wire_frame frame;
		size_t used = 0U;
		int ret = tinyfix_wire_rx_push(&dev->out_rx, data, len, &used, &frame);

		/* Everything the device sends must be a valid frame. */
		FUZZ_CHECK(ret >= 0, "the device sent a malformed frame");
		if (ret == TINYFIX_WIRE_RX_FRAME) {
			watch_response(dev, &frame);
		}
		data += used;
		len -= used;
	}
}

static void op_info(void *user, struct tinyfix_wire_info *info)
{
	(void)user;
	info->model_crc = FUZZ_MODEL_CRC;
	info->cycle_hz = 64000000U;
	info->input = (struct tinyfix_wire_tensor){
		.dtype = TINYFIX_WIRE_DTYPE_INT8, .ndims = 3U, .dims = {1U, 64U, FUZZ_CHANNELS},
		.scale_f32 = f32_bits(1.0f / 16.0f)};
	info->output = (struct tinyfix_wire_tensor){
		.dtype = TINYFIX_WIRE_DTYPE_INT8, .ndims = 2U, .dims = {1U, FUZZ_CLASSES},
		.scale_f32 = f32_bits(1.0f / 16.0f)};
	info->feature = (struct tinyfix_wire_tensor){
		.dtype = TINYFIX_WIRE_DTYPE_INT8, .ndims = 2U, .dims = {1U, FUZZ_FEATURES},
		.scale_f32 = f32_bits(1.0f / 32.0f)};
	info->fw_version = "fuzz";
	info->board = "fuzz";
}

static int op_invoke(void *user, const uint8_t *input, size_t len, const uint8_t **raw,
		     const int8_t **features, uint32_t *cycles)
{
	struct fuzz_device *dev = user;
	int32_t sums[FUZZ_CLASSES] = {0};

	for (size_t i = 0; i < len; i++) {
		sums[i % FUZZ_CLASSES] += (int8_t)input[i];
	}
	for (size_t c = 0; c < FUZZ_CLASSES; c++) {
		int32_t v = sums[c] / 8;

		dev->raw[c] = (uint8_t)(int8_t)(v > 127 ? 127 : (v < -128 ? -128 : v));
	}
	for (size_t k = 0; k < FUZZ_FEATURES; k++) {
		dev->features[k] = (int8_t)(len > k ? input[k] : 0U);
	}
	*raw = dev->raw;
	if (features != NULL) { /* NULL when the request wants none */
		*features = dev->features;
	}
	*cycles = 1000U;
	/* An input whose first byte is 0x7f makes the model fail, as TFLM can. */
	return len > 0U && input[0] == 0x7FU ? -1 : 0;
}

static uint8_t *op_input_buffer(void *user)
{
	return ((struct fuzz_device *)user)->input;
}

static int op_capture(void *user, uint8_t dtype, void *values, size_t cap, uint16_t *n_values,
		      uint32_t *t_ms)
{
	struct fuzz_device *dev = user;
	size_t size = tinyfix_wire_dtype_size(dtype);

	if (size == 0U || FUZZ_INPUT_LEN * size > cap) {
		return TINYFIX_WIRE_ERR_NO_SPACE;
	}
	memset(values, 0x11, FUZZ_INPUT_LEN * size);
	*n_values = (uint16_t)FUZZ_INPUT_LEN;
	dev->clock += 1280U;
	*t_ms = dev->clock;
	return 0;
}

static int op_persist(void *user, const uint8_t *blob, size_t len)
{
	struct fuzz_device *dev = user;

	if (len > sizeof(dev->stored)) {
		return TINYFIX_ERR_CAPACITY;
	}
	memcpy(dev->stored, blob, len);
	dev->stored_len = len;
	return 0;
}

static uint32_t op_cycles(void *user)
{
	return ((struct fuzz_device *)user)->clock += 7U;
}

static uint32_t op_uptime(void *user)
{
	return ((struct fuzz_device *)user)->clock;
}

static int op_reset_model(void *user)
{
	(void)user;
	return 0;
}

static const struct tinyfix_link_ops fuzz_ops = {
	.write = op_write,
	.info = op_info,
	.invoke = op_invoke,
	.input_buffer = op_input_buffer,
	.capture = op_capture,
	.persist = op_persist,
	.cycles = op_cycles,
	.uptime_ms = op_uptime,
	.reset_model = op_reset_model,
};

void fuzz_model(struct tinyfix_model_info *model)
{
	memset(model, 0, sizeof(*model));
	model->model_crc = FUZZ_MODEL_CRC;
	model->n_classes = FUZZ_CLASSES;
	model->kind = TINYFIX_MODEL_CLASSIFIER;
	model->n_outputs = FUZZ_CLASSES;
	model->output_type = TINYFIX_DTYPE_INT8;
	(void)tinyfix_quant_from_float(1.0f / 16.0f, 0, &model->output_quant);
	model->n_channels = FUZZ_CHANNELS;
	(void)tinyfix_quant_from_float(1.0f / 16.0f, 0, &model->input_quant);
	model->n_features = FUZZ_FEATURES;
}

void fuzz_params(struct tinyfix_params *params, int variant)
{
	struct tinyfix_model_info model;

	fuzz_model(&model);
	(void)tinyfix_params_identity(params, &model);
	params->inv_temperature = (3 + variant) * 65536 / 2;
	for (size_t c = 0; c < FUZZ_CLASSES; c++) {
		params->class_bias[c] = ((int32_t)c - 2 - variant) * 65536 / 4;
	}
	tinyfix_params_seal(params);
}

void fuzz_device_boot(struct fuzz_device *dev)
{
	struct tinyfix_model_info model;
	static struct tinyfix_params boot_set;

	memset(dev, 0, sizeof(*dev));
	fuzz_model(&model);
	FUZZ_CHECK(tinyfix_init(&dev->ctx, &model) == TINYFIX_OK, "core init");
	fuzz_params(&boot_set, 0);
	FUZZ_CHECK(tinyfix_set_params(&dev->ctx, &boot_set) == TINYFIX_OK, "boot set");
	FUZZ_CHECK(tinyfix_link_init(&dev->link, &dev->ctx, &fuzz_ops, dev, &fuzz_bufs) == 0,
		   "link init");
	(void)tinyfix_wire_rx_init(&dev->out_rx, dev->out_buf, sizeof(dev->out_buf));
}

void fuzz_device_check_info(struct fuzz_device *dev)
{
	uint8_t wire[32];
	/* A seq no fuzz seed uses, so this INFO is executed rather than replayed. Its leading
	 * delimiter may complete a frame the input left unfinished: that one is answered too.
	 */
	int n = tinyfix_wire_frame_build(TINYFIX_WIRE_MSG_INFO, 0xF00DU, 0U, NULL, 0U, wire,
					 sizeof(wire));

	FUZZ_CHECK(n > 0, "INFO frame build");
	dev->last_info_seq = 0U;
	(void)tinyfix_link_feed(&dev->link, wire, (size_t)n);
	FUZZ_CHECK(dev->last_info_seq == 0xF00DU, "the device no longer answers INFO");
}

void fuzz_device_check_params(struct fuzz_device *dev, uint32_t crc_at_boot)
{
	FUZZ_CHECK(tinyfix_params_validate(&dev->ctx.params, &dev->ctx.model) == TINYFIX_OK,
		   "the active parameter set is not a whole, valid set");
	if (dev->params_accepted == 0U) {
		FUZZ_CHECK(dev->ctx.params.crc == crc_at_boot,
			   "the parameter set changed without an accepted SET_PARAMS");
	} else {
		FUZZ_CHECK(dev->ctx.params.crc == dev->accepted_crc,
			   "the active set is not the one the last accepted SET_PARAMS reported");
	}
}
