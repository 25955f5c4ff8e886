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
#define HEADER_BYTES    24U /* magic .. head_columns */

enum count_kind {
	COUNT_ONE,
	COUNT_CLASSES,
	COUNT_CHANNELS,
	COUNT_HEAD_ROWS,    /* head_rows if the set has a head, else 0 */
	COUNT_HEAD_BITMAP,  /* bytes of the residual's column bitmap, else 0 */
	COUNT_HEAD_WEIGHTS, /* head_rows * (head_columns, or n_features for a whole layer) */
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
	S(anomaly.options, 0, 0, TINYFIX_ANOMALY_OPTIONS_ALL),
	S(anomaly.class_index, 0, 0, TINYFIX_MAX_CLASSES - 1),
	S(anomaly.window, 0, 2, TINYFIX_MAX_ANOMALY_WINDOW),
	S(anomaly.warmup, 0, 2, TINYFIX_MAX_ANOMALY_WINDOW),
	S(anomaly.alpha_q8, 0, 1, 65535),
	S(anomaly.min_dev, 1, 0, Q16(128)),
	S(anomaly.score_shift, 0, 0, 30),
	S(anomaly.seed_mean, 1, -Q16(128), Q16(128)),
	S(anomaly.seed_sigma, 1, 0, Q16(64)),
	S(anomaly.guard_q8, 0, 0, 65535),
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
	{offsetof(struct tinyfix_params, head.multiplier), 4, 1, COUNT_HEAD_ROWS, 1 << 30,
	 INT32_MAX},
	{offsetof(struct tinyfix_params, head.shift), 4, 1, COUNT_HEAD_ROWS, -31, 30},
	{offsetof(struct tinyfix_params, head.bias), 4, 1, COUNT_HEAD_ROWS, -(1 << 30), 1 << 30},
	{offsetof(struct tinyfix_params, head.columns), 1, 0, COUNT_HEAD_BITMAP, 0, 255},
	{offsetof(struct tinyfix_params, head.weights), 1, 1, COUNT_HEAD_WEIGHTS, -127, 127},
#endif
};

struct cursor {
	uint8_t *out;       /* NULL: only count and checksum */
	const uint8_t *in;  /* decoding source, or NULL */
	size_t size;
	size_t pos;
	uint32_t crc;
	/* Range encoding: out receives only blob bytes [skip, skip + size). */
	bool range;
	size_t skip;
};

/* The counts that size the blob's arrays. */
struct counts {
	uint16_t classes;
	uint16_t channels;
	uint16_t features;
	uint16_t rows;
	uint16_t columns;
};

static struct counts counts_of(const struct tinyfix_params *p)
{
	struct counts n = {p->n_classes, p->n_channels, p->n_features, p->head_rows,
			   p->head_columns};

	return n;
}

static size_t head_weight_count(const struct counts *n)
{
	if (n->features == 0U) {
		return 0U;
	}
	return (size_t)n->rows * (n->columns > 0U ? n->columns : n->features);
}

static size_t field_count(const struct field *f, const struct counts *n)
{
	switch (f->count) {
	case COUNT_CLASSES:
		return n->classes;
	case COUNT_CHANNELS:
		return n->channels;
	case COUNT_HEAD_ROWS:
		return n->features > 0U ? n->rows : 0U;
	case COUNT_HEAD_BITMAP:
		return n->features > 0U && n->columns > 0U ? (n->features + 7U) / 8U : 0U;
	case COUNT_HEAD_WEIGHTS:
		return head_weight_count(n);
	default:
		return 1U;
	}
}

/* Counts this build can hold (else TINYFIX_ERR_CAPACITY). */
static bool fits_build(const struct counts *n)
{
	if (n->classes > TINYFIX_MAX_CLASSES || n->channels > TINYFIX_MAX_CHANNELS ||
	    n->features > TINYFIX_MAX_FEATURES) {
		return false;
	}
	return n->features == 0U || (n->rows <= TINYFIX_MAX_CLASSES && n->columns <= n->features &&
				     head_weight_count(n) <= (size_t)TINYFIX_MAX_HEAD_WEIGHTS);
}

/* Copies the encoded bytes that fall in the wanted range of a range cursor. */
static void range_put(struct cursor *c, const uint8_t *b, uint8_t size)
{
	for (uint8_t i = 0; i < size; i++) {
		size_t at = c->pos + i;

		if (at >= c->skip && at - c->skip < c->size) {
			c->out[at - c->skip] = b[i];
		}
	}
}

