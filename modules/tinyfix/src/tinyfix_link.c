/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * TinyFix device link: executes the requests of docs/protocol.md against a tinyfix context.
 * Everything is synchronous: a request is answered (or its CAPTURE stream sent) before the
 * next received byte is looked at, so the receive buffer, the scratch buffer and the kept
 * response are never in use twice.
 */

#include <string.h>

#include <tinyfix/link.h>
#include <tinyfix/tinyfix.h>
#include <tinyfix/wire.h>

#ifdef TINYFIX_NO_ERRMSG
#define TEXT(s) NULL
#else
#define TEXT(s) (s)
#endif

/* Fixed payload bytes (docs/protocol.md section 5) that sizes are checked against. */
#define INFER_RSP_FIXED_LEN 22
#define INFER_RSP_APPENDED  5 /* anomaly_score, flags */
#define CAPTURE_RSP_FIXED   11

static uint32_t cycles_now(const struct tinyfix_link *link)
{
	return (link->ops->cycles != NULL) ? link->ops->cycles(link->user) : 0U;
}

static uint32_t uptime_now(const struct tinyfix_link *link)
{
	return (link->ops->uptime_ms != NULL) ? link->ops->uptime_ms(link->user) : 0U;
}

/* Elements of a tensor; 0 for a descriptor without dims. */
static size_t tensor_elements(const struct tinyfix_wire_tensor *t)
{
	size_t n = 1U;

	if (t->ndims == 0U || t->ndims > TINYFIX_WIRE_MAX_DIMS) {
		return 0U;
	}
	for (uint8_t i = 0U; i < t->ndims; i++) {
		n *= t->dims[i];
	}
	return n;
}

/* Elements of the model's output tensor (the core's tf_model_outputs(), not exported). */
static size_t tf_link_outputs(const struct tinyfix_model_info *m)
{
	return m->n_outputs != 0U ? m->n_outputs : m->n_classes;
}

static uint8_t core_output_dtype(enum tinyfix_dtype dtype)
{
	switch (dtype) {
	case TINYFIX_DTYPE_INT8:
		return TINYFIX_WIRE_DTYPE_INT8;
	case TINYFIX_DTYPE_INT16:
		return TINYFIX_WIRE_DTYPE_INT16;
	case TINYFIX_DTYPE_FLOAT32:
		return TINYFIX_WIRE_DTYPE_FLOAT32;
	default:
		return TINYFIX_WIRE_DTYPE_NONE;
	}
}

static uint8_t caps_of(const struct tinyfix_link *link)
{
	uint8_t caps = 0U;

	if (link->ops->capture != NULL) {
		caps |= TINYFIX_WIRE_CAP_CAPTURE;
	}
	if (link->n_features > 0U) {
		caps |= TINYFIX_WIRE_CAP_FEATURES;
	}
	if (link->ops->persist != NULL) {
		caps |= TINYFIX_WIRE_CAP_PERSIST;
	}
	caps |= TINYFIX_WIRE_CAP_CHUNKS;
	if (link->ops->reset_model != NULL) {
		caps |= TINYFIX_WIRE_CAP_MODEL_RESET;
	}
#if TINYFIX_WITH_ADAPT
	caps |= TINYFIX_WIRE_CAP_ADAPT;
#endif
#if TINYFIX_USE_FLOAT
	caps |= TINYFIX_WIRE_CAP_FLOAT;
#endif
	return caps;
}

/*
 * FNV-1a over the header fields and payload. The frame CRC alone cannot tell two requests
 * apart whose payload ends with its own CRC32, as every parameter blob does: the CRC32 of
 * header, blob and blob CRC depends only on the header and the blob's length.
 */
static uint32_t request_hash(const struct tinyfix_wire_frame *req)
{
	const uint8_t hdr[4] = {req->version, req->type, req->flags, (uint8_t)req->payload_len};
	uint32_t h = 2166136261U;

	for (size_t i = 0; i < sizeof(hdr); i++) {
		h = (h ^ hdr[i]) * 16777619U;
	}
	for (size_t i = 0; i < req->payload_len; i++) {
		h = (h ^ req->payload[i]) * 16777619U;
	}
	return h;
}

/* ---- Sending ----------------------------------------------------------------------------- */

static void keep(struct tinyfix_link *link, const struct tinyfix_wire_frame *req, int wire_len)
{
	link->kept_len = (size_t)wire_len;
	link->kept_seq = req->seq;
	link->kept_crc = req->crc;
	link->kept_hash = request_hash(req);
}

/* Answer a request with ERROR; the reply is kept, so a repeat gets the same answer. */
static void reply_error(struct tinyfix_link *link, const struct tinyfix_wire_frame *req,
			int status, const char *text)
{
	int n = tinyfix_wire_error_build((int16_t)status, req, text, link->tx, link->tx_size);

	if (n > 0) {
		keep(link, req, n);
		link->ops->write(link->user, link->tx, (size_t)n);
	}
}

