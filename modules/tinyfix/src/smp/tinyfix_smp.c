/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * TinyFix MCUmgr group commands (docs/smp-group.md): CBOR through zcbor, the work done by
 * the device link's own functions (INFO, staging, apply and persist, STATS), so the lab
 * protocol and MCUmgr can never disagree on what a parameter set means.
 */

#include <string.h>

#include <zcbor_decode.h>
#include <zcbor_encode.h>

#include <tinyfix/smp.h>
#include <tinyfix/tinyfix.h>
#include <tinyfix/wire.h>

/* zcbor backup states: the request map, one nested level, and the constant state. */
#define SMP_DECODE_STATES 4
#define SMP_ENCODE_STATES 6
/* Largest number of pairs in any response map (INFO). */
#define SMP_RSP_PAIRS 16

/* The request fields the group knows; a request names the ones its command takes. */
struct smp_request {
	uint32_t off;
	uint32_t len;
	uint32_t n;
	struct zcbor_string data;
	bool persist;
	bool features;
	bool has_off;
	bool has_len;
	bool has_n;
	bool has_data;
};

static bool key_is(const struct zcbor_string *key, const char *name)
{
	size_t n = strlen(name);

	return key->len == n && memcmp(key->value, name, n) == 0;
}

/*
 * Decode the request map. Unknown keys are skipped (a newer host may send more); a known key
 * with a value of the wrong type is a bad request, never silently a default.
 */
static int decode_request(zcbor_state_t *zsd, struct smp_request *req)
{
	memset(req, 0, sizeof(*req));
	req->persist = true;
	req->features = true;
	if (!zcbor_map_start_decode(zsd)) {
		return TINYFIX_SMP_MGMT_EINVAL;
	}
	while (!zcbor_array_at_end(zsd)) {
		struct zcbor_string key;
		bool ok;

		if (!zcbor_tstr_decode(zsd, &key)) {
			return TINYFIX_SMP_RC_BAD_REQUEST;
		}
		if (key_is(&key, "off")) {
			ok = req->has_off = zcbor_uint32_decode(zsd, &req->off);
		} else if (key_is(&key, "len")) {
			ok = req->has_len = zcbor_uint32_decode(zsd, &req->len);
		} else if (key_is(&key, "n")) {
			ok = req->has_n = zcbor_uint32_decode(zsd, &req->n);
		} else if (key_is(&key, "data")) {
			ok = req->has_data = zcbor_bstr_decode(zsd, &req->data);
		} else if (key_is(&key, "persist")) {
			ok = zcbor_bool_decode(zsd, &req->persist);
		} else if (key_is(&key, "features")) {
			ok = zcbor_bool_decode(zsd, &req->features);
		} else {
			ok = zcbor_any_skip(zsd, NULL);
		}
		if (!ok) {
			return TINYFIX_SMP_RC_BAD_REQUEST;
		}
	}
	return zcbor_map_end_decode(zsd) ? 0 : TINYFIX_SMP_RC_BAD_REQUEST;
}

static bool put_u32(zcbor_state_t *zse, const char *key, uint32_t value)
{
	return zcbor_tstr_put_term(zse, key, 16) && zcbor_uint32_put(zse, value);
}

static bool put_tensor(zcbor_state_t *zse, const char *key, const struct tinyfix_wire_tensor *t)
{
	float scale;
	bool ok;

	memcpy(&scale, &t->scale_f32, sizeof(scale));
	ok = zcbor_tstr_put_term(zse, key, 16) && zcbor_map_start_encode(zse, 4) &&
	     put_u32(zse, "type", t->dtype) && zcbor_tstr_put_lit(zse, "dims") &&
	     zcbor_list_start_encode(zse, TINYFIX_WIRE_MAX_DIMS);
	for (uint8_t i = 0; ok && i < t->ndims; i++) {
		ok = zcbor_uint32_put(zse, t->dims[i]);
	}
	return ok && zcbor_list_end_encode(zse, TINYFIX_WIRE_MAX_DIMS) &&
	       zcbor_tstr_put_lit(zse, "scale") && zcbor_float32_put(zse, scale) &&
	       zcbor_tstr_put_lit(zse, "zp") && zcbor_int32_put(zse, t->zero_point) &&
	       zcbor_map_end_encode(zse, 4);
}

static size_t record_size(const struct tinyfix_smp *smp, bool features)
{
	return TINYFIX_SMP_RECORD_HEADER + smp->link->raw_len +
	       (features ? smp->link->n_features : 0U);
}

