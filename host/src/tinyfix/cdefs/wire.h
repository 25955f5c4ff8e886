/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cffi cdef for modules/tinyfix/include/tinyfix/wire.h (the build's C preamble must
 * #include <tinyfix/wire.h>). Kept by hand: no #include, no function-like macros, plain
 * integer #defines only. cffi checks these values and struct layouts against the real
 * header when it compiles, so a drift fails the build instead of corrupting memory.
 * tinyfix_crc32() is declared in tinyfix.h's cdef, not here.
 */

#define TINYFIX_WIRE_VERSION 1
#define TINYFIX_WIRE_HDR_LEN 5
#define TINYFIX_WIRE_CRC_LEN 4
#define TINYFIX_WIRE_OVERHEAD 9
#define TINYFIX_WIRE_MIN_FRAME 256
#define TINYFIX_WIRE_MAX_FRAME_LIMIT 65535
#define TINYFIX_WIRE_DEFAULT_MAX_FRAME 1024
#define TINYFIX_WIRE_STR_MAX 32
#define TINYFIX_WIRE_TEXT_MAX 48
#define TINYFIX_WIRE_MAX_DIMS 6

#define TINYFIX_WIRE_MSG_INFO 1
#define TINYFIX_WIRE_MSG_INFER 2
#define TINYFIX_WIRE_MSG_CAPTURE 3
#define TINYFIX_WIRE_MSG_GET_PARAMS 4
#define TINYFIX_WIRE_MSG_SET_PARAMS 5
#define TINYFIX_WIRE_MSG_STATS 6
#define TINYFIX_WIRE_MSG_WRITE 7
#define TINYFIX_WIRE_MSG_READ 8
#define TINYFIX_WIRE_MSG_ERROR 127

#define TINYFIX_WIRE_FLAG_RESPONSE 128
#define TINYFIX_WIRE_FLAG_MORE 64
#define TINYFIX_WIRE_FLAG_FEATURES 1
#define TINYFIX_WIRE_FLAG_RESET 2
#define TINYFIX_WIRE_FLAG_MODEL_RESET 8
#define TINYFIX_WIRE_FLAG_NO_PERSIST 1
#define TINYFIX_WIRE_FLAG_STAGED 4

#define TINYFIX_WIRE_TARGET_INPUT 1
#define TINYFIX_WIRE_TARGET_PARAMS 2
#define TINYFIX_WIRE_TARGET_OUTPUT 3
#define TINYFIX_WIRE_TARGET_FEATURES 4

#define TINYFIX_WIRE_INFER_ANOMALY 1
#define TINYFIX_WIRE_INFER_RAW_DEFERRED 2
#define TINYFIX_WIRE_INFER_FEAT_DEFERRED 4

#define TINYFIX_WIRE_WRITE_REQ_FIXED 9
#define TINYFIX_WIRE_WRITE_RSP_LEN 11
#define TINYFIX_WIRE_READ_REQ_LEN 7
#define TINYFIX_WIRE_READ_RSP_FIXED 11

#define TINYFIX_WIRE_CAP_CAPTURE 1
#define TINYFIX_WIRE_CAP_FEATURES 2
#define TINYFIX_WIRE_CAP_PERSIST 4
#define TINYFIX_WIRE_CAP_ADAPT 8
#define TINYFIX_WIRE_CAP_FLOAT 16
#define TINYFIX_WIRE_CAP_CHUNKS 32
#define TINYFIX_WIRE_CAP_MODEL_RESET 64

#define TINYFIX_WIRE_DRIFT_ADVISED 1

#define TINYFIX_WIRE_DTYPE_NONE 0
#define TINYFIX_WIRE_DTYPE_FLOAT32 1
#define TINYFIX_WIRE_DTYPE_INT32 2
#define TINYFIX_WIRE_DTYPE_UINT8 3
#define TINYFIX_WIRE_DTYPE_INT16 7
#define TINYFIX_WIRE_DTYPE_INT8 9

#define TINYFIX_WIRE_ERR_TYPE -256
#define TINYFIX_WIRE_ERR_LENGTH -257
#define TINYFIX_WIRE_ERR_BUSY -258
#define TINYFIX_WIRE_ERR_CRC -259
#define TINYFIX_WIRE_ERR_FRAMING -260
#define TINYFIX_WIRE_ERR_TOO_LONG -261
#define TINYFIX_WIRE_ERR_VERSION -262
#define TINYFIX_WIRE_ERR_UNSUPPORTED -263
#define TINYFIX_WIRE_ERR_VALUE -264
#define TINYFIX_WIRE_ERR_INVOKE -265
#define TINYFIX_WIRE_ERR_SENSOR -266
#define TINYFIX_WIRE_ERR_NO_SPACE -267

#define TINYFIX_WIRE_RX_FRAME 1

struct tinyfix_wire_frame {
	uint8_t version;
	uint8_t type;
	uint8_t flags;
	uint8_t has_hdr;
	uint16_t seq;
	uint32_t crc;
	size_t payload_len;
	const uint8_t *payload;
};

struct tinyfix_wire_rx {
	uint8_t *buf;
	size_t cap;
	size_t len;
	uint8_t left;
	uint8_t code;
	uint32_t frames_ok;
	uint32_t crc_errors;
	uint32_t framing_errors;
};

struct tinyfix_wire_tensor {
	uint8_t dtype;
	uint8_t ndims;
	uint16_t dims[6];
	uint32_t scale_f32;
	int32_t zero_point;
};

struct tinyfix_wire_info {
	uint8_t caps;
	uint16_t max_frame;
	uint32_t model_crc;
	uint32_t params_crc;
	uint16_t params_format;
	uint16_t n_classes;
	uint16_t max_classes;
	uint16_t max_window;
	uint32_t cycle_hz;
	struct tinyfix_wire_tensor input;
	struct tinyfix_wire_tensor output;
	struct tinyfix_wire_tensor feature;
	const char *fw_version;
	const char *board;
	uint8_t model_kind;
	uint32_t n_outputs;
	uint32_t max_params;
	uint16_t max_features;
	uint32_t max_head_weights;
	uint16_t max_channels;
	uint16_t max_anomaly_window;
};

struct tinyfix_wire_infer_req {
	int16_t label;
	const uint8_t *input;
	size_t input_len;
};

struct tinyfix_wire_infer_rsp {
	int16_t status;
	int16_t top_class;
	int16_t decision;
	uint16_t top_conf;
	uint32_t cycles_invoke;
	uint32_t cycles_tinyfix;
	const uint8_t *raw;
	uint16_t raw_len;
	const uint16_t *prob;
	uint16_t n_prob;
	const int8_t *features;
	uint16_t n_features;
	int32_t anomaly_score;
	uint8_t flags;
};

struct tinyfix_wire_write_req {
	uint8_t target;
	uint32_t offset;
	uint32_t total;
	const uint8_t *data;
	size_t len;
};

struct tinyfix_wire_write_rsp {
	int16_t status;
	uint8_t target;
	uint32_t next;
	uint32_t total;
};

struct tinyfix_wire_read_req {
	uint8_t target;
	uint32_t offset;
	uint16_t max_len;
};

struct tinyfix_wire_capture_req {
	uint16_t count;
	uint8_t dtype;
};

struct tinyfix_wire_capture_rsp {
	uint16_t index;
	uint16_t count;
	uint32_t t_ms;
	uint16_t n_values;
	uint8_t dtype;
	const void *data;
};

struct tinyfix_wire_setp_rsp {
	int16_t status;
	uint32_t params_crc;
	uint8_t persisted;
};

struct tinyfix_wire_stats {
	uint32_t uptime_ms;
	uint32_t frames_ok;
	uint32_t crc_errors;
	uint32_t framing_errors;
	uint32_t inferences;
	uint32_t params_crc;
	uint32_t drift_flags;
	uint32_t replays;
	uint16_t mean_conf;
	uint16_t prior_tv;
	uint16_t input_z_q8;
	uint32_t monitor_frames;
};

struct tinyfix_wire_error {
	int16_t status;
	uint16_t seq;
	uint8_t type;
	const char *text;
};

int tinyfix_wire_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap);
int tinyfix_wire_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap);
int tinyfix_wire_frame_build(uint8_t type, uint16_t seq, uint8_t flags, const uint8_t *payload,
			     size_t payload_len, uint8_t *dst, size_t cap);
