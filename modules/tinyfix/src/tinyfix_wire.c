/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * TinyFix wire protocol: framing and device-side payload codecs (docs/protocol.md).
 * Every multi-byte field is written byte by byte, so the code is independent of the
 * target's endianness and alignment.
 */

#include <string.h>

#include <tinyfix/tinyfix.h>
#include <tinyfix/wire.h>

#define COBS_FULL 0xFF

/* Payload sizes of the fixed parts (docs/protocol.md section 5). */
#define INFO_FIXED_LEN      24
#define TENSOR_FIXED_LEN    10
#define INFER_REQ_MIN_LEN   2
#define INFER_RSP_FIXED_LEN 22
#define CAPTURE_REQ_LEN     3
#define CAPTURE_RSP_FIXED   11
#define SETP_RSP_LEN        7
#define STATS_LEN           32
#define ERROR_FIXED_LEN     6

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static size_t str_len_max(const char *s, size_t max)
{
	size_t n = 0;

	if (s == NULL) {
		return 0;
	}
	while (n <= max && s[n] != '\0') {
		n++;
	}
	return n;
}

/*
 * Streaming COBS encoder, so that a frame's header, payload and CRC can be encoded from
 * three places without first copying them together. A block is opened lazily after a
 * full 0xFF block, which is what keeps a trailing 0x01 off the wire.
 */
struct cobs_enc {
	uint8_t *dst;
	size_t cap;
	size_t pos;
	size_t code_pos;
	uint8_t code;
	uint8_t open;
	uint8_t overflow;
};

static void enc_byte(struct cobs_enc *e, size_t at, uint8_t b)
{
	if (at < e->cap) {
		e->dst[at] = b;
	} else {
		e->overflow = 1U;
	}
}

static void enc_open(struct cobs_enc *e)
{
	e->code_pos = e->pos++;
	e->code = 1U;
	e->open = 1U;
}

static void enc_init(struct cobs_enc *e, uint8_t *dst, size_t cap, size_t pos)
{
	e->dst = dst;
	e->cap = cap;
	e->pos = pos;
	e->overflow = 0U;
	enc_open(e);
}

static void enc_put(struct cobs_enc *e, const uint8_t *src, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (!e->open) {
			enc_open(e);
		}
		if (src[i] == 0U) {
			enc_byte(e, e->code_pos, e->code);
			enc_open(e);
			continue;
		}
		enc_byte(e, e->pos++, src[i]);
		if (++e->code == COBS_FULL) {
			enc_byte(e, e->code_pos, e->code);
			e->open = 0U;
		}
	}
}

static void enc_finish(struct cobs_enc *e)
{
	if (e->open) {
		enc_byte(e, e->code_pos, e->code);
	}
}

int tinyfix_wire_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap)
{
	struct cobs_enc e;

	enc_init(&e, dst, cap, 0);
	enc_put(&e, src, len);
	enc_finish(&e);
	return e.overflow ? TINYFIX_WIRE_ERR_NO_SPACE : (int)e.pos;
}

int tinyfix_wire_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap)
{
	size_t in = 0;
	size_t out = 0;

	while (in < len) {
		uint8_t code = src[in++];

		if (code == 0U) {
			return TINYFIX_WIRE_ERR_FRAMING;
		}
		if ((size_t)(code - 1U) > len - in) {
			return TINYFIX_WIRE_ERR_FRAMING;
		}
		if (out + (size_t)(code - 1U) > cap) {
			return TINYFIX_WIRE_ERR_NO_SPACE;
		}
		for (uint8_t i = 1U; i < code; i++) {
			if (src[in] == 0U) {
				return TINYFIX_WIRE_ERR_FRAMING;
			}
			dst[out++] = src[in++];
		}
		/* The zero a block implies is dropped at the very end of the data. */
		if (code != COBS_FULL && in < len) {
			if (out >= cap) {
				return TINYFIX_WIRE_ERR_NO_SPACE;
			}
			dst[out++] = 0U;
		}
	}
	return (int)out;
}