static int info_read(struct tinyfix_smp *smp, zcbor_state_t *zse)
{
	struct tinyfix_wire_info info;
	size_t record = record_size(smp, true);
	bool ok;

	tinyfix_link_info(smp->link, &info);
	ok = put_u32(zse, "model_crc", info.model_crc) &&
	     put_u32(zse, "params_crc", info.params_crc) &&
	     put_u32(zse, "params_format", info.params_format) &&
	     put_u32(zse, "kind", info.model_kind) && put_u32(zse, "classes", info.n_classes) &&
	     put_u32(zse, "outputs", info.n_outputs) &&
	     put_u32(zse, "features", smp->link->n_features) &&
	     put_u32(zse, "max_params", info.max_params) &&
	     put_u32(zse, "capture_max",
		     smp->capture_buf != NULL ? (uint32_t)(smp->capture_size / record) : 0U) &&
	     zcbor_tstr_put_lit(zse, "fw") &&
	     zcbor_tstr_put_term(zse, info.fw_version != NULL ? info.fw_version : "",
				 TINYFIX_WIRE_STR_MAX) &&
	     zcbor_tstr_put_lit(zse, "board") &&
	     zcbor_tstr_put_term(zse, info.board != NULL ? info.board : "",
				 TINYFIX_WIRE_STR_MAX) &&
	     put_tensor(zse, "in", &info.input) && put_tensor(zse, "out", &info.output);
	if (ok && smp->link->n_features > 0U) {
		ok = put_tensor(zse, "feat", &info.feature);
	}
	return ok ? 0 : TINYFIX_SMP_MGMT_EMSGSIZE;
}

static int params_read(struct tinyfix_smp *smp, const struct smp_request *req,
		       zcbor_state_t *zse)
{
	const struct tinyfix_params *params = &smp->link->ctx->params;
	size_t want = smp->chunk_max;
	size_t total = 0U;
	int n;

	if (!req->has_off) {
		return TINYFIX_SMP_RC_BAD_REQUEST;
	}
	if (want > sizeof(smp->chunk)) {
		want = sizeof(smp->chunk);
	}
	n = tinyfix_params_encode_range(params, req->off, smp->chunk, want, &total);
	if (n < 0) {
		return TINYFIX_SMP_RC_UNKNOWN;
	}
	if (req->off > total) {
		return TINYFIX_SMP_RC_OFFSET;
	}
	return put_u32(zse, "off", req->off) && put_u32(zse, "len", (uint32_t)total) &&
			       put_u32(zse, "crc", params->crc) && zcbor_tstr_put_lit(zse, "data") &&
			       zcbor_bstr_encode_ptr(zse, (const char *)smp->chunk, (size_t)n)
		       ? 0
		       : TINYFIX_SMP_MGMT_EMSGSIZE;
}

/*
 * One chunk of an upload, with image upload's rules: "len" (the whole set) comes with the
 * chunk at offset 0, the answer's "off" is where the next chunk goes (a repeated or early
 * chunk changes nothing, the client resumes there), and the chunk that completes the set has
 * it checked whole, applied and persisted, or refused with the core's code.
 */
static int params_write(struct tinyfix_smp *smp, const struct smp_request *req,
			zcbor_state_t *zse)
{
	struct tinyfix_link_staging *st = &smp->link->staged_params;
	struct tinyfix_wire_setp_rsp rsp;
	uint32_t total;
	int received;
	int err;

	if (!req->has_off || !req->has_data || (req->off == 0U && !req->has_len)) {
		return TINYFIX_SMP_RC_BAD_REQUEST;
	}
	total = req->off == 0U ? req->len : st->total;
	if (req->has_len && req->len != total) {
		return TINYFIX_SMP_RC_OTHER_UPLOAD;
	}
	if (total == 0U) {
		/* Offset 0 with len 0, or a later chunk with no upload in progress. */
		return req->off == 0U ? TINYFIX_SMP_RC_BAD_REQUEST : TINYFIX_SMP_RC_OTHER_UPLOAD;
	}
	if ((size_t)req->off + req->data.len > total) {
		return total > smp->link->max_params ? TINYFIX_SMP_RC_TOO_LARGE
						     : TINYFIX_SMP_RC_BAD_REQUEST;
	}
	received = tinyfix_link_stage_params(smp->link, req->off, total, req->data.value,
					     req->data.len);
	if (received == TINYFIX_WIRE_ERR_UNSUPPORTED) {
		return TINYFIX_SMP_RC_UNSUPPORTED;
	}
	if (received < 0) {
		return total > smp->link->params_buf_size ? TINYFIX_SMP_RC_TOO_LARGE
							  : TINYFIX_SMP_RC_OTHER_UPLOAD;
	}
	if (req->off == 0U) {
		smp->upload_persist = req->persist;
	}
	if ((uint32_t)received < total) {
		return put_u32(zse, "off", (uint32_t)received) ? 0 : TINYFIX_SMP_MGMT_EMSGSIZE;
	}
	err = tinyfix_link_apply_staged_params(smp->link, smp->upload_persist, &rsp);
	if (err != TINYFIX_OK) {
		return err < 0 && err > -64 ? TINYFIX_SMP_RC_CORE - err : TINYFIX_SMP_RC_UNKNOWN;
	}
	return put_u32(zse, "off", total) && put_u32(zse, "crc", rsp.params_crc) &&
			       zcbor_tstr_put_lit(zse, "persisted") &&
			       zcbor_bool_put(zse, rsp.persisted != 0U)
		       ? 0
		       : TINYFIX_SMP_MGMT_EMSGSIZE;
}

