/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * TinyFix wire protocol: COBS framing, CRC32, an incremental receiver and the message
 * payload codecs used by the device side (firmware and twin). The protocol is specified
 * in docs/protocol.md; the host implements the same bytes in host/src/tinyfix/wire/.
 *
 * Portable C99: no OS calls, no heap, no float. The caller owns every buffer and state
 * struct. Functions return a length or 0 on success, or a negative TINYFIX_WIRE_ERR_*
 * code, which is also the status the device sends in an ERROR reply.
 *
 * Usage on a device: feed bytes from one context; answer a frame that arrived damaged but
 * with a readable header with ERROR, so the host retries at once instead of timing out.
 *
 * @code
 * static uint8_t rx_buf[TINYFIX_WIRE_DEFAULT_MAX_FRAME];
 * static uint8_t tx_buf[TINYFIX_WIRE_WIRE_MAX(TINYFIX_WIRE_DEFAULT_MAX_FRAME)];
 * static struct tinyfix_wire_rx rx;
 *
 * void link_init(void)
 * {
 *	(void)tinyfix_wire_rx_init(&rx, rx_buf, sizeof(rx_buf));
 * }
 *
 * void link_on_byte(uint8_t b)
 * {
 *	struct tinyfix_wire_frame f;
 *	int ret = tinyfix_wire_rx_feed(&rx, b, &f);
 *
 *	if (ret == TINYFIX_WIRE_RX_FRAME) {
 *		handle_request(&f);
 *	} else if (ret < 0 && f.has_hdr) {
 *		int n = tinyfix_wire_error_build((int16_t)ret, &f, NULL, tx_buf, sizeof(tx_buf));
 *
 *		if (n > 0) {
 *			uart_send(tx_buf, (size_t)n);
 *		}
 *	}
 * }
 * @endcode
 *
 * handle_request() must be done with f.payload (it lives in rx_buf) before the next feed.
 */

#ifndef TINYFIX_WIRE_H_
#define TINYFIX_WIRE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Protocol version carried in every frame header. */
#define TINYFIX_WIRE_VERSION 1

/** Header bytes: version, type, seq (u16), flags. */
#define TINYFIX_WIRE_HDR_LEN 5
/** CRC32 trailer bytes. */
#define TINYFIX_WIRE_CRC_LEN 4
/** Smallest frame body: header and CRC with an empty payload. */
#define TINYFIX_WIRE_OVERHEAD 9
/** Every implementation accepts frame bodies of at least this many bytes. */
#define TINYFIX_WIRE_MIN_FRAME 256
/** Protocol limit of a frame body (max_frame is a u16 in INFO). */
#define TINYFIX_WIRE_MAX_FRAME_LIMIT 65535
/** Suggested receive buffer size for a device when nothing larger is needed. */
#define TINYFIX_WIRE_DEFAULT_MAX_FRAME 1024
/** Longest string in INFO (bytes, without NUL). */
#define TINYFIX_WIRE_STR_MAX 32
/** Longest ERROR text (bytes, without NUL). */
#define TINYFIX_WIRE_TEXT_MAX 48
/** Most tensor dimensions a descriptor carries. */
#define TINYFIX_WIRE_MAX_DIMS 6

/** Worst-case COBS-encoded length of @p n bytes, without delimiters. */
#define TINYFIX_WIRE_COBS_MAX(n) ((n) + (n) / 254 + 1)
/** Worst-case bytes on the wire for a frame body of @p n bytes, both delimiters included. */
#define TINYFIX_WIRE_WIRE_MAX(n) (TINYFIX_WIRE_COBS_MAX(n) + 2)

/* Message types; a response has the request's type and TINYFIX_WIRE_FLAG_RESPONSE. */
#define TINYFIX_WIRE_MSG_INFO       0x01
#define TINYFIX_WIRE_MSG_INFER      0x02
#define TINYFIX_WIRE_MSG_CAPTURE    0x03
#define TINYFIX_WIRE_MSG_GET_PARAMS 0x04
#define TINYFIX_WIRE_MSG_SET_PARAMS 0x05
#define TINYFIX_WIRE_MSG_STATS      0x06
#define TINYFIX_WIRE_MSG_WRITE      0x07
#define TINYFIX_WIRE_MSG_READ       0x08
#define TINYFIX_WIRE_MSG_ERROR      0x7F