/*
 * Frame the payload in scratch as the response to req, keep it and send it. In a CAPTURE
 * stream each window replaces the previous one, so the last window is what stays kept.
 */
static void reply(struct tinyfix_link *link, const struct tinyfix_wire_frame *req, uint8_t flags,
		  int payload_len)
{
	int n = payload_len;

	if (n >= 0) {
		n = tinyfix_wire_frame_build(req->type, req->seq,
					     TINYFIX_WIRE_FLAG_RESPONSE | flags, link->scratch,
					     (size_t)payload_len, link->tx, link->tx_size);
	}
	if (n < 0) {
		/* Sizes were checked at init; what is left is a response beyond max_frame. */
		reply_error(link, req, TINYFIX_WIRE_ERR_TOO_LONG,
			    TEXT("response exceeds max_frame"));
		return;
	}
	keep(link, req, n);
	link->ops->write(link->user, link->tx, (size_t)n);
}

/* A damaged frame with a readable header: ERROR so the host retries now. Never kept. */
static void reply_link_error(struct tinyfix_link *link, const struct tinyfix_wire_frame *f,
			     int status)
{
	const char *text = NULL;
	int n;

	if (status == TINYFIX_WIRE_ERR_CRC) {
		text = TEXT("frame CRC mismatch");
	} else if (status == TINYFIX_WIRE_ERR_TOO_LONG) {
		text = TEXT("frame longer than max_frame");
	} else {
		text = TEXT("bad framing");
	}
	n = tinyfix_wire_error_build((int16_t)status, f, text, link->err_wire,
				     sizeof(link->err_wire));
	if (n > 0) {
		link->ops->write(link->user, link->err_wire, (size_t)n);
	}
}

/* ---- Requests ---------------------------------------------------------------------------- */

void tinyfix_link_info(const struct tinyfix_link *link, struct tinyfix_wire_info *info)
{
	const struct tinyfix_model_info *m = &link->ctx->model;

	*info = link->info;
	info->caps = caps_of(link);
	info->max_frame = (uint16_t)link->rx.cap;
	info->params_crc = link->ctx->params.crc;
	info->params_format = link->ctx->params.format_version;
	info->n_classes = m->n_classes;
	info->max_classes = TINYFIX_MAX_CLASSES;
	info->max_window = TINYFIX_MAX_VOTE_FRAMES;
	info->model_kind = m->kind;
	info->n_outputs = (uint32_t)(m->n_outputs != 0U ? m->n_outputs : m->n_classes);
	info->max_params = (uint32_t)link->max_params;
	info->max_features = TINYFIX_MAX_FEATURES;
	info->max_head_weights = TINYFIX_MAX_FEATURES > 0 ? (uint32_t)TINYFIX_MAX_HEAD_WEIGHTS : 0U;
	info->max_channels = TINYFIX_MAX_CHANNELS;
	info->max_anomaly_window = TINYFIX_MAX_ANOMALY_WINDOW;
}

static void do_info(struct tinyfix_link *link, const struct tinyfix_wire_frame *req)
{
	struct tinyfix_wire_info info;

	tinyfix_link_info(link, &info);
	reply(link, req, 0U, tinyfix_wire_info_encode(&info, link->scratch, link->scratch_size));
}

/* The INFER decision: a detection starting on this frame when voting, else the threshold's. */
static int16_t decision_of(const struct tinyfix_ctx *ctx, const struct tinyfix_result *res)
{
	if (ctx->model.kind != TINYFIX_MODEL_AUTOENCODER &&
	    (ctx->params.flags & TINYFIX_STAGE_VOTE) != 0U) {
		return res->vote_event ? res->vote_class : (int16_t)TINYFIX_NO_DECISION;
	}
	return res->decision;
}

static int invoke_model(struct tinyfix_link *link, const uint8_t *input, size_t len,
			const int8_t **features, uint32_t *cycles)
{
	uint32_t start = cycles_now(link);
	const uint8_t *raw = NULL;
	int err;

	*cycles = 0U;
	link->last_raw = NULL;
	link->last_features = NULL;
	err = link->ops->invoke(link->user, input, len, &raw, features, cycles);
	if (*cycles == 0U) {
		*cycles = cycles_now(link) - start;
	}
	if (err < 0 && (err > TINYFIX_WIRE_ERR_TYPE || err < TINYFIX_WIRE_ERR_NO_SPACE)) {
		err = TINYFIX_WIRE_ERR_INVOKE;
	}
	if (err == 0 && (raw == NULL || (features != NULL && *features == NULL))) {
		err = TINYFIX_WIRE_ERR_INVOKE; /* the platform did not say where its tensors are */
	}
	if (err == 0) {
		link->last_raw = raw;
		link->last_features = features != NULL ? *features : NULL;
	}
	return err;
}