int tinyfix_wire_frame_build(uint8_t type, uint16_t seq, uint8_t flags, const uint8_t *payload,
			     size_t payload_len, uint8_t *dst, size_t cap)
{
	uint8_t hdr[TINYFIX_WIRE_HDR_LEN];
	uint8_t trailer[TINYFIX_WIRE_CRC_LEN];
	struct cobs_enc e;
	uint32_t crc;

	if (payload_len > TINYFIX_WIRE_MAX_FRAME_LIMIT - TINYFIX_WIRE_OVERHEAD) {
		return TINYFIX_WIRE_ERR_TOO_LONG;
	}
	if (cap < 2U) {
		return TINYFIX_WIRE_ERR_NO_SPACE;
	}

	hdr[0] = TINYFIX_WIRE_VERSION;
	hdr[1] = type;
	put_u16(&hdr[2], seq);
	hdr[4] = flags;
	crc = tinyfix_crc32(0U, hdr, sizeof(hdr));
	if (payload_len > 0U) {
		crc = tinyfix_crc32(crc, payload, payload_len);
	}
	put_u32(trailer, crc);

	dst[0] = 0U;
	enc_init(&e, dst, cap - 1U, 1U);
	enc_put(&e, hdr, sizeof(hdr));
	if (payload_len > 0U) {
		enc_put(&e, payload, payload_len);
	}
	enc_put(&e, trailer, sizeof(trailer));
	enc_finish(&e);
	if (e.overflow) {
		return TINYFIX_WIRE_ERR_NO_SPACE;
	}
	dst[e.pos] = 0U;
	return (int)(e.pos + 1U);
}

static void hdr_from(const uint8_t *body, struct tinyfix_wire_frame *frame)
{
	frame->version = body[0];
	frame->type = body[1];
	frame->seq = get_u16(&body[2]);
	frame->flags = body[4];
	frame->has_hdr = 1U;
}

static void frame_clear(struct tinyfix_wire_frame *frame)
{
	memset(frame, 0, sizeof(*frame));
}

int tinyfix_wire_frame_parse(const uint8_t *body, size_t len, struct tinyfix_wire_frame *frame)
{
	size_t crc_at;
	uint32_t crc;

	frame_clear(frame);
	if (len >= TINYFIX_WIRE_HDR_LEN) {
		hdr_from(body, frame);
	}
	if (len < TINYFIX_WIRE_OVERHEAD) {
		return TINYFIX_WIRE_ERR_FRAMING;
	}
	crc_at = len - TINYFIX_WIRE_CRC_LEN;
	crc = get_u32(&body[crc_at]);
	if (tinyfix_crc32(0U, body, crc_at) != crc) {
		return TINYFIX_WIRE_ERR_CRC;
	}
	frame->crc = crc;
	frame->payload = &body[TINYFIX_WIRE_HDR_LEN];
	frame->payload_len = crc_at - TINYFIX_WIRE_HDR_LEN;
	return 0;
}

int tinyfix_wire_rx_init(struct tinyfix_wire_rx *rx, uint8_t *buf, size_t cap)
{
	if (cap < TINYFIX_WIRE_OVERHEAD || cap > TINYFIX_WIRE_MAX_FRAME_LIMIT) {
		return TINYFIX_WIRE_ERR_VALUE;
	}
	memset(rx, 0, sizeof(*rx));
	rx->buf = buf;
	rx->cap = cap;
	return 0;
}

void tinyfix_wire_rx_reset(struct tinyfix_wire_rx *rx)
{
	rx->len = 0U;
	rx->left = 0U;
	rx->code = 0U;
}