/* Header flags. */
#define TINYFIX_WIRE_FLAG_RESPONSE   0x80 /* set on every device-to-host frame */
#define TINYFIX_WIRE_FLAG_MORE       0x40 /* response: more frames follow for this seq */
#define TINYFIX_WIRE_FLAG_FEATURES   0x01 /* INFER request: return the feature vector */
#define TINYFIX_WIRE_FLAG_RESET      0x02 /* INFER request: reset run-time state first */
#define TINYFIX_WIRE_FLAG_NO_PERSIST 0x01 /* SET_PARAMS request: do not store for next boot */
#define TINYFIX_WIRE_FLAG_STAGED     0x04 /* INFER / SET_PARAMS request: the WRITE-staged data */
#define TINYFIX_WIRE_FLAG_MODEL_RESET 0x08 /* INFER request: reset the model's own state first */

/* WRITE / READ targets. */
#define TINYFIX_WIRE_TARGET_INPUT    1 /* WRITE: the model's input tensor, for INFER STAGED */
#define TINYFIX_WIRE_TARGET_PARAMS   2 /* WRITE: a blob for SET_PARAMS STAGED; READ: the set */
#define TINYFIX_WIRE_TARGET_OUTPUT   3 /* READ: the last INFER's raw output tensor */
#define TINYFIX_WIRE_TARGET_FEATURES 4 /* READ: the last INFER's feature vector */

/* INFER response flags (appended field). */
#define TINYFIX_WIRE_INFER_ANOMALY       0x01 /* the anomaly stage flagged this frame */
#define TINYFIX_WIRE_INFER_RAW_DEFERRED  0x02 /* raw output not inline: READ OUTPUT */
#define TINYFIX_WIRE_INFER_FEAT_DEFERRED 0x04 /* features not inline: READ FEATURES */

/* Fixed payload bytes of WRITE and READ requests and responses, before their data. */
#define TINYFIX_WIRE_WRITE_REQ_FIXED 9
#define TINYFIX_WIRE_WRITE_RSP_LEN   11
#define TINYFIX_WIRE_READ_REQ_LEN    7
#define TINYFIX_WIRE_READ_RSP_FIXED  11

/* INFO capability bits. */
#define TINYFIX_WIRE_CAP_CAPTURE  0x01
#define TINYFIX_WIRE_CAP_FEATURES 0x02
#define TINYFIX_WIRE_CAP_PERSIST  0x04
#define TINYFIX_WIRE_CAP_ADAPT    0x08
#define TINYFIX_WIRE_CAP_FLOAT    0x10
#define TINYFIX_WIRE_CAP_CHUNKS   0x20 /* WRITE and READ: tensors and sets of any size */
#define TINYFIX_WIRE_CAP_MODEL_RESET 0x40 /* the model keeps state; INFER MODEL_RESET resets it */

/* STATS drift flags. */
#define TINYFIX_WIRE_DRIFT_ADVISED 0x01

/* Data types: the values of TFLite Micro's TfLiteType. */
#define TINYFIX_WIRE_DTYPE_NONE    0
#define TINYFIX_WIRE_DTYPE_FLOAT32 1
#define TINYFIX_WIRE_DTYPE_INT32   2
#define TINYFIX_WIRE_DTYPE_UINT8   3
#define TINYFIX_WIRE_DTYPE_INT16   7
#define TINYFIX_WIRE_DTYPE_INT8    9

/*
 * Link-level status codes, -256 .. -511. The core's own TINYFIX_E* codes use -1 .. -255;
 * both travel in the i16 status fields of INFER, SET_PARAMS and ERROR.
 */