/* Where the INFER input comes from: the request itself, or the tensor WRITE filled. */
static int infer_input(struct tinyfix_link *link, const struct tinyfix_wire_frame *req,
		       const struct tinyfix_wire_infer_req *in, const uint8_t **input)
{
	if ((req->flags & TINYFIX_WIRE_FLAG_STAGED) == 0U) {
		*input = in->input;
		return in->input_len == link->input_len ? 0 : TINYFIX_WIRE_ERR_LENGTH;
	}
	if (in->input_len != 0U) {
		return TINYFIX_WIRE_ERR_LENGTH;
	}
	if (link->input_tensor == NULL || link->staged_input.total != link->input_len ||
	    link->staged_input.received != link->input_len) {
		return TINYFIX_WIRE_ERR_VALUE;
	}
	*input = link->input_tensor;
	if (link->ctx->model.kind == TINYFIX_MODEL_AUTOENCODER) {
		if (link->recon == NULL) {
			return TINYFIX_WIRE_ERR_UNSUPPORTED;
		}
		/* Invoke() may reuse the input tensor; the reconstruction error needs it after. */
		memcpy(link->recon, link->input_tensor, link->input_len);
	}
	return 0;
}

/* Run the core on the frame the model produced. */
static int correct(struct tinyfix_link *link, const struct tinyfix_wire_frame *req,
		   const uint8_t *input, const int8_t *features)
{
	struct tinyfix_ctx *ctx = link->ctx;
	struct tinyfix_result *res = &link->result;
	const uint8_t *recon_input = input == link->input_tensor ? link->recon : input;
	int32_t now;
	int err;

	if ((req->flags & TINYFIX_WIRE_FLAG_RESET) != 0U) {
		tinyfix_reset_stream(ctx);
	}
	now = (int32_t)(uptime_now(link) & INT32_MAX);
	if (ctx->model.kind == TINYFIX_MODEL_AUTOENCODER) {
		return tinyfix_process_recon(ctx, (const int8_t *)recon_input, link->last_raw, now,
					     res);
	}
	err = tinyfix_process(ctx, link->last_raw, features, now, res);
	if (err == TINYFIX_ERR_TIME) {
		/* The uptime wrapped (after 24.8 days): the voting window starts afresh. */
		tinyfix_reset_stream(ctx);
		err = tinyfix_process(ctx, link->last_raw, features, now, res);
	}
	return err;
}

/* The response carries raw output and features when they fit its frame; else READ them. */
static void fill_infer_rsp(struct tinyfix_link *link, struct tinyfix_wire_infer_rsp *rsp,
			   bool send_features)
{
	const struct tinyfix_ctx *ctx = link->ctx;
	const bool recon = ctx->model.kind == TINYFIX_MODEL_AUTOENCODER;
	size_t room = link->scratch_size - INFER_RSP_FIXED_LEN - INFER_RSP_APPENDED;

	rsp->prob = link->result.prob;
	rsp->n_prob = recon ? 0U : ctx->model.n_classes;
	room -= 2U * rsp->n_prob;
	if (link->raw_len <= room) {
		rsp->raw = link->last_raw;
		rsp->raw_len = (uint16_t)link->raw_len;
		room -= link->raw_len;
	} else {
		rsp->flags |= TINYFIX_WIRE_INFER_RAW_DEFERRED;
	}
	if (send_features) {
		if (link->n_features <= room) {
			rsp->features = link->last_features;
			rsp->n_features = link->n_features;
		} else {
			rsp->flags |= TINYFIX_WIRE_INFER_FEAT_DEFERRED;
		}
	}
}