static void rx_emit(struct tinyfix_wire_rx *rx, uint8_t b)
{
	/* Past the buffer only the length is tracked, and it saturates at cap + 1. */
	if (rx->len < rx->cap) {
		rx->buf[rx->len] = b;
		rx->len++;
	} else {
		rx->len = rx->cap + 1U;
	}
}

static int rx_finish(struct tinyfix_wire_rx *rx, struct tinyfix_wire_frame *frame)
{
	int ret;

	frame_clear(frame);
	if (rx->len >= TINYFIX_WIRE_HDR_LEN) {
		hdr_from(rx->buf, frame);
	}
	if (rx->len > rx->cap) {
		ret = TINYFIX_WIRE_ERR_TOO_LONG;
	} else if (rx->left != 0U) {
		ret = TINYFIX_WIRE_ERR_FRAMING;
	} else {
		ret = tinyfix_wire_frame_parse(rx->buf, rx->len, frame);
	}

	if (ret == 0) {
		rx->frames_ok++;
		ret = TINYFIX_WIRE_RX_FRAME;
	} else if (ret == TINYFIX_WIRE_ERR_CRC) {
		rx->crc_errors++;
	} else {
		rx->framing_errors++;
	}
	return ret;
}

int tinyfix_wire_rx_feed(struct tinyfix_wire_rx *rx, uint8_t byte,
			 struct tinyfix_wire_frame *frame)
{
	int ret = 0;

	if (byte == 0U) {
		if (rx->code != 0U) {
			ret = rx_finish(rx, frame);
		}
		tinyfix_wire_rx_reset(rx);
		return ret;
	}
	if (rx->left == 0U) {
		/* A code byte; the zero implied by the previous block is now certain. */
		if (rx->code != 0U && rx->code != COBS_FULL) {
			rx_emit(rx, 0U);
		}
		rx->code = byte;
		rx->left = (uint8_t)(byte - 1U);
		return 0;
	}
	rx_emit(rx, byte);
	rx->left--;
	return 0;
}

int tinyfix_wire_rx_push(struct tinyfix_wire_rx *rx, const uint8_t *data, size_t len,
			 size_t *used, struct tinyfix_wire_frame *frame)
{
	for (size_t i = 0; i < len; i++) {
		int ret = tinyfix_wire_rx_feed(rx, data[i], frame);

		if (ret != 0) {
			*used = i + 1U;
			return ret;
		}
	}
	*used = len;
	return 0;
}

size_t tinyfix_wire_dtype_size(uint8_t dtype)
{
	switch (dtype) {
	case TINYFIX_WIRE_DTYPE_FLOAT32:
	case TINYFIX_WIRE_DTYPE_INT32:
		return 4U;
	case TINYFIX_WIRE_DTYPE_INT16:
		return 2U;
	case TINYFIX_WIRE_DTYPE_UINT8:
	case TINYFIX_WIRE_DTYPE_INT8:
		return 1U;
	default:
		return 0U;
	}
}

/* Bounded writer: after the first failure nothing more is written and that error is returned. */
struct writer {
	uint8_t *p;
	size_t cap;
	size_t pos;
	int err;
};

static void w_fail(struct writer *w, int err)
{
	/* The first error wins: it is the one worth reporting. */
	if (w->err == 0) {
		w->err = err;
	}
}

static uint8_t *w_take(struct writer *w, size_t n)
{
	uint8_t *at;

	if (w->err != 0) {
		return NULL;
	}
	if (n > w->cap - w->pos) {
		w_fail(w, TINYFIX_WIRE_ERR_NO_SPACE);
		return NULL;
	}
	at = &w->p[w->pos];
	w->pos += n;
	return at;
}

static void w_u8(struct writer *w, uint8_t v)
{
	uint8_t *p = w_take(w, 1U);

	if (p != NULL) {
		p[0] = v;
	}
}

static void w_u16(struct writer *w, uint16_t v)
{
	uint8_t *p = w_take(w, 2U);

	if (p != NULL) {
		put_u16(p, v);
	}
}