#define TINYFIX_WIRE_ERR_TYPE        (-256) /* unknown message type */
#define TINYFIX_WIRE_ERR_LENGTH      (-257) /* payload too short or of the wrong size */
#define TINYFIX_WIRE_ERR_BUSY        (-258) /* busy with another request, retry later */
#define TINYFIX_WIRE_ERR_CRC         (-259) /* frame CRC mismatch */
#define TINYFIX_WIRE_ERR_FRAMING     (-260) /* COBS error or frame shorter than 9 bytes */
#define TINYFIX_WIRE_ERR_TOO_LONG    (-261) /* frame longer than the receiver's buffer */
#define TINYFIX_WIRE_ERR_VERSION     (-262) /* protocol version not supported */
#define TINYFIX_WIRE_ERR_UNSUPPORTED (-263) /* feature not available on this device */
#define TINYFIX_WIRE_ERR_VALUE       (-264) /* a field is out of range */
#define TINYFIX_WIRE_ERR_INVOKE      (-265) /* the model's Invoke() failed */
#define TINYFIX_WIRE_ERR_SENSOR      (-266) /* reading the sensor failed */
#define TINYFIX_WIRE_ERR_NO_SPACE    (-267) /* local only: output buffer too small */

/** Return value of tinyfix_wire_rx_feed() when a valid frame is complete. */
#define TINYFIX_WIRE_RX_FRAME 1

/** A decoded frame. */
struct tinyfix_wire_frame {
	/** Protocol version from the header. */
	uint8_t version;
	/** Message type (TINYFIX_WIRE_MSG_*). */
	uint8_t type;
	/** Header flags (TINYFIX_WIRE_FLAG_*). */
	uint8_t flags;
	/** 1 if version, type, seq and flags were read from the frame, else 0. */
	uint8_t has_hdr;
	/** Sequence number. */
	uint16_t seq;
	/** CRC32 trailer of a valid frame (lets a device recognise a repeated request). */
	uint32_t crc;
	/** Payload length in bytes. */
	size_t payload_len;
	/** Payload; points into the receiver's buffer, valid until the next feed. */
	const uint8_t *payload;
};

/**
 * Incremental frame receiver. The caller owns it and its buffer; treat the fields as
 * private except the counters, which feed STATS. Not ISR-safe against itself: feed one
 * receiver from one context.
 */
struct tinyfix_wire_rx {
	/** Buffer for the decoded frame body. */
	uint8_t *buf;
	/** Buffer size: the largest frame body accepted (max_frame). */
	size_t cap;
	/** Body bytes decoded so far in this frame (may exceed cap after an overflow). */
	size_t len;
	/** Data bytes left in the current COBS block. */
	uint8_t left;
	/** Code byte of the current COBS block, 0 before the first block of a frame. */
	uint8_t code;
	/** Valid frames received. */
	uint32_t frames_ok;
	/** Frames dropped for a CRC mismatch. */
	uint32_t crc_errors;
	/** Frames dropped for a COBS error, a short body or an overflow. */
	uint32_t framing_errors;
};

/** Device-side INFO fields; see docs/protocol.md section 5.1. */
struct tinyfix_wire_tensor {
	/** TINYFIX_WIRE_DTYPE_*; NONE with ndims 0 describes an absent tensor. */
	uint8_t dtype;
	/** Number of dimensions, 0 .. TINYFIX_WIRE_MAX_DIMS. */
	uint8_t ndims;
	/** Dimensions. */
	uint16_t dims[TINYFIX_WIRE_MAX_DIMS];
	/** Quantization scale as the IEEE 754 binary32 bit pattern (0 for float tensors). */
	uint32_t scale_f32;
	/** Quantization zero point. */
	int32_t zero_point;
};

/** INFO response. */
struct tinyfix_wire_info {
	uint8_t caps;
	uint16_t max_frame;
	uint32_t model_crc;
	uint32_t params_crc;
	uint16_t params_format;
	uint16_t n_classes;
	uint16_t max_classes;
	uint16_t max_window;
	/** Cycle counter rate in Hz, 0 if unknown. */
	uint32_t cycle_hz;
	struct tinyfix_wire_tensor input;
	struct tinyfix_wire_tensor output;
	struct tinyfix_wire_tensor feature;
	/** NUL-terminated, at most TINYFIX_WIRE_STR_MAX bytes; NULL sends an empty string. */
	const char *fw_version;
	/** NUL-terminated, at most TINYFIX_WIRE_STR_MAX bytes; NULL sends an empty string. */
	const char *board;
	/* Appended in the same protocol version: what the device can take. */
	/** enum tinyfix_model_kind: 0 classifier, 1 binary (one output), 2 autoencoder. */
	uint8_t model_kind;
	/** Raw output tensor elements. */
	uint32_t n_outputs;
	/** Largest parameter blob SET_PARAMS takes (inline, or staged with WRITE), bytes. */
	uint32_t max_params;
	/** Build limits: TINYFIX_MAX_FEATURES, _HEAD_WEIGHTS, _CHANNELS, _ANOMALY_WINDOW. */
	uint16_t max_features;
	uint32_t max_head_weights;
	uint16_t max_channels;
	uint16_t max_anomaly_window;
};