static void do_infer(struct tinyfix_link *link, const struct tinyfix_wire_frame *req)
{
	struct tinyfix_ctx *ctx = link->ctx;
	struct tinyfix_result *res = &link->result;
	struct tinyfix_wire_infer_req in;
	struct tinyfix_wire_infer_rsp rsp;
	bool send_features = (req->flags & TINYFIX_WIRE_FLAG_FEATURES) != 0U &&
			     link->n_features > 0U;
	/* The head stage reads the features whatever the host asked. */
	bool head = (ctx->params.flags & TINYFIX_STAGE_HEAD) != 0U && link->n_features > 0U &&
		    ctx->model.n_features == link->n_features;
	const int8_t *features = NULL;
	const uint8_t *input = NULL;
	uint32_t start;
	int err;

	err = tinyfix_wire_infer_req_decode(req->payload, req->payload_len, &in);
	if (err == 0) {
		err = infer_input(link, req, &in, &input);
	}
	if (err != 0) {
		reply_error(link, req, err,
			    err == TINYFIX_WIRE_ERR_VALUE
				    ? TEXT("no complete staged input: WRITE it first")
				    : TEXT("input must be exactly the input tensor"));
		return;
	}
	if (in.label < -1 || in.label >= (int16_t)ctx->model.n_classes) {
		reply_error(link, req, TINYFIX_WIRE_ERR_VALUE, TEXT("label out of range"));
		return;
	}
	/* Invoke() consumes the input tensor: a staged input is used once. */
	link->staged_input.total = 0U;
	link->staged_input.received = 0U;

	/* A model without state (no reset op) starts afresh anyway. */
	if ((req->flags & TINYFIX_WIRE_FLAG_MODEL_RESET) != 0U && link->ops->reset_model != NULL &&
	    link->ops->reset_model(link->user) != 0) {
		reply_error(link, req, TINYFIX_WIRE_ERR_INVOKE, TEXT("model reset failed"));
		return;
	}
	memset(&rsp, 0, sizeof(rsp));
	err = invoke_model(link, input, link->input_len, (send_features || head) ? &features : NULL,
			   &rsp.cycles_invoke);
	if (err != 0) {
		reply_error(link, req, err, TEXT("model invoke failed"));
		return;
	}
	link->inferences++;

	start = cycles_now(link);
	err = correct(link, req, input, head ? features : NULL);
#if TINYFIX_WITH_ADAPT
	if (err == TINYFIX_OK && in.label >= 0 && (ctx->params.flags & TINYFIX_STAGE_ADAPT) != 0U) {
		/* Cannot fail here: the label is in range and the stage is on. */
		(void)tinyfix_adapt_label(ctx, res, in.label);
	}
#endif
	rsp.cycles_tinyfix = cycles_now(link) - start;

	if (err == TINYFIX_OK) {
		rsp.top_class = res->top_class;
		rsp.decision = decision_of(ctx, res);
		rsp.top_conf = res->top_prob;
		rsp.anomaly_score = res->anomaly_score;
		rsp.flags = res->anomaly ? TINYFIX_WIRE_INFER_ANOMALY : 0U;
	} else {
		memset(res->prob, 0, sizeof(res->prob));
		rsp.status = (int16_t)err;
		rsp.top_class = -1;
		rsp.decision = (int16_t)TINYFIX_NO_DECISION;
	}
	fill_infer_rsp(link, &rsp, send_features);
	reply(link, req, 0U,
	      tinyfix_wire_infer_rsp_encode(&rsp, link->scratch, link->scratch_size));
}

static void do_capture(struct tinyfix_link *link, const struct tinyfix_wire_frame *req)
{
	struct tinyfix_wire_capture_req in;
	struct tinyfix_wire_capture_rsp rsp;
	/* The window is read into tx, which is free until its frame is built there. */
	size_t align = (size_t)((4U - ((uintptr_t)link->tx & 3U)) & 3U);
	void *values = &link->tx[align];
	size_t cap = link->scratch_size - CAPTURE_RSP_FIXED;
	size_t size;
	int err;

	err = tinyfix_wire_capture_req_decode(req->payload, req->payload_len, &in);
	if (err == 0 && link->ops->capture == NULL) {
		err = TINYFIX_WIRE_ERR_UNSUPPORTED;
	}
	if (err != 0) {
		reply_error(link, req, err, TEXT("cannot capture that"));
		return;
	}
	size = tinyfix_wire_dtype_size(in.dtype);
	if (cap > link->tx_size - align) {
		cap = link->tx_size - align;
	}
	for (uint16_t i = 0U; i < in.count; i++) {
		uint16_t n_values = 0U;
		uint32_t t_ms = 0U;
		bool last = (uint16_t)(i + 1U) == in.count;

		err = link->ops->capture(link->user, in.dtype, values, cap, &n_values, &t_ms);
		if (err == 0 && (size_t)n_values * size > cap) {
			err = TINYFIX_WIRE_ERR_SENSOR;
		}
		if (err != 0) {
			reply_error(link, req, err < 0 ? err : TINYFIX_WIRE_ERR_SENSOR,
				    TEXT("sensor read failed"));
			return;
		}
		rsp.index = i;
		rsp.count = in.count;
		rsp.t_ms = t_ms;
		rsp.n_values = n_values;
		rsp.dtype = in.dtype;
		rsp.data = values;
		reply(link, req, last ? 0U : TINYFIX_WIRE_FLAG_MORE,
		      tinyfix_wire_capture_rsp_encode(&rsp, link->scratch, link->scratch_size));
	}
}

static void do_get_params(struct tinyfix_link *link, const struct tinyfix_wire_frame *req)
{
	size_t written = 0U;
	int err = tinyfix_params_encode(&link->ctx->params, link->scratch, link->scratch_size,
					&written);

	if (err != TINYFIX_OK) {
		reply_error(link, req, TINYFIX_WIRE_ERR_TOO_LONG,
			    TEXT("parameter set exceeds max_frame: READ it"));
		return;
	}
	reply(link, req, 0U, (int)written);
}