static void w_u32(struct writer *w, uint32_t v)
{
	uint8_t *p = w_take(w, 4U);

	if (p != NULL) {
		put_u32(p, v);
	}
}

static void w_bytes(struct writer *w, const void *src, size_t n)
{
	uint8_t *p = w_take(w, n);

	if (p != NULL && n > 0U) {
		memcpy(p, src, n);
	}
}

static void w_str(struct writer *w, const char *s, size_t max)
{
	size_t n = str_len_max(s, max);

	if (n > max) {
		w_fail(w, TINYFIX_WIRE_ERR_VALUE);
		return;
	}
	w_u8(w, (uint8_t)n);
	w_bytes(w, s, n);
}

static int w_done(const struct writer *w)
{
	return (w->err != 0) ? w->err : (int)w->pos;
}

static void w_init(struct writer *w, uint8_t *dst, size_t cap)
{
	w->p = dst;
	w->cap = cap;
	w->pos = 0U;
	w->err = 0;
}

static void w_tensor(struct writer *w, const struct tinyfix_wire_tensor *t)
{
	if (t->ndims > TINYFIX_WIRE_MAX_DIMS) {
		w_fail(w, TINYFIX_WIRE_ERR_VALUE);
		return;
	}
	w_u8(w, t->dtype);
	w_u8(w, t->ndims);
	for (uint8_t i = 0U; i < t->ndims; i++) {
		w_u16(w, t->dims[i]);
	}
	w_u32(w, t->scale_f32);
	w_u32(w, (uint32_t)t->zero_point);
}

int tinyfix_wire_info_encode(const struct tinyfix_wire_info *info, uint8_t *dst, size_t cap)
{
	struct writer w;

	w_init(&w, dst, cap);
	w_u8(&w, TINYFIX_WIRE_VERSION);
	w_u8(&w, info->caps);
	w_u16(&w, info->max_frame);
	w_u32(&w, info->model_crc);
	w_u32(&w, info->params_crc);
	w_u16(&w, info->params_format);
	w_u16(&w, info->n_classes);
	w_u16(&w, info->max_classes);
	w_u16(&w, info->max_window);
	w_u32(&w, info->cycle_hz);
	w_tensor(&w, &info->input);
	w_tensor(&w, &info->output);
	w_tensor(&w, &info->feature);
	w_str(&w, info->fw_version, TINYFIX_WIRE_STR_MAX);
	w_str(&w, info->board, TINYFIX_WIRE_STR_MAX);
	w_u8(&w, info->model_kind);
	w_u32(&w, info->n_outputs);
	w_u32(&w, info->max_params);
	w_u16(&w, info->max_features);
	w_u32(&w, info->max_head_weights);
	w_u16(&w, info->max_channels);
	w_u16(&w, info->max_anomaly_window);
	return w_done(&w);
}

int tinyfix_wire_infer_req_decode(const uint8_t *payload, size_t len,
				  struct tinyfix_wire_infer_req *req)
{
	if (len < INFER_REQ_MIN_LEN) {
		return TINYFIX_WIRE_ERR_LENGTH;
	}
	req->label = (int16_t)get_u16(payload);
	req->input = &payload[INFER_REQ_MIN_LEN];
	req->input_len = len - INFER_REQ_MIN_LEN;
	return 0;
}

