/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parameter sets: identity defaults, the portable blob (docs/params-format.md), CRC and range
 * checks. One field table drives encoding, decoding and range validation, so the three cannot
 * disagree about a field.
 */

#include <stddef.h>
#include <string.h>

#include "tinyfix_internal.h"

#define PARAMS_MAGIC    0x50584654u /* "TFXP" little-endian */
#define CRC_BYTES       4U

enum count_kind {
	COUNT_ONE,
	COUNT_CLASSES,
	COUNT_CHANNELS,
	COUNT_HEAD_CLASSES, /* n_classes if the set has a head, else 0 */
	COUNT_HEAD_WEIGHTS, /* n_classes * n_features */
};

struct field {
	uint16_t offset; /* in struct tinyfix_params */
	uint8_t size;    /* element bytes: 1, 2 or 4 */
	uint8_t is_signed;
	uint8_t count;   /* enum count_kind */
	int32_t min;
	int32_t max;
};

/* Element size of an array member, or the member's size for scalars. */
#define A(member, type_signed, lo, hi, kind)                                                       \
	{offsetof(struct tinyfix_params, member), sizeof(((struct tinyfix_params *)0)->member[0]), \
	 (type_signed), (kind), (lo), (hi)}
#define S(member, type_signed, lo, hi)                                                             \
	{offsetof(struct tinyfix_params, member), sizeof(((struct tinyfix_params *)0)->member),    \
	 (type_signed), COUNT_ONE, (lo), (hi)}

#define Q16(v) ((int32_t)((v) * 65536))

static const struct field fields[] = {
	S(inv_temperature, 1, 256, Q16(64)),
	A(class_scale, 1, 0, Q16(64), COUNT_CLASSES),
	A(class_bias, 1, -Q16(1024), Q16(1024), COUNT_CLASSES),
	A(class_threshold, 0, 0, TINYFIX_Q15_ONE, COUNT_CLASSES),
	A(class_flags, 0, 0, TINYFIX_CLASS_FLAGS_ALL, COUNT_CLASSES),
	S(vote.mode, 0, 0, TINYFIX_VOTE_MAJORITY),
	S(vote.source, 0, 0, TINYFIX_VOTE_FROM_RAW),
	S(vote.threshold, 0, 0, 255),
	S(vote.min_count, 0, 1, TINYFIX_MAX_VOTE_FRAMES),
	S(vote.window_ms, 1, 0, 600000),
	S(vote.suppression_ms, 1, 0, 3600000),
	S(anomaly.mode, 0, 0, TINYFIX_ANOMALY_BOTH),
	S(anomaly.options, 0, 0, TINYFIX_ANOMALY_LEARN_ANOMALIES),
	S(anomaly.class_index, 0, 0, TINYFIX_MAX_CLASSES - 1),
	S(anomaly.window, 0, 2, TINYFIX_MAX_ANOMALY_WINDOW),
	S(anomaly.warmup, 0, 2, TINYFIX_MAX_ANOMALY_WINDOW),
	S(anomaly.alpha_q8, 0, 1, 65535),
	S(input.fill_mode, 0, 0, TINYFIX_FILL_MEAN),
	S(input.stats_shift, 0, 1, 15),
	S(input.clip_k_q8, 0, 0, 65535),
	A(input.offset, 1, -(1 << 30), 1 << 30, COUNT_CHANNELS),
	A(input.gain, 1, 1, Q16(64), COUNT_CHANNELS),
	S(adapt.learning_rate, 1, 0, TINYFIX_Q16_ONE),
	S(adapt.clamp, 1, 0, Q16(64)),
	S(adapt.head_learning_rate, 1, 0, TINYFIX_Q16_ONE),
	S(adapt.head_clamp, 0, 0, 127),
	S(monitor.rate_shift, 0, 1, 15),
	S(monitor.min_frames, 0, 1, 65535),
	S(monitor.ref_conf, 0, 0, TINYFIX_Q15_ONE),
	S(monitor.conf_drop, 0, 0, TINYFIX_Q15_ONE),
	S(monitor.prior_tv, 0, 0, TINYFIX_Q15_ONE),
	S(monitor.input_z_q8, 0, 0, 65535),
	A(monitor.ref_prior, 0, 0, TINYFIX_Q15_ONE, COUNT_CLASSES),
	A(monitor.ref_in_mean, 1, -(1 << 30), 1 << 30, COUNT_CHANNELS),
	A(monitor.ref_in_std, 1, 1, 1 << 30, COUNT_CHANNELS),
#if TINYFIX_MAX_FEATURES > 0
	{offsetof(struct tinyfix_params, head.multiplier), 4, 1, COUNT_HEAD_CLASSES, 1 << 30,
	 INT32_MAX},
	{offsetof(struct tinyfix_params, head.shift), 4, 1, COUNT_HEAD_CLASSES, -31, 30},
	{offsetof(struct tinyfix_params, head.bias), 4, 1, COUNT_HEAD_CLASSES, -(1 << 30), 1 << 30},
	{offsetof(struct tinyfix_params, head.weights), 1, 1, COUNT_HEAD_WEIGHTS, -127, 127},
#endif
};