int tinyfix_link_apply_params(struct tinyfix_link *link, const uint8_t *blob, size_t len,
			      bool persist, struct tinyfix_wire_setp_rsp *rsp)
{
	int err = tinyfix_params_decode(blob, len, &link->staging);

	if (err == TINYFIX_OK) {
		/* Validation and the switch are one call: a refused set leaves the old one. */
		err = tinyfix_set_params(link->ctx, &link->staging);
	}
	memset(rsp, 0, sizeof(*rsp));
	rsp->status = (int16_t)err;
	rsp->params_crc = link->ctx->params.crc;
	if (err == TINYFIX_OK && persist && link->ops->persist != NULL) {
		/* The blob is exactly the one the core accepted. */
		rsp->persisted = link->ops->persist(link->user, blob, len) == 0 ? 1U : 0U;
	}
	return err;
}

int tinyfix_link_apply_staged_params(struct tinyfix_link *link, bool persist,
				     struct tinyfix_wire_setp_rsp *rsp)
{
	struct tinyfix_link_staging *st = &link->staged_params;
	size_t len = st->total;

	if (link->params_buf == NULL || st->total == 0U || st->received != st->total) {
		return TINYFIX_WIRE_ERR_VALUE;
	}
	/* A staged blob is judged once; a refused one is not kept to be retried. */
	st->total = 0U;
	st->received = 0U;
	return tinyfix_link_apply_params(link, link->params_buf, len, persist, rsp);
}

static void do_set_params(struct tinyfix_link *link, const struct tinyfix_wire_frame *req)
{
	struct tinyfix_wire_setp_rsp rsp;
	bool persist = (req->flags & TINYFIX_WIRE_FLAG_NO_PERSIST) == 0U;

	if ((req->flags & TINYFIX_WIRE_FLAG_STAGED) != 0U) {
		if (req->payload_len != 0U ||
		    tinyfix_link_apply_staged_params(link, persist, &rsp) ==
			    TINYFIX_WIRE_ERR_VALUE) {
			reply_error(link, req, TINYFIX_WIRE_ERR_VALUE,
				    TEXT("no complete staged parameter set: WRITE it first"));
			return;
		}
	} else {
		(void)tinyfix_link_apply_params(link, req->payload, req->payload_len, persist, &rsp);
	}
	reply(link, req, 0U, tinyfix_wire_setp_rsp_encode(&rsp, link->scratch, link->scratch_size));
}

/*
 * One chunk of an object being staged (docs/protocol.md 5.7): offset 0 (re)starts it, the
 * chunk at the received count extends it, any other chunk (a repeat, or one after a gap)
 * changes nothing, so the sender resumes at st->received. The caller checked total and len
 * against the destination.
 */
static int stage_chunk(struct tinyfix_link_staging *st, uint8_t *dest, uint32_t offset,
		       uint32_t total, const uint8_t *data, size_t len)
{
	if (offset == 0U) {
		st->total = total;
		st->received = 0U;
	} else if (total != st->total) {
		return TINYFIX_WIRE_ERR_VALUE;
	}
	if (offset == st->received && len > 0U) {
		memcpy(&dest[offset], data, len);
		st->received += (uint32_t)len;
	}
	return 0;
}

int tinyfix_link_stage_params(struct tinyfix_link *link, uint32_t offset, uint32_t total,
			      const uint8_t *data, size_t len)
{
	struct tinyfix_link_staging *st = &link->staged_params;

	if (link->params_buf == NULL) {
		return TINYFIX_WIRE_ERR_UNSUPPORTED;
	}
	if (total == 0U || total > link->params_buf_size || (size_t)offset + len > total ||
	    (data == NULL && len > 0U)) {
		return TINYFIX_WIRE_ERR_VALUE;
	}
	if (offset != 0U && total != st->total) {
		return TINYFIX_WIRE_ERR_VALUE;
	}
	(void)stage_chunk(st, link->params_buf, offset, total, data, len);
	return (int)st->received;
}

/*
 * One WRITE chunk, with the rules of docs/protocol.md 5.7: offset 0 (re)starts the object,
 * the chunk at the received count extends it, and any other chunk (a repeat or one after a
 * gap) changes nothing. The reply always says how far the object got, so the host resumes
 * there: no chunk is applied twice and none is skipped.
 */