/** INFER request, decoded. */
struct tinyfix_wire_infer_req {
	/** True class for on-device adaptation, -1 for none. */
	int16_t label;
	/** Input tensor bytes; points into the frame payload. */
	const uint8_t *input;
	/** Input tensor byte count. */
	size_t input_len;
};

/** INFER response. */
struct tinyfix_wire_infer_rsp {
	int16_t status;
	int16_t top_class;
	int16_t decision;
	/** Confidence of top_class, Q15 (32768 = 1.0). */
	uint16_t top_conf;
	uint32_t cycles_invoke;
	uint32_t cycles_tinyfix;
	/** Raw output tensor bytes. */
	const uint8_t *raw;
	uint16_t raw_len;
	/** Per-class corrected probabilities, Q15. */
	const uint16_t *prob;
	uint16_t n_prob;
	/** Feature vector, or NULL with n_features 0. */
	const int8_t *features;
	uint16_t n_features;
	/* Appended in the same protocol version. */
	/** The anomaly stage's score for this frame, Q16.16 (0 without the stage). */
	int32_t anomaly_score;
	/** TINYFIX_WIRE_INFER_* bits. */
	uint8_t flags;
};

/** WRITE request, decoded: one chunk of a staged object. */
struct tinyfix_wire_write_req {
	uint8_t target;
	/** Where this chunk goes in the object. */
	uint32_t offset;
	/** The whole object's length, the same in every chunk. */
	uint32_t total;
	/** Chunk bytes; point into the frame payload. */
	const uint8_t *data;
	size_t len;
};

/** WRITE response. */
struct tinyfix_wire_write_rsp {
	int16_t status;
	uint8_t target;
	/** Bytes received in order so far: the offset the host sends next. */
	uint32_t next;
	uint32_t total;
};

/** READ request, decoded. */
struct tinyfix_wire_read_req {
	uint8_t target;
	uint32_t offset;
	/** Most data bytes wanted. */
	uint16_t max_len;
};

/** CAPTURE request, decoded. */
struct tinyfix_wire_capture_req {
	uint16_t count;
	uint8_t dtype;
};

/** One CAPTURE response window. */
struct tinyfix_wire_capture_rsp {
	uint16_t index;
	uint16_t count;
	/** Device uptime at the window's first sample, ms. */
	uint32_t t_ms;
	uint16_t n_values;
	uint8_t dtype;
	/**
	 * n_values elements in host byte order: int8/uint8 bytes, int16_t, or for float32
	 * the binary32 bit patterns (float or uint32_t storage; they are copied, not used).
	 */
	const void *data;
};

/** SET_PARAMS response. */
struct tinyfix_wire_setp_rsp {
	int16_t status;
	uint32_t params_crc;
	uint8_t persisted;
};

/** STATS response. */
struct tinyfix_wire_stats {
	uint32_t uptime_ms;
	uint32_t frames_ok;
	uint32_t crc_errors;
	uint32_t framing_errors;
	uint32_t inferences;
	uint32_t params_crc;
	uint32_t drift_flags;
	uint32_t replays;
	/* Drift monitor figures (struct tinyfix_drift); 0 when the MONITOR stage is off. */
	uint16_t mean_conf;  /* Q15 */
	uint16_t prior_tv;   /* Q15 */
	uint16_t input_z_q8; /* Q8.8 */
	uint32_t monitor_frames;
};

/** ERROR response. */
struct tinyfix_wire_error {
	int16_t status;
	uint16_t seq;
	uint8_t type;
	/** NUL-terminated; longer text is cut at TINYFIX_WIRE_TEXT_MAX bytes; NULL = empty. */
	const char *text;
};