int tinyfix_wire_infer_rsp_encode(const struct tinyfix_wire_infer_rsp *rsp, uint8_t *dst,
				  size_t cap)
{
	struct writer w;

	if ((rsp->raw == NULL && rsp->raw_len > 0U) || (rsp->prob == NULL && rsp->n_prob > 0U) ||
	    (rsp->features == NULL && rsp->n_features > 0U)) {
		return TINYFIX_WIRE_ERR_VALUE;
	}
	w_init(&w, dst, cap);
	w_u16(&w, (uint16_t)rsp->status);
	w_u16(&w, (uint16_t)rsp->top_class);
	w_u16(&w, (uint16_t)rsp->decision);
	w_u16(&w, rsp->top_conf);
	w_u32(&w, rsp->cycles_invoke);
	w_u32(&w, rsp->cycles_tinyfix);
	w_u16(&w, rsp->raw_len);
	w_u16(&w, rsp->n_prob);
	w_u16(&w, rsp->n_features);
	w_bytes(&w, rsp->raw, rsp->raw_len);
	for (uint16_t i = 0U; i < rsp->n_prob; i++) {
		w_u16(&w, rsp->prob[i]);
	}
	w_bytes(&w, rsp->features, rsp->n_features);
	w_u32(&w, (uint32_t)rsp->anomaly_score);
	w_u8(&w, rsp->flags);
	return w_done(&w);
}

int tinyfix_wire_write_req_decode(const uint8_t *payload, size_t len,
				  struct tinyfix_wire_write_req *req)
{
	if (len < TINYFIX_WIRE_WRITE_REQ_FIXED) {
		return TINYFIX_WIRE_ERR_LENGTH;
	}
	req->target = payload[0];
	req->offset = get_u32(&payload[1]);
	req->total = get_u32(&payload[5]);
	req->data = &payload[TINYFIX_WIRE_WRITE_REQ_FIXED];
	req->len = len - TINYFIX_WIRE_WRITE_REQ_FIXED;
	/* Written so that offset + len cannot wrap. */
	if (req->offset > req->total || req->len > (size_t)(req->total - req->offset)) {
		return TINYFIX_WIRE_ERR_LENGTH;
	}
	return 0;
}

int tinyfix_wire_write_rsp_encode(const struct tinyfix_wire_write_rsp *rsp, uint8_t *dst,
				  size_t cap)
{
	struct writer w;

	w_init(&w, dst, cap);
	w_u16(&w, (uint16_t)rsp->status);
	w_u8(&w, rsp->target);
	w_u32(&w, rsp->next);
	w_u32(&w, rsp->total);
	return w_done(&w);
}

int tinyfix_wire_read_req_decode(const uint8_t *payload, size_t len,
				 struct tinyfix_wire_read_req *req)
{
	if (len < TINYFIX_WIRE_READ_REQ_LEN) {
		return TINYFIX_WIRE_ERR_LENGTH;
	}
	req->target = payload[0];
	req->offset = get_u32(&payload[1]);
	req->max_len = get_u16(&payload[5]);
	return 0;
}

int tinyfix_wire_read_rsp_header(int16_t status, uint8_t target, uint32_t offset, uint32_t total,
				 uint8_t *dst, size_t cap)
{
	struct writer w;

	w_init(&w, dst, cap);
	w_u16(&w, (uint16_t)status);
	w_u8(&w, target);
	w_u32(&w, offset);
	w_u32(&w, total);
	return w_done(&w);
}

int tinyfix_wire_capture_req_decode(const uint8_t *payload, size_t len,
				    struct tinyfix_wire_capture_req *req)
{
	if (len < CAPTURE_REQ_LEN) {
		return TINYFIX_WIRE_ERR_LENGTH;
	}
	req->count = get_u16(payload);
	req->dtype = payload[2];
	if (req->count == 0U) {
		return TINYFIX_WIRE_ERR_VALUE;
	}
	if (req->dtype != TINYFIX_WIRE_DTYPE_FLOAT32 && req->dtype != TINYFIX_WIRE_DTYPE_INT8) {
		return TINYFIX_WIRE_ERR_UNSUPPORTED;
	}
	return 0;
}