static void do_write(struct tinyfix_link *link, const struct tinyfix_wire_frame *req)
{
	struct tinyfix_wire_write_req in;
	struct tinyfix_wire_write_rsp rsp = {0};
	struct tinyfix_link_staging *st;
	uint8_t *dest;
	size_t cap;
	int err = tinyfix_wire_write_req_decode(req->payload, req->payload_len, &in);

	if (err != 0) {
		reply_error(link, req, err, TEXT("chunk runs past the object's length"));
		return;
	}
	if (in.target == TINYFIX_WIRE_TARGET_INPUT) {
		st = &link->staged_input;
		dest = link->input_tensor;
		cap = link->input_len;
	} else if (in.target == TINYFIX_WIRE_TARGET_PARAMS) {
		st = &link->staged_params;
		dest = link->params_buf;
		cap = link->params_buf_size;
	} else {
		reply_error(link, req, TINYFIX_WIRE_ERR_VALUE, TEXT("unknown WRITE target"));
		return;
	}
	if (dest == NULL) {
		reply_error(link, req, TINYFIX_WIRE_ERR_UNSUPPORTED,
			    TEXT("no staging for this target: send it inline"));
		return;
	}
	if (in.total == 0U || in.total > cap ||
	    (in.target == TINYFIX_WIRE_TARGET_INPUT && in.total != link->input_len)) {
		reply_error(link, req, TINYFIX_WIRE_ERR_VALUE,
			    in.target == TINYFIX_WIRE_TARGET_INPUT
				    ? TEXT("total must be the input tensor's size")
				    : TEXT("parameter set larger than the device stages"));
		return;
	}
	if (stage_chunk(st, dest, in.offset, in.total, in.data, in.len) != 0) {
		reply_error(link, req, TINYFIX_WIRE_ERR_VALUE,
			    TEXT("another object in progress: start at offset 0"));
		return;
	}
	rsp.target = in.target;
	rsp.next = st->received;
	rsp.total = st->total;
	reply(link, req, 0U,
	      tinyfix_wire_write_rsp_encode(&rsp, link->scratch, link->scratch_size));
}

/* READ: a piece of the active parameter set, the last raw output or the last features. */
static void do_read(struct tinyfix_link *link, const struct tinyfix_wire_frame *req)
{
	struct tinyfix_wire_read_req in;
	uint8_t *data = &link->scratch[TINYFIX_WIRE_READ_RSP_FIXED];
	size_t room = link->scratch_size - TINYFIX_WIRE_READ_RSP_FIXED;
	const uint8_t *src = NULL;
	size_t total = 0U;
	size_t n = 0U;
	int err = tinyfix_wire_read_req_decode(req->payload, req->payload_len, &in);

	if (err != 0) {
		reply_error(link, req, err, TEXT("READ request too short"));
		return;
	}
	if (room > in.max_len) {
		room = in.max_len;
	}
	switch (in.target) {
	case TINYFIX_WIRE_TARGET_PARAMS:
		err = tinyfix_params_encode_range(&link->ctx->params, in.offset, data, room,
						  &total);
		n = err > 0 ? (size_t)err : 0U;
		err = err < 0 ? TINYFIX_WIRE_ERR_VALUE : 0;
		break;
	case TINYFIX_WIRE_TARGET_OUTPUT:
		src = link->last_raw;
		total = link->raw_len;
		break;
	case TINYFIX_WIRE_TARGET_FEATURES:
		src = (const uint8_t *)link->last_features;
		total = link->n_features;
		break;
	default:
		err = TINYFIX_WIRE_ERR_VALUE;
		break;
	}
	if (err == 0 && in.target != TINYFIX_WIRE_TARGET_PARAMS) {
		if (src == NULL) {
			reply_error(link, req, TINYFIX_WIRE_ERR_VALUE,
				    TEXT("nothing to read: INFER (with FEATURES) first"));
			return;
		}
		if (in.offset < total) {
			n = total - in.offset < room ? total - in.offset : room;
			memcpy(data, &src[in.offset], n);
		}
	}
	if (err != 0) {
		reply_error(link, req, err, TEXT("unknown READ target"));
		return;
	}
	(void)tinyfix_wire_read_rsp_header(0, in.target, in.offset, (uint32_t)total, link->scratch,
					   TINYFIX_WIRE_READ_RSP_FIXED);
	reply(link, req, 0U, (int)(TINYFIX_WIRE_READ_RSP_FIXED + n));
}

static void do_stats(struct tinyfix_link *link, const struct tinyfix_wire_frame *req)
{
	struct tinyfix_wire_stats stats;

	tinyfix_link_stats(link, &stats);
	reply(link, req, 0U, tinyfix_wire_stats_encode(&stats, link->scratch, link->scratch_size));
}