/**
 * @brief COBS-encode a buffer (no delimiters are written).
 *
 * @param src Bytes to encode.
 * @param len Number of bytes.
 * @param dst Output; must not overlap @p src. TINYFIX_WIRE_COBS_MAX(len) bytes always do.
 * @param cap Size of @p dst.
 *
 * @retval >=1 Encoded length.
 * @retval TINYFIX_WIRE_ERR_NO_SPACE @p dst is too small.
 */
int tinyfix_wire_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap);

/**
 * @brief Decode one COBS block sequence (without delimiters).
 *
 * Decoding in place (@p dst == @p src) is allowed: output never overtakes input.
 *
 * @param src Encoded bytes, none of them 0x00.
 * @param len Number of encoded bytes.
 * @param dst Output buffer.
 * @param cap Size of @p dst.
 *
 * @retval >=0 Decoded length.
 * @retval TINYFIX_WIRE_ERR_FRAMING A 0x00 in @p src, or the input ends inside a block.
 * @retval TINYFIX_WIRE_ERR_NO_SPACE @p dst is too small.
 */
int tinyfix_wire_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap);

/**
 * @brief Build a complete frame for the wire: 0x00, COBS(header, payload, CRC32), 0x00.
 *
 * The CRC is computed with tinyfix_crc32(); no scratch buffer is used.
 *
 * @param type Message type.
 * @param seq Sequence number.
 * @param flags Header flags.
 * @param payload Payload bytes (may be NULL when @p payload_len is 0).
 * @param payload_len Payload length.
 * @param dst Output; TINYFIX_WIRE_WIRE_MAX(payload_len + 9) bytes always suffice.
 * @param cap Size of @p dst.
 *
 * @retval >0 Bytes to send.
 * @retval TINYFIX_WIRE_ERR_TOO_LONG The body would exceed TINYFIX_WIRE_MAX_FRAME_LIMIT.
 * @retval TINYFIX_WIRE_ERR_NO_SPACE @p dst is too small.
 */
int tinyfix_wire_frame_build(uint8_t type, uint16_t seq, uint8_t flags, const uint8_t *payload,
			     size_t payload_len, uint8_t *dst, size_t cap);

/**
 * @brief Parse a decoded frame body: check its length and CRC, split header and payload.
 *
 * @param body Decoded body (header, payload, CRC).
 * @param len Body length.
 * @param frame Filled in; on error, has_hdr says whether the header fields are set.
 *
 * @retval 0 Valid frame; frame->payload points into @p body.
 * @retval TINYFIX_WIRE_ERR_FRAMING Fewer than TINYFIX_WIRE_OVERHEAD bytes.
 * @retval TINYFIX_WIRE_ERR_CRC CRC mismatch.
 */
int tinyfix_wire_frame_parse(const uint8_t *body, size_t len, struct tinyfix_wire_frame *frame);

/**
 * @brief Initialise a receiver.
 *
 * @param rx Receiver state, owned by the caller.
 * @param buf Buffer for one decoded frame body, owned by the caller.
 * @param cap Size of @p buf: the largest frame body accepted.
 *
 * @retval 0 Ready.
 * @retval TINYFIX_WIRE_ERR_VALUE @p cap is below TINYFIX_WIRE_OVERHEAD or above
 *         TINYFIX_WIRE_MAX_FRAME_LIMIT.
 */
int tinyfix_wire_rx_init(struct tinyfix_wire_rx *rx, uint8_t *buf, size_t cap);

/**
 * @brief Drop any partial frame; the counters are kept.
 *
 * @param rx Receiver.
 */
void tinyfix_wire_rx_reset(struct tinyfix_wire_rx *rx);

/**
 * @brief Feed one received byte.
 *
 * At each 0x00 delimiter the frame so far is judged (docs/protocol.md section 2.2) and
 * counted; empty frames are ignored. Any error resynchronises at the next delimiter.
 *
 * @param rx Receiver.
 * @param byte The byte.
 * @param frame Set when the return value is not 0. On an error, has_hdr is 1 if the
 *              header was decoded, and then the device should reply ERROR with its seq.
 *
 * @retval 0 No frame completed.
 * @retval TINYFIX_WIRE_RX_FRAME A valid frame; its payload stays valid until the next feed.
 * @retval TINYFIX_WIRE_ERR_TOO_LONG The frame overflowed the buffer and was dropped.
 * @retval TINYFIX_WIRE_ERR_FRAMING COBS error or short frame, dropped.
 * @retval TINYFIX_WIRE_ERR_CRC CRC mismatch, dropped.
 */