static int stats_read(struct tinyfix_smp *smp, zcbor_state_t *zse)
{
	struct tinyfix_wire_stats st;

	tinyfix_link_stats(smp->link, &st);
	return put_u32(zse, "uptime_ms", st.uptime_ms) &&
			       put_u32(zse, "inferences", st.inferences) &&
			       put_u32(zse, "frames_ok", st.frames_ok) &&
			       put_u32(zse, "crc_errors", st.crc_errors) &&
			       put_u32(zse, "framing_errors", st.framing_errors) &&
			       put_u32(zse, "params_crc", st.params_crc) &&
			       put_u32(zse, "drift_flags", st.drift_flags) &&
			       put_u32(zse, "mean_conf", st.mean_conf) &&
			       put_u32(zse, "prior_tv", st.prior_tv) &&
			       put_u32(zse, "input_z_q8", st.input_z_q8) &&
			       put_u32(zse, "monitor_frames", st.monitor_frames) &&
			       put_u32(zse, "captured", smp->capture_done)
		       ? 0
		       : TINYFIX_SMP_MGMT_EMSGSIZE;
}

static int adapt_write(struct tinyfix_smp *smp, zcbor_state_t *zse)
{
	tinyfix_adapt_reset(smp->link->ctx);
	return put_u32(zse, "params_crc", smp->link->ctx->params.crc) ? 0
									: TINYFIX_SMP_MGMT_EMSGSIZE;
}

static int capture_write(struct tinyfix_smp *smp, const struct smp_request *req,
			 zcbor_state_t *zse)
{
	bool features = req->features && smp->link->n_features > 0U;
	size_t record = record_size(smp, features);

	if (smp->capture_buf == NULL) {
		return TINYFIX_SMP_RC_UNSUPPORTED;
	}
	if (!req->has_n || req->n == 0U) {
		return TINYFIX_SMP_RC_BAD_REQUEST;
	}
	if ((size_t)req->n > smp->capture_size / record) {
		return TINYFIX_SMP_RC_TOO_LARGE;
	}
	/* A new capture replaces one in progress or finished: its records are gone. */
	smp->record_size = record;
	smp->capture_features = features;
	smp->capture_done = 0U;
	smp->capture_requested = req->n;
	return put_u32(zse, "n", req->n) && put_u32(zse, "record", (uint32_t)record) &&
			       zcbor_tstr_put_lit(zse, "features") && zcbor_bool_put(zse, features)
		       ? 0
		       : TINYFIX_SMP_MGMT_EMSGSIZE;
}

static int capture_read(struct tinyfix_smp *smp, const struct smp_request *req,
			zcbor_state_t *zse)
{
	size_t ready = (size_t)smp->capture_done * smp->record_size;
	size_t n;

	if (smp->capture_requested == 0U) {
		return TINYFIX_SMP_RC_NO_CAPTURE;
	}
	if (!req->has_off) {
		return TINYFIX_SMP_RC_BAD_REQUEST;
	}
	if (req->off > ready) {
		return TINYFIX_SMP_RC_OFFSET;
	}
	n = ready - req->off;
	if (n > smp->chunk_max) {
		n = smp->chunk_max;
	}
	return put_u32(zse, "n", smp->capture_requested) &&
			       put_u32(zse, "done", smp->capture_done) &&
			       put_u32(zse, "record", (uint32_t)smp->record_size) &&
			       zcbor_tstr_put_lit(zse, "features") &&
			       zcbor_bool_put(zse, smp->capture_features) &&
			       put_u32(zse, "off", req->off) && zcbor_tstr_put_lit(zse, "data") &&
			       zcbor_bstr_encode_ptr(zse, (const char *)&smp->capture_buf[req->off],
						     n)
		       ? 0
		       : TINYFIX_SMP_MGMT_EMSGSIZE;
}