struct cursor {
	uint8_t *out;       /* NULL: only count and checksum */
	const uint8_t *in;  /* decoding source, or NULL */
	size_t size;
	size_t pos;
	uint32_t crc;
};

static size_t field_count(const struct field *f, const struct tinyfix_params *p)
{
	switch (f->count) {
	case COUNT_CLASSES:
		return p->n_classes;
	case COUNT_CHANNELS:
		return p->n_channels;
	case COUNT_HEAD_CLASSES:
		return p->n_features > 0U ? p->n_classes : 0U;
	case COUNT_HEAD_WEIGHTS:
		return (size_t)p->n_classes * p->n_features;
	default:
		return 1U;
	}
}

/* Moves size bytes between the cursor and *value (little-endian), and checksums them. */
static bool move_le(struct cursor *c, uint32_t *value, uint8_t size)
{
	uint8_t b[4];
	uint8_t i;

	if (c->in != NULL || c->out != NULL) {
		if (c->pos + size > c->size) {
			return false;
		}
	}
	if (c->in != NULL) {
		memcpy(b, c->in + c->pos, size);
		*value = 0;
		for (i = 0; i < size; i++) {
			*value |= (uint32_t)b[i] << (8U * i);
		}
	} else {
		for (i = 0; i < size; i++) {
			b[i] = (uint8_t)(*value >> (8U * i));
		}
		if (c->out != NULL) {
			memcpy(c->out + c->pos, b, size);
		}
	}
	c->crc = tinyfix_crc32(c->crc, b, size);
	c->pos += size;
	return true;
}

static uint32_t load_elem(const uint8_t *p, uint8_t size)
{
	if (size == 1U) {
		return *p;
	}
	if (size == 2U) {
		uint16_t v;

		memcpy(&v, p, 2);
		return v;
	}
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static void store_elem(uint8_t *p, uint8_t size, uint32_t v)
{
	if (size == 1U) {
		*p = (uint8_t)v;
	} else if (size == 2U) {
		uint16_t h = (uint16_t)v;

		memcpy(p, &h, 2);
	} else {
		memcpy(p, &v, 4);
	}
}

static int32_t as_int(uint32_t raw, uint8_t size, uint8_t is_signed)
{
	if (!is_signed) {
		return (int32_t)raw;
	}
	if (size == 1U) {
		return (int8_t)raw;
	}
	if (size == 2U) {
		return (int16_t)raw;
	}
	return (int32_t)raw;
}

/*
 * Walks header and fields through the cursor: encodes from *p, or decodes into *p when the
 * cursor has input. Stops before the CRC.
 */
static int walk(struct cursor *c, struct tinyfix_params *p)
{
	uint32_t v[8] = {PARAMS_MAGIC, p->format_version, p->flags, p->model_crc,
			 p->n_classes, p->n_channels, p->n_features, p->output_kind};
	static const uint8_t hsize[8] = {4, 2, 2, 4, 2, 2, 2, 2};
	size_t i, k, n;

	for (i = 0; i < 8U; i++) {
		if (!move_le(c, &v[i], hsize[i])) {
			return TINYFIX_ERR_FORMAT;
		}
	}
	if (c->in != NULL) {
		if (v[0] != PARAMS_MAGIC) {
			return TINYFIX_ERR_FORMAT;
		}
		if (v[1] != TINYFIX_PARAMS_VERSION) {
			return TINYFIX_ERR_VERSION;
		}
		if (v[7] > 0xFFu) {
			return TINYFIX_ERR_FORMAT; /* output_kind travels in 16 bits, kept in 8 */
		}
		p->format_version = (uint16_t)v[1];
		p->flags = (uint16_t)v[2];
		p->model_crc = v[3];
		p->n_classes = (uint16_t)v[4];
		p->n_channels = (uint16_t)v[5];
		p->n_features = (uint16_t)v[6];
		p->output_kind = (uint8_t)v[7];
	}
	if (p->n_classes > TINYFIX_MAX_CLASSES || p->n_channels > TINYFIX_MAX_CHANNELS ||
	    p->n_features > TINYFIX_MAX_FEATURES) {
		return TINYFIX_ERR_CAPACITY;
	}
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const struct field *f = &fields[i];
		uint8_t *base = (uint8_t *)p + f->offset;

		n = field_count(f, p);
		for (k = 0; k < n; k++) {
			uint32_t e = c->in != NULL ? 0U : load_elem(base + k * f->size, f->size);

			if (!move_le(c, &e, f->size)) {
				return TINYFIX_ERR_FORMAT;
			}
			if (c->in != NULL) {
				store_elem(base + k * f->size, f->size, e);
			}
		}
	}
	return TINYFIX_OK;
}