/* Moves size bytes between the cursor and *value (little-endian), and checksums them. */
static bool move_le(struct cursor *c, uint32_t *value, uint8_t size)
{
	uint8_t b[4];
	uint8_t i;

	if (!c->range && (c->in != NULL || c->out != NULL)) {
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
		if (c->range) {
			range_put(c, b, size);
		} else if (c->out != NULL) {
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
	uint32_t v[10] = {PARAMS_MAGIC, p->format_version, p->flags,      p->model_crc,
			  p->n_classes, p->n_channels,     p->n_features, p->output_kind,
			  p->head_rows, p->head_columns};
	static const uint8_t hsize[10] = {4, 2, 2, 4, 2, 2, 2, 2, 2, 2};
	struct counts counts;
	size_t i, k, n;

	for (i = 0; i < 10U; i++) {
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
		p->head_rows = (uint16_t)v[8];
		p->head_columns = (uint16_t)v[9];
	}
	counts = counts_of(p);
	if (!fits_build(&counts)) {
		return TINYFIX_ERR_CAPACITY;
	}
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const struct field *f = &fields[i];
		uint8_t *base = (uint8_t *)p + f->offset;

		n = field_count(f, &counts);
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

size_t tinyfix_params_encoded_size(uint16_t n_classes, uint16_t n_channels, uint16_t n_features,
				   uint16_t head_rows, uint16_t head_columns)
{
	const struct counts n = {n_classes, n_channels, n_features, head_rows, head_columns};
	size_t size = HEADER_BYTES + CRC_BYTES;
	size_t i;

	if (!fits_build(&n)) {
		return 0;
	}
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		size += field_count(&fields[i], &n) * fields[i].size;
	}
	return size;
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

int tinyfix_params_encode_range(const struct tinyfix_params *params, size_t offset, uint8_t *buf,
				size_t len, size_t *total)
{
	struct cursor c = {0};
	uint32_t crc;
	size_t end;

	if (params == NULL || (buf == NULL && len > 0U)) {
		return TINYFIX_ERR_ARG;
	}
	c.out = buf;
	c.size = len;
	c.range = true;
	c.skip = offset;
	if (walk(&c, (struct tinyfix_params *)params) != TINYFIX_OK) {
		return TINYFIX_ERR_ARG;
	}
	crc = params->crc;
	(void)move_le(&c, &crc, CRC_BYTES);
	if (total != NULL) {
		*total = c.pos;
	}
	if (offset >= c.pos) {
		return 0;
	}
	end = c.pos - offset < len ? c.pos - offset : len;
	return (int)end;
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
	const struct counts counts = counts_of(p);
	size_t i, k, n;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const struct field *f = &fields[i];
		const uint8_t *base = (const uint8_t *)p + f->offset;

		n = field_count(f, &counts);
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

#if TINYFIX_MAX_FEATURES > 0
/* A residual's bitmap names exactly head_columns features, all below n_features. */
static int check_head_columns(const struct tinyfix_params *p)
{
	const uint16_t n_f = p->n_features;
	uint32_t set = 0;

	if (n_f == 0U || p->head_columns == 0U) {
		return TINYFIX_OK;
	}
	for (uint16_t f = 0; f < (uint16_t)((n_f + 7U) & ~7U); f++) {
		if ((p->head.columns[f / 8U] >> (f % 8U)) & 1U) {
			if (f >= n_f) {
				return TINYFIX_ERR_RANGE;
			}
			set++;
		}
	}
	return set == p->head_columns ? TINYFIX_OK : TINYFIX_ERR_RANGE;
}
#else
static int check_head_columns(const struct tinyfix_params *p)
{
	(void)p;
	return TINYFIX_OK;
}
#endif

/* Stages that need what this model or build does not have. */
static int check_stages(const struct tinyfix_params *p, const struct tinyfix_model_info *m)
{
	const bool head = (p->flags & TINYFIX_STAGE_HEAD) != 0U;
	const bool vote = (p->flags & TINYFIX_STAGE_VOTE) != 0U;
	const bool whole_layer = p->head_columns == 0U;

	if ((p->flags & compiled_out) != 0U) {
		return TINYFIX_ERR_UNSUPPORTED;
	}
	/* A whole layer writes the model's int8 output; a residual adds to any kind's logits. */
	if (head && (p->n_features == 0U || m->kind == TINYFIX_MODEL_AUTOENCODER ||
		     (whole_layer && m->output_type != TINYFIX_DTYPE_INT8))) {
		return TINYFIX_ERR_UNSUPPORTED;
	}
	/* Raw scores per class exist only for a classifier's int8 output. */
	if (vote &&
	    (m->kind == TINYFIX_MODEL_AUTOENCODER ||
	     (p->vote.source == TINYFIX_VOTE_FROM_RAW &&
	      (m->output_type != TINYFIX_DTYPE_INT8 || m->kind != TINYFIX_MODEL_CLASSIFIER)))) {
		return TINYFIX_ERR_UNSUPPORTED;
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
	    (params->n_features != 0U && (params->n_features != model->n_features ||
					  params->head_rows != tf_model_outputs(model)))) {
		return TINYFIX_ERR_CLASSES;
	}
	err = check_ranges(params);
	if (err != TINYFIX_OK) {
		return err;
	}
	err = check_head_columns(params);
	if (err != TINYFIX_OK) {
		return err;
	}
	return check_stages(params, model);
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