int tinyfix_wire_capture_rsp_encode(const struct tinyfix_wire_capture_rsp *rsp, uint8_t *dst,
				    size_t cap)
{
	size_t size = tinyfix_wire_dtype_size(rsp->dtype);
	const uint8_t *src = rsp->data;
	struct writer w;

	if (size == 0U || (src == NULL && rsp->n_values > 0U)) {
		return TINYFIX_WIRE_ERR_VALUE;
	}
	w_init(&w, dst, cap);
	w_u16(&w, rsp->index);
	w_u16(&w, rsp->count);
	w_u32(&w, rsp->t_ms);
	w_u16(&w, rsp->n_values);
	w_u8(&w, rsp->dtype);
	if (size * rsp->n_values > cap - w.pos) {
		w_fail(&w, TINYFIX_WIRE_ERR_NO_SPACE);
	}
	/* Elements are in host order; memcpy keeps this free of aliasing and alignment traps. */
	for (uint16_t i = 0U; i < rsp->n_values && w.err == 0; i++) {
		const uint8_t *el = &src[(size_t)i * size];
		uint16_t v16;
		uint32_t v32;

		if (size == 4U) {
			memcpy(&v32, el, sizeof(v32));
			w_u32(&w, v32);
		} else if (size == 2U) {
			memcpy(&v16, el, sizeof(v16));
			w_u16(&w, v16);
		} else {
			w_u8(&w, el[0]);
		}
	}
	return w_done(&w);
}

int tinyfix_wire_setp_rsp_encode(const struct tinyfix_wire_setp_rsp *rsp, uint8_t *dst,
				 size_t cap)
{
	struct writer w;

	w_init(&w, dst, cap);
	w_u16(&w, (uint16_t)rsp->status);
	w_u32(&w, rsp->params_crc);
	w_u8(&w, rsp->persisted);
	return w_done(&w);
}

int tinyfix_wire_stats_encode(const struct tinyfix_wire_stats *stats, uint8_t *dst, size_t cap)
{
	struct writer w;

	w_init(&w, dst, cap);
	w_u32(&w, stats->uptime_ms);
	w_u32(&w, stats->frames_ok);
	w_u32(&w, stats->crc_errors);
	w_u32(&w, stats->framing_errors);
	w_u32(&w, stats->inferences);
	w_u32(&w, stats->params_crc);
	w_u32(&w, stats->drift_flags);
	w_u32(&w, stats->replays);
	w_u16(&w, stats->mean_conf);
	w_u16(&w, stats->prior_tv);
	w_u16(&w, stats->input_z_q8);
	w_u32(&w, stats->monitor_frames);
	return w_done(&w);
}

int tinyfix_wire_error_encode(const struct tinyfix_wire_error *err, uint8_t *dst, size_t cap)
{
	size_t n = str_len_max(err->text, TINYFIX_WIRE_TEXT_MAX);
	struct writer w;

	if (n > TINYFIX_WIRE_TEXT_MAX) {
		n = TINYFIX_WIRE_TEXT_MAX;
	}
	w_init(&w, dst, cap);
	w_u16(&w, (uint16_t)err->status);
	w_u16(&w, err->seq);
	w_u8(&w, err->type);
	w_u8(&w, (uint8_t)n);
	w_bytes(&w, err->text, n);
	return w_done(&w);
}

int tinyfix_wire_error_build(int16_t status, const struct tinyfix_wire_frame *req,
			     const char *text, uint8_t *dst, size_t cap)
{
	uint8_t payload[ERROR_FIXED_LEN + TINYFIX_WIRE_TEXT_MAX];
	struct tinyfix_wire_error err = {
		.status = status,
		.seq = req->has_hdr ? req->seq : 0U,
		.type = req->has_hdr ? req->type : 0U,
		.text = text,
	};
	int len = tinyfix_wire_error_encode(&err, payload, sizeof(payload));

	if (len < 0) {
		return len;
	}
	return tinyfix_wire_frame_build(TINYFIX_WIRE_MSG_ERROR, err.seq, TINYFIX_WIRE_FLAG_RESPONSE,
					payload, (size_t)len, dst, cap);
}