size_t tinyfix_params_encoded_size(uint16_t n_classes, uint16_t n_channels, uint16_t n_features)
{
	struct tinyfix_params p;
	struct cursor c = {0};

	memset(&p, 0, sizeof(p));
	p.n_classes = n_classes;
	p.n_channels = n_channels;
	p.n_features = n_features;
	if (walk(&c, &p) != TINYFIX_OK) {
		return 0;
	}
	return c.pos + CRC_BYTES;
}

static uint32_t params_crc(const struct tinyfix_params *params, int *err)
{
	struct cursor c = {0};

	*err = walk(&c, (struct tinyfix_params *)params);
	return c.crc;
}

void tinyfix_params_seal(struct tinyfix_params *params)
{
	int err;
	uint32_t crc;

	if (params == NULL) {
		return;
	}
	crc = params_crc(params, &err);
	params->crc = err == TINYFIX_OK ? crc : 0U;
}

int tinyfix_params_encode(const struct tinyfix_params *params, uint8_t *buf, size_t size,
			  size_t *written)
{
	struct cursor c = {0};
	uint32_t crc;
	int err;

	if (params == NULL || buf == NULL) {
		return TINYFIX_ERR_ARG;
	}
	c.out = buf;
	c.size = size;
	err = walk(&c, (struct tinyfix_params *)params);
	if (err == TINYFIX_ERR_FORMAT) {
		return TINYFIX_ERR_CAPACITY; /* the buffer ran out */
	}
	if (err != TINYFIX_OK) {
		return TINYFIX_ERR_ARG;
	}
	crc = params->crc;
	if (!move_le(&c, &crc, CRC_BYTES)) {
		return TINYFIX_ERR_CAPACITY;
	}
	if (written != NULL) {
		*written = c.pos;
	}
	return TINYFIX_OK;
}

int tinyfix_params_decode(const uint8_t *buf, size_t size, struct tinyfix_params *params)
{
	struct cursor c = {0};
	uint32_t crc = 0;
	int err;

	if (params == NULL || buf == NULL) {
		return TINYFIX_ERR_ARG;
	}
	memset(params, 0, sizeof(*params));
	c.in = buf;
	c.size = size;
	err = walk(&c, params);
	if (err != TINYFIX_OK) {
		return err;
	}
	if (!move_le(&c, &crc, CRC_BYTES) || c.pos != size) {
		return TINYFIX_ERR_FORMAT;
	}
	params->crc = crc;
	return TINYFIX_OK;
}

/* Stages this build was compiled without. */
static const uint16_t compiled_out = (TINYFIX_WITH_VOTE ? 0U : TINYFIX_STAGE_VOTE) |
				     (TINYFIX_WITH_ANOMALY ? 0U : TINYFIX_STAGE_ANOMALY) |
				     (TINYFIX_WITH_INPUT ? 0U : TINYFIX_STAGE_INPUT) |
				     (TINYFIX_WITH_ADAPT ? 0U : TINYFIX_STAGE_ADAPT) |
				     (TINYFIX_WITH_MONITOR ? 0U : TINYFIX_STAGE_MONITOR) |
				     (TINYFIX_MAX_FEATURES > 0 ? 0U : TINYFIX_STAGE_HEAD);

static int check_ranges(const struct tinyfix_params *p)
{
	size_t i, k, n;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const struct field *f = &fields[i];
		const uint8_t *base = (const uint8_t *)p + f->offset;

		n = field_count(f, p);
		for (k = 0; k < n; k++) {
			int32_t v = as_int(load_elem(base + k * f->size, f->size), f->size,
					   f->is_signed);

			if (v < f->min || v > f->max) {
				return TINYFIX_ERR_RANGE;
			}
		}
	}
	if (p->output_kind > TINYFIX_OUTPUT_PROBS || (p->flags & ~TINYFIX_STAGE_ALL) != 0U ||
	    p->anomaly.class_index >= p->n_classes || p->anomaly.warmup > p->anomaly.window ||
	    (p->input.clip_k_q8 != 0U && p->input.clip_k_q8 < 128U)) {
		return TINYFIX_ERR_RANGE;
	}
	return TINYFIX_OK;
}