int tinyfix_wire_rx_feed(struct tinyfix_wire_rx *rx, uint8_t byte,
			 struct tinyfix_wire_frame *frame);

/**
 * @brief Feed bytes until the first event (frame or error) or the end of the data.
 *
 * @param rx Receiver.
 * @param data Received bytes.
 * @param len Number of bytes.
 * @param used Set to the bytes consumed (up to and including the byte that completed
 *             the event); feed the rest in the next call.
 * @param frame As for tinyfix_wire_rx_feed().
 *
 * @return As tinyfix_wire_rx_feed(), for the event that stopped the call or 0.
 */
int tinyfix_wire_rx_push(struct tinyfix_wire_rx *rx, const uint8_t *data, size_t len,
			 size_t *used, struct tinyfix_wire_frame *frame);

/**
 * @brief Size in bytes of one element of a data type.
 *
 * @param dtype TINYFIX_WIRE_DTYPE_*.
 *
 * @return 1, 2 or 4; 0 for NONE or an unknown type.
 */
size_t tinyfix_wire_dtype_size(uint8_t dtype);

/**
 * @brief Encode an INFO response payload.
 *
 * @param info Fields to send; proto_version is always TINYFIX_WIRE_VERSION.
 * @param dst Output buffer.
 * @param cap Size of @p dst.
 *
 * @retval >0 Payload length.
 * @retval TINYFIX_WIRE_ERR_VALUE A tensor has more than TINYFIX_WIRE_MAX_DIMS dims or a
 *         string is longer than TINYFIX_WIRE_STR_MAX bytes.
 * @retval TINYFIX_WIRE_ERR_NO_SPACE @p dst is too small.
 */
int tinyfix_wire_info_encode(const struct tinyfix_wire_info *info, uint8_t *dst, size_t cap);

/**
 * @brief Decode an INFER request payload.
 *
 * The input length is not checked here: the caller compares req->input_len with its
 * input tensor's size and replies TINYFIX_WIRE_ERR_LENGTH on a mismatch.
 *
 * @param payload Request payload.
 * @param len Payload length.
 * @param req Filled in; req->input points into @p payload.
 *
 * @retval 0 Decoded.
 * @retval TINYFIX_WIRE_ERR_LENGTH Shorter than the label field.
 */
int tinyfix_wire_infer_req_decode(const uint8_t *payload, size_t len,
				  struct tinyfix_wire_infer_req *req);

/**
 * @brief Encode an INFER response payload.
 *
 * @param rsp Fields; raw, prob and features may be NULL only when their count is 0.
 * @param dst Output buffer.
 * @param cap Size of @p dst.
 *
 * @retval >0 Payload length.
 * @retval TINYFIX_WIRE_ERR_VALUE A NULL array with a non-zero count.
 * @retval TINYFIX_WIRE_ERR_NO_SPACE @p dst is too small.
 */
int tinyfix_wire_infer_rsp_encode(const struct tinyfix_wire_infer_rsp *rsp, uint8_t *dst,
				  size_t cap);

/**
 * @brief Decode a CAPTURE request payload.
 *
 * @param payload Request payload.
 * @param len Payload length.
 * @param req Filled in.
 *
 * @retval 0 Decoded.
 * @retval TINYFIX_WIRE_ERR_LENGTH Too short.
 * @retval TINYFIX_WIRE_ERR_VALUE count is 0.
 * @retval TINYFIX_WIRE_ERR_UNSUPPORTED dtype is neither float32 nor int8.
 */
int tinyfix_wire_capture_req_decode(const uint8_t *payload, size_t len,
				    struct tinyfix_wire_capture_req *req);

/**
 * @brief Encode one CAPTURE response window.
 *
 * @param rsp Fields; data holds n_values elements of dtype.
 * @param dst Output buffer.
 * @param cap Size of @p dst.
 *
 * @retval >0 Payload length.
 * @retval TINYFIX_WIRE_ERR_VALUE Unknown dtype, or NULL data with n_values > 0.
 * @retval TINYFIX_WIRE_ERR_NO_SPACE @p dst is too small.
 */