int tinyfix_wire_frame_parse(const uint8_t *body, size_t len, struct tinyfix_wire_frame *frame);
int tinyfix_wire_rx_init(struct tinyfix_wire_rx *rx, uint8_t *buf, size_t cap);
void tinyfix_wire_rx_reset(struct tinyfix_wire_rx *rx);
int tinyfix_wire_rx_feed(struct tinyfix_wire_rx *rx, uint8_t byte,
			 struct tinyfix_wire_frame *frame);
int tinyfix_wire_rx_push(struct tinyfix_wire_rx *rx, const uint8_t *data, size_t len,
			 size_t *used, struct tinyfix_wire_frame *frame);
size_t tinyfix_wire_dtype_size(uint8_t dtype);
int tinyfix_wire_info_encode(const struct tinyfix_wire_info *info, uint8_t *dst, size_t cap);
int tinyfix_wire_infer_req_decode(const uint8_t *payload, size_t len,
				  struct tinyfix_wire_infer_req *req);
int tinyfix_wire_infer_rsp_encode(const struct tinyfix_wire_infer_rsp *rsp, uint8_t *dst,
				  size_t cap);
int tinyfix_wire_capture_req_decode(const uint8_t *payload, size_t len,
				    struct tinyfix_wire_capture_req *req);
int tinyfix_wire_capture_rsp_encode(const struct tinyfix_wire_capture_rsp *rsp, uint8_t *dst,
				    size_t cap);
int tinyfix_wire_setp_rsp_encode(const struct tinyfix_wire_setp_rsp *rsp, uint8_t *dst,
				 size_t cap);
int tinyfix_wire_stats_encode(const struct tinyfix_wire_stats *stats, uint8_t *dst, size_t cap);
int tinyfix_wire_write_req_decode(const uint8_t *payload, size_t len,
				  struct tinyfix_wire_write_req *req);
int tinyfix_wire_write_rsp_encode(const struct tinyfix_wire_write_rsp *rsp, uint8_t *dst,
				  size_t cap);
int tinyfix_wire_read_req_decode(const uint8_t *payload, size_t len,
				 struct tinyfix_wire_read_req *req);
int tinyfix_wire_read_rsp_header(int16_t status, uint8_t target, uint32_t offset,
				 uint32_t total, uint8_t *dst, size_t cap);
int tinyfix_wire_error_encode(const struct tinyfix_wire_error *err, uint8_t *dst, size_t cap);
int tinyfix_wire_error_build(int16_t status, const struct tinyfix_wire_frame *req,
			     const char *text, uint8_t *dst, size_t cap);