static void dispatch(struct tinyfix_link *link, const struct tinyfix_wire_frame *req)
{
	if (req->version != TINYFIX_WIRE_VERSION) {
		reply_error(link, req, TINYFIX_WIRE_ERR_VERSION, TEXT("protocol version 1 only"));
		return;
	}
	switch (req->type) {
	case TINYFIX_WIRE_MSG_INFO:
		do_info(link, req);
		break;
	case TINYFIX_WIRE_MSG_INFER:
		do_infer(link, req);
		break;
	case TINYFIX_WIRE_MSG_CAPTURE:
		do_capture(link, req);
		break;
	case TINYFIX_WIRE_MSG_GET_PARAMS:
		do_get_params(link, req);
		break;
	case TINYFIX_WIRE_MSG_SET_PARAMS:
		do_set_params(link, req);
		break;
	case TINYFIX_WIRE_MSG_STATS:
		do_stats(link, req);
		break;
	case TINYFIX_WIRE_MSG_WRITE:
		do_write(link, req);
		break;
	case TINYFIX_WIRE_MSG_READ:
		do_read(link, req);
		break;
	default:
		reply_error(link, req, TINYFIX_WIRE_ERR_TYPE, TEXT("unknown message type"));
		break;
	}
}

/* A valid frame: ignore responses (an echo), replay a repeat, else execute. */
static int on_frame(struct tinyfix_link *link, const struct tinyfix_wire_frame *req)
{
	if ((req->flags & TINYFIX_WIRE_FLAG_RESPONSE) != 0U) {
		return 0;
	}
	if (link->kept_len > 0U && req->seq == link->kept_seq && req->crc == link->kept_crc &&
	    request_hash(req) == link->kept_hash) {
		link->replays++;
		link->ops->write(link->user, link->tx, link->kept_len);
		return 1;
	}
	/* tx is about to be reused: the old response can no longer be replayed. */
	link->kept_len = 0U;
	dispatch(link, req);
	return 1;
}

/* ---- API --------------------------------------------------------------------------------- */

/* The largest parameter blob of this model the build takes (a head at its largest). */
static size_t model_blob_max(const struct tinyfix_model_info *m)
{
	size_t size = TINYFIX_PARAMS_ENCODED_SIZE((size_t)m->n_classes, (size_t)m->n_channels);
#if TINYFIX_MAX_FEATURES > 0
	if (m->n_features > 0U) {
		size_t rows = tf_link_outputs(m);
		size_t weights = rows * m->n_features;

		if (weights > (size_t)TINYFIX_MAX_HEAD_WEIGHTS) {
			weights = (size_t)TINYFIX_MAX_HEAD_WEIGHTS;
		}
		size += 12U * rows + weights + (m->n_features + 7U) / 8U;
	}
#endif
	return size;
}

static int check_model(struct tinyfix_link *link, const struct tinyfix_link_buffers *bufs)
{
	const struct tinyfix_model_info *model = &link->ctx->model;
	const struct tinyfix_wire_info *info = &link->info;
	const size_t outputs = tf_link_outputs(model);
	size_t out_size = tinyfix_wire_dtype_size(info->output.dtype);
	size_t n_features = tensor_elements(&info->feature);
	size_t blob_max = model_blob_max(model);
	size_t staged = 0U;
	size_t identity;

	if (info->output.dtype != core_output_dtype(model->output_type) ||
	    tensor_elements(&info->output) != outputs) {
		return TINYFIX_WIRE_ERR_VALUE;
	}
	link->input_len =
		tensor_elements(&info->input) * tinyfix_wire_dtype_size(info->input.dtype);
	if (link->input_len == 0U) {
		return TINYFIX_WIRE_ERR_UNSUPPORTED;
	}
	link->raw_len = outputs * out_size;
	if (info->feature.dtype != TINYFIX_WIRE_DTYPE_NONE) {
		if (info->feature.dtype != TINYFIX_WIRE_DTYPE_INT8 || n_features == 0U) {
			return TINYFIX_WIRE_ERR_UNSUPPORTED;
		}
		if (n_features > TINYFIX_LINK_MAX_FEATURES) {
			return TINYFIX_WIRE_ERR_NO_SPACE;
		}
		link->n_features = (uint16_t)n_features;
	}
	/* An input beyond one frame goes straight into the input tensor, in chunks. */
	if (TINYFIX_WIRE_OVERHEAD + 2U + link->input_len > link->rx.cap &&
	    link->input_tensor == NULL) {
		return TINYFIX_WIRE_ERR_NO_SPACE;
	}
	if (model->kind == TINYFIX_MODEL_AUTOENCODER) {
		if (info->input.dtype != TINYFIX_WIRE_DTYPE_INT8 ||
		    tensor_elements(&info->input) != outputs) {
			return TINYFIX_WIRE_ERR_VALUE;
		}
		if (link->input_tensor != NULL && bufs->recon_size >= link->input_len) {
			link->recon = bufs->recon;
			link->recon_size = bufs->recon_size;
		} else if (TINYFIX_WIRE_OVERHEAD + 2U + link->input_len > link->rx.cap) {
			return TINYFIX_WIRE_ERR_NO_SPACE;
		}
	}
	if (bufs->params != NULL && bufs->params_size > 0U) {
		link->params_buf = bufs->params;
		link->params_buf_size = bufs->params_size;
		staged = bufs->params_size < blob_max ? bufs->params_size : blob_max;
	}
	link->max_params = link->scratch_size < blob_max ? link->scratch_size : blob_max;
	if (staged > link->max_params) {
		link->max_params = staged;
	}
	/* At least a set without a head must get through. */
	identity = TINYFIX_PARAMS_ENCODED_SIZE((size_t)model->n_classes, (size_t)model->n_channels);
	return identity <= link->max_params ? 0 : TINYFIX_WIRE_ERR_NO_SPACE;
}