int tinyfix_smp_init(struct tinyfix_smp *smp, struct tinyfix_link *link, uint8_t *capture_buf,
		     size_t capture_size, size_t chunk_max)
{
	if (smp == NULL || link == NULL || chunk_max < 16U) {
		return TINYFIX_WIRE_ERR_VALUE;
	}
	memset(smp, 0, sizeof(*smp));
	smp->link = link;
	smp->chunk_max = chunk_max;
	smp->capture_buf = capture_size > 0U ? capture_buf : NULL;
	smp->capture_size = capture_buf != NULL ? capture_size : 0U;
	return 0;
}

int tinyfix_smp_handle(struct tinyfix_smp *smp, uint8_t cmd, bool write, zcbor_state_t *zsd,
		       zcbor_state_t *zse)
{
	struct smp_request req;
	int err;

	if (cmd >= TINYFIX_SMP_CMD_COUNT) {
		return TINYFIX_SMP_MGMT_ENOTSUP;
	}
	err = decode_request(zsd, &req);
	if (err != 0) {
		return err;
	}
	switch (cmd) {
	case TINYFIX_SMP_CMD_INFO:
		return write ? TINYFIX_SMP_MGMT_ENOTSUP : info_read(smp, zse);
	case TINYFIX_SMP_CMD_PARAMS:
		return write ? params_write(smp, &req, zse) : params_read(smp, &req, zse);
	case TINYFIX_SMP_CMD_STATS:
		return write ? TINYFIX_SMP_MGMT_ENOTSUP : stats_read(smp, zse);
	case TINYFIX_SMP_CMD_ADAPT:
		return write ? adapt_write(smp, zse) : TINYFIX_SMP_MGMT_ENOTSUP;
	default:
		return write ? capture_write(smp, &req, zse) : capture_read(smp, &req, zse);
	}
}

int tinyfix_smp_handle_buf(struct tinyfix_smp *smp, uint16_t group_id, uint8_t cmd, bool write,
			   const uint8_t *req, size_t req_len, uint8_t *rsp, size_t rsp_cap)
{
	zcbor_state_t zsd[SMP_DECODE_STATES];
	zcbor_state_t zse[SMP_ENCODE_STATES];
	int ret;

	if (smp == NULL || (req == NULL && req_len > 0U) || rsp == NULL) {
		return TINYFIX_SMP_MGMT_EINVAL;
	}
	zcbor_new_decode_state(zsd, SMP_DECODE_STATES, req, req_len, 1, NULL, 0);
	zcbor_new_encode_state(zse, SMP_ENCODE_STATES, rsp, rsp_cap, 0);
	if (!zcbor_map_start_encode(zse, SMP_RSP_PAIRS)) {
		return TINYFIX_SMP_MGMT_EMSGSIZE;
	}
	ret = tinyfix_smp_handle(smp, cmd, write, zsd, zse);
	if (ret < 0) {
		return ret;
	}
	if (ret > 0) {
		/* As MCUmgr's smp_add_cmd_err(): the response is the error alone. */
		zcbor_new_encode_state(zse, SMP_ENCODE_STATES, rsp, rsp_cap, 0);
		if (!(zcbor_map_start_encode(zse, 1) && zcbor_tstr_put_lit(zse, "err") &&
		      zcbor_map_start_encode(zse, 2) && put_u32(zse, "group", group_id) &&
		      put_u32(zse, "rc", (uint32_t)ret) && zcbor_map_end_encode(zse, 2))) {
			return TINYFIX_SMP_MGMT_EMSGSIZE;
		}
	}
	if (!zcbor_map_end_encode(zse, SMP_RSP_PAIRS)) {
		return TINYFIX_SMP_MGMT_EMSGSIZE;
	}
	return (int)(zse->payload - rsp);
}

bool tinyfix_smp_capture_wanted(const struct tinyfix_smp *smp)
{
	return smp != NULL && smp->capture_done < smp->capture_requested;
}

void tinyfix_smp_capture_record(struct tinyfix_smp *smp, uint32_t t_ms, const uint8_t *raw,
				const int8_t *features)
{
	uint8_t *rec;

	if (!tinyfix_smp_capture_wanted(smp) || raw == NULL ||
	    (smp->capture_features && features == NULL)) {
		return;
	}
	rec = &smp->capture_buf[(size_t)smp->capture_done * smp->record_size];
	for (size_t i = 0; i < TINYFIX_SMP_RECORD_HEADER; i++) {
		rec[i] = (uint8_t)(t_ms >> (8U * i));
	}
	memcpy(&rec[TINYFIX_SMP_RECORD_HEADER], raw, smp->link->raw_len);
	if (smp->capture_features) {
		memcpy(&rec[TINYFIX_SMP_RECORD_HEADER + smp->link->raw_len], features,
		       smp->link->n_features);
	}
	smp->capture_done++;
}