int tinyfix_wire_capture_rsp_encode(const struct tinyfix_wire_capture_rsp *rsp, uint8_t *dst,
				    size_t cap);

/**
 * @brief Encode a SET_PARAMS response payload.
 *
 * @param rsp Fields.
 * @param dst Output buffer.
 * @param cap Size of @p dst.
 *
 * @retval >0 Payload length.
 * @retval TINYFIX_WIRE_ERR_NO_SPACE @p dst is too small.
 */
int tinyfix_wire_setp_rsp_encode(const struct tinyfix_wire_setp_rsp *rsp, uint8_t *dst,
				 size_t cap);

/**
 * @brief Encode a STATS response payload.
 *
 * @param stats Fields.
 * @param dst Output buffer.
 * @param cap Size of @p dst.
 *
 * @retval >0 Payload length.
 * @retval TINYFIX_WIRE_ERR_NO_SPACE @p dst is too small.
 */
int tinyfix_wire_stats_encode(const struct tinyfix_wire_stats *stats, uint8_t *dst, size_t cap);

/**
 * @brief Decode a WRITE request payload.
 *
 * @retval 0 Decoded; req->data points into @p payload.
 * @retval TINYFIX_WIRE_ERR_LENGTH Shorter than the fixed fields, or the chunk runs past
 *         total.
 */
int tinyfix_wire_write_req_decode(const uint8_t *payload, size_t len,
				  struct tinyfix_wire_write_req *req);

/**
 * @brief Encode a WRITE response payload.
 *
 * @retval >0 Payload length.
 * @retval TINYFIX_WIRE_ERR_NO_SPACE @p dst is too small.
 */
int tinyfix_wire_write_rsp_encode(const struct tinyfix_wire_write_rsp *rsp, uint8_t *dst,
				  size_t cap);

/**
 * @brief Decode a READ request payload.
 *
 * @retval 0 Decoded.
 * @retval TINYFIX_WIRE_ERR_LENGTH Too short.
 */
int tinyfix_wire_read_req_decode(const uint8_t *payload, size_t len,
				 struct tinyfix_wire_read_req *req);

/**
 * @brief Write the fixed part of a READ response (status, target, offset, total); the data
 * follows it at dst + TINYFIX_WIRE_READ_RSP_FIXED, put there by the caller.
 *
 * @retval TINYFIX_WIRE_READ_RSP_FIXED
 * @retval TINYFIX_WIRE_ERR_NO_SPACE @p cap is below TINYFIX_WIRE_READ_RSP_FIXED.
 */
int tinyfix_wire_read_rsp_header(int16_t status, uint8_t target, uint32_t offset, uint32_t total,
				 uint8_t *dst, size_t cap);

/**
 * @brief Encode an ERROR response payload.
 *
 * @param err Fields.
 * @param dst Output buffer.
 * @param cap Size of @p dst.
 *
 * @retval >0 Payload length.
 * @retval TINYFIX_WIRE_ERR_NO_SPACE @p dst is too small.
 */
int tinyfix_wire_error_encode(const struct tinyfix_wire_error *err, uint8_t *dst, size_t cap);

/**
 * @brief Build the complete ERROR frame answering a bad or refused request.
 *
 * The frame has the device's protocol version, type ERROR, the request's seq and
 * TINYFIX_WIRE_FLAG_RESPONSE.
 *
 * @param status Negative status code to report.
 * @param req The offending frame; its seq and type are used (type 0 if !has_hdr).
 * @param text Short detail (NUL-terminated, cut at TINYFIX_WIRE_TEXT_MAX) or NULL.
 * @param dst Output; TINYFIX_WIRE_WIRE_MAX(TINYFIX_WIRE_OVERHEAD + 6 + TINYFIX_WIRE_TEXT_MAX)
 *            bytes always suffice.
 * @param cap Size of @p dst.
 *
 * @retval >0 Bytes to send.
 * @retval TINYFIX_WIRE_ERR_NO_SPACE @p dst is too small.
 */
int tinyfix_wire_error_build(int16_t status, const struct tinyfix_wire_frame *req,
			     const char *text, uint8_t *dst, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* TINYFIX_WIRE_H_ */