int tinyfix_link_init(struct tinyfix_link *link, struct tinyfix_ctx *ctx,
		      const struct tinyfix_link_ops *ops, void *user,
		      const struct tinyfix_link_buffers *bufs)
{
	int err;

	if (link == NULL || ctx == NULL || !ctx->ready || ops == NULL || bufs == NULL ||
	    ops->write == NULL || ops->info == NULL || ops->invoke == NULL || bufs->rx == NULL ||
	    bufs->tx == NULL || bufs->scratch == NULL || bufs->rx_size < TINYFIX_WIRE_MIN_FRAME ||
	    bufs->rx_size > TINYFIX_WIRE_MAX_FRAME_LIMIT) {
		return TINYFIX_WIRE_ERR_VALUE;
	}
	if (bufs->tx_size < TINYFIX_LINK_TX_SIZE(bufs->rx_size) ||
	    bufs->scratch_size < TINYFIX_LINK_SCRATCH_SIZE(bufs->rx_size)) {
		return TINYFIX_WIRE_ERR_NO_SPACE;
	}
	memset(link, 0, sizeof(*link));
	(void)tinyfix_wire_rx_init(&link->rx, bufs->rx, bufs->rx_size);
	link->ctx = ctx;
	link->ops = ops;
	link->user = user;
	link->tx = bufs->tx;
	link->tx_size = bufs->tx_size;
	link->scratch = bufs->scratch;
	/* Never build a response larger than the frames this device accepts. */
	link->scratch_size = TINYFIX_LINK_SCRATCH_SIZE(bufs->rx_size);
	link->input_tensor = ops->input_buffer != NULL ? ops->input_buffer(user) : NULL;
	ops->info(user, &link->info);
	err = check_model(link, bufs);
	if (err != 0) {
		link->ops = NULL;
	}
	return err;
}

int tinyfix_link_feed(struct tinyfix_link *link, const uint8_t *data, size_t len)
{
	int answered = 0;

	if (link == NULL || link->ops == NULL || (data == NULL && len > 0U)) {
		return TINYFIX_WIRE_ERR_VALUE;
	}
	while (len > 0U) {
		struct tinyfix_wire_frame frame;
		size_t used = 0U;
		int ret = tinyfix_wire_rx_push(&link->rx, data, len, &used, &frame);

		if (ret == TINYFIX_WIRE_RX_FRAME) {
			answered += on_frame(link, &frame);
		} else if (ret < 0 && frame.has_hdr) {
			reply_link_error(link, &frame, ret);
		}
		data += used;
		len -= used;
	}
	return answered;
}

/* The drift monitor's figures, without using up its one-shot "newly advised" for the app. */
static void drift_figures(struct tinyfix_ctx *ctx, struct tinyfix_wire_stats *stats)
{
	struct tinyfix_drift drift;
	bool advised = ctx->mon_advised;

	if (tinyfix_drift_status(ctx, &drift) != TINYFIX_OK) {
		return;
	}
	ctx->mon_advised = advised;
	stats->drift_flags = drift.flags;
	stats->mean_conf = drift.mean_conf;
	stats->prior_tv = drift.prior_tv;
	stats->input_z_q8 = drift.input_z_q8;
	stats->monitor_frames = drift.frames;
}

void tinyfix_link_stats(const struct tinyfix_link *link, struct tinyfix_wire_stats *stats)
{
	memset(stats, 0, sizeof(*stats));
	drift_figures(link->ctx, stats);
	stats->uptime_ms = uptime_now(link);
	stats->frames_ok = link->rx.frames_ok;
	stats->crc_errors = link->rx.crc_errors;
	stats->framing_errors = link->rx.framing_errors;
	stats->inferences = link->inferences;
	stats->params_crc = link->ctx->params.crc;
	stats->replays = link->replays;
}

void tinyfix_link_input_clobbered(struct tinyfix_link *link)
{
	if (link != NULL) {
		link->staged_input.total = 0U;
		link->staged_input.received = 0U;
	}
}

bool tinyfix_link_input_pending(const struct tinyfix_link *link)
{
	return link != NULL && link->staged_input.total > 0U;
}

void tinyfix_link_forget(struct tinyfix_link *link)
{
	link->kept_len = 0U;
}