int tinyfix_params_validate(const struct tinyfix_params *params,
			    const struct tinyfix_model_info *model)
{
	int err;
	uint32_t crc;

	if (params == NULL || model == NULL) {
		return TINYFIX_ERR_ARG;
	}
	if (params->format_version != TINYFIX_PARAMS_VERSION) {
		return TINYFIX_ERR_VERSION;
	}
	crc = params_crc(params, &err);
	if (err != TINYFIX_OK) {
		return err;
	}
	if (crc != params->crc) {
		return TINYFIX_ERR_CRC;
	}
	if (params->model_crc != model->model_crc) {
		return TINYFIX_ERR_MODEL;
	}
	if (params->n_classes != model->n_classes ||
	    ((params->flags & TINYFIX_STAGE_INPUT) != 0U &&
	     params->n_channels != model->n_channels) ||
	    (params->n_features != 0U && params->n_features != model->n_features)) {
		return TINYFIX_ERR_CLASSES;
	}
	err = check_ranges(params);
	if (err != TINYFIX_OK) {
		return err;
	}
	/* Stages that need what this model or build does not have. */
	if ((params->flags & compiled_out) != 0U ||
	    ((params->flags & TINYFIX_STAGE_HEAD) != 0U &&
	     (params->n_features == 0U || model->output_type != TINYFIX_DTYPE_INT8)) ||
	    ((params->flags & TINYFIX_STAGE_VOTE) != 0U &&
	     params->vote.source == TINYFIX_VOTE_FROM_RAW &&
	     model->output_type != TINYFIX_DTYPE_INT8)) {
		return TINYFIX_ERR_UNSUPPORTED;
	}
	return TINYFIX_OK;
}

int tinyfix_params_identity(struct tinyfix_params *params, const struct tinyfix_model_info *model)
{
	uint16_t c;

	if (params == NULL || model == NULL) {
		return TINYFIX_ERR_ARG;
	}
	if (model->n_classes > TINYFIX_MAX_CLASSES || model->n_channels > TINYFIX_MAX_CHANNELS) {
		return TINYFIX_ERR_CAPACITY;
	}
	memset(params, 0, sizeof(*params));
	params->format_version = TINYFIX_PARAMS_VERSION;
	params->flags = TINYFIX_STAGE_SCALE;
	params->model_crc = model->model_crc;
	params->n_classes = model->n_classes;
	params->n_channels = model->n_channels;
	params->output_kind = TINYFIX_OUTPUT_LOGITS;
	params->inv_temperature = TINYFIX_Q16_ONE;
	for (c = 0; c < model->n_classes; c++) {
		params->class_scale[c] = TINYFIX_Q16_ONE;
	}
	/* RecognizeCommands' defaults: 1000 ms window, threshold 200, 1500 ms, 3 frames. */
	params->vote.threshold = 200;
	params->vote.min_count = TINYFIX_MAX_VOTE_FRAMES < 3 ? TINYFIX_MAX_VOTE_FRAMES : 3;
	params->vote.window_ms = 1000;
	params->vote.suppression_ms = 1500;
	/* Defaults must not depend on this build's capacity: a set made on the host (large
	 * capacities) has to pass a device's range check.
	 */
	params->anomaly.window = TINYFIX_MAX_ANOMALY_WINDOW < 32 ? TINYFIX_MAX_ANOMALY_WINDOW : 32;
	params->anomaly.warmup = params->anomaly.window < 8 ? params->anomaly.window : 8;
	params->anomaly.alpha_q8 = 3 * 256;
	params->input.stats_shift = 6;
	for (c = 0; c < model->n_channels; c++) {
		params->input.gain[c] = TINYFIX_Q16_ONE;
	}
	params->adapt.learning_rate = TINYFIX_Q16_ONE / 64;
	params->adapt.clamp = 2 * TINYFIX_Q16_ONE;
	params->adapt.head_clamp = 16;
	/* A monitor that never advises until the host stores reference figures. */
	params->monitor.rate_shift = 7;
	params->monitor.min_frames = 256;
	params->monitor.conf_drop = TINYFIX_Q15_ONE;
	params->monitor.prior_tv = TINYFIX_Q15_ONE;
	for (c = 0; c < model->n_channels; c++) {
		params->monitor.ref_in_std[c] = TINYFIX_Q16_ONE;
	}
	tinyfix_params_seal(params);
	return TINYFIX_OK;
}
