/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * TinyFix device link: the request dispatcher of the device side of the wire protocol
 * (docs/protocol.md), shared by the firmware and the host-side twin. Bytes from the host go
 * in with tinyfix_link_feed(); every complete request is executed against a tinyfix context
 * and answered through the platform's write callback.
 *
 * The dispatcher handles INFO, INFER (model through a callback, then tinyfix_process(), or
 * tinyfix_process_recon() for an autoencoder), CAPTURE (through a callback), GET_PARAMS,
 * SET_PARAMS (validated and applied atomically by tinyfix_set_params(), then persisted
 * through a callback), STATS, WRITE and READ (tensors and parameter sets of any size in
 * chunks: an input written straight into the model's input tensor, a parameter blob staged
 * whole before SET_PARAMS checks it, the raw output and features read where they lie), the
 * ERROR replies for damaged frames, unknown types and wrong lengths, and the replay of a
 * repeated request from the kept response (a retried SET_PARAMS is never applied twice).
 *
 * Portable C99: no OS calls, no heap, no float arithmetic. The caller owns the link struct,
 * its buffers and the context. Not ISR-safe: feed one link from one thread. The callbacks
 * run in that thread, inside tinyfix_link_feed(), which also calls the core on the context:
 * hold whatever lock guards the context (tinyfix_zephyr_lock()) around the feed.
 *
 * INFER runs tinyfix_process() with the device's uptime (ops->uptime_ms) as the frame time,
 * since the request carries none; its decision is the threshold's, or with the VOTE stage on
 * the class of a detection starting on that frame (vote_event), else -1. A label >= 0
 * steps on-device adaptation when the parameter set has the ADAPT stage.
 *
 * A request is matched with the kept response by seq, frame CRC and a second hash; a match
 * is answered from the kept bytes without running anything (SET_PARAMS is never applied or
 * stored twice). CAPTURE blocks the feed for the whole stream.
 *
 * @code
 * #define LINK_MAX_FRAME 1024
 * TINYFIX_LINK_BUFFERS_DEFINE(link_bufs, LINK_MAX_FRAME, 0);
 * static struct tinyfix_link link;
 * static const struct tinyfix_link_ops link_ops = {
 *	.write = uart_write, .info = fill_info, .invoke = run_model,
 *	.input_buffer = input_tensor, .persist = save_params, .cycles = read_cycles,
 *	.uptime_ms = uptime,
 * };
 *
 * int link_start(struct tinyfix_ctx *ctx)
 * {
 *	return tinyfix_link_init(&link, ctx, &link_ops, NULL, &link_bufs);
 * }
 *
 * void link_thread(void)
 * {
 *	uint8_t chunk[64];
 *
 *	for (;;) {
 *		size_t n = uart_read(chunk, sizeof(chunk));
 *
 *		(void)tinyfix_link_feed(&link, chunk, n);
 *	}
 * }
 * @endcode
 */

#ifndef TINYFIX_LINK_H_
#define TINYFIX_LINK_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tinyfix/tinyfix.h>
#include <tinyfix/wire.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Largest feature vector the link returns and hands to the head stage, elements. Defaults to
 * the core's TINYFIX_MAX_FEATURES; define it larger to return features from a build whose
 * head stage is compiled out (the host can still fit a head from them).
 */
#ifndef TINYFIX_LINK_MAX_FEATURES
#define TINYFIX_LINK_MAX_FEATURES TINYFIX_MAX_FEATURES
#endif

#if TINYFIX_LINK_MAX_FEATURES < 0 || TINYFIX_LINK_MAX_FEATURES > 4096
#error "TINYFIX_LINK_MAX_FEATURES must be in [0, 4096]"
#endif

/** Wire bytes of the largest link-level ERROR frame (header, status, seq, type, text, CRC). */
#define TINYFIX_LINK_ERR_WIRE_MAX                                                                  \
	TINYFIX_WIRE_WIRE_MAX(TINYFIX_WIRE_OVERHEAD + 6 + TINYFIX_WIRE_TEXT_MAX)

/** Transmit buffer size for a link whose largest frame is @p max_frame bytes. */
#define TINYFIX_LINK_TX_SIZE(max_frame) TINYFIX_WIRE_WIRE_MAX(max_frame)
/** Scratch (response payload) buffer size for a largest frame of @p max_frame bytes. */
#define TINYFIX_LINK_SCRATCH_SIZE(max_frame) ((max_frame) - TINYFIX_WIRE_OVERHEAD)

/**
 * Platform callbacks. write, info and invoke are required; the others may be NULL.
 * Every callback gets the user pointer given to tinyfix_link_init().
 */
struct tinyfix_link_ops {
	/**
	 * Send bytes to the host, all of them, before returning. Must not call back into the
	 * link.
	 */
	void (*write)(void *user, const uint8_t *data, size_t len);

	/**
	 * Fill the static INFO fields, once, from tinyfix_link_init(): model_crc, cycle_hz, the
	 * input, output and feature tensor descriptors, fw_version and board (strings that stay
	 * valid as long as the link). The link fills caps, max_frame, params_crc,
	 * params_format, n_classes, max_classes and max_window itself. A feature descriptor of
	 * dtype TINYFIX_WIRE_DTYPE_NONE means the device has no feature vector.
	 */
	void (*info)(void *user, struct tinyfix_wire_info *info);

	/**
	 * Run the model on one input tensor. Nothing is copied back: the platform says where
	 * the raw output and the features lie, and they must stay there, unchanged, until the
	 * next invoke (the link reads them for the response and for READ requests).
	 *
	 * @param input    the input tensor bytes, exactly the size of the INFO input tensor;
	 *                 the buffer ops->input_buffer returned when they were staged there
	 *                 (then already in place: nothing to copy)
	 * @param len      their count
	 * @param raw      out: where the raw output tensor lies (INFO output tensor size)
	 * @param features out: where the int8 feature vector lies (INFO feature tensor), or
	 *                 NULL when the link does not want it for this request
	 * @param cycles   out: cycles spent in the interpreter's Invoke() (preset to 0); left 0,
	 *                 the link measures the whole callback with the cycles callback
	 * @retval 0 done
	 * @retval <0 a TINYFIX_WIRE_ERR_* code for the ERROR reply; other values are sent as
	 *         TINYFIX_WIRE_ERR_INVOKE
	 */
	int (*invoke)(void *user, const uint8_t *input, size_t len, const uint8_t **raw,
		      const int8_t **features, uint32_t *cycles);

	/**
	 * Optional: the model's input tensor memory (INFO input size), where WRITE INPUT puts
	 * its chunks, so a large input is never held twice. NULL: inputs must fit one frame.
	 * The platform must not write that memory itself while a staged input is pending
	 * without calling tinyfix_link_input_clobbered().
	 */
	uint8_t *(*input_buffer)(void *user);

	/**
	 * Optional: wait for the next live sensor window and deliver it. NULL: CAPTURE is
	 * answered with TINYFIX_WIRE_ERR_UNSUPPORTED and INFO has no CAPTURE capability.
	 *
	 * @param dtype    TINYFIX_WIRE_DTYPE_FLOAT32: sensor values in the model's input units,
	 *                 before input correction, as binary32 bit patterns in host order;
	 *                 TINYFIX_WIRE_DTYPE_INT8: the model input after tinyfix_input_correct()
	 * @param values   out: the window's elements
	 * @param cap      size of @p values in bytes
	 * @param n_values out: elements written
	 * @param t_ms     out: device uptime at the window's first sample, ms
	 * @retval 0 done
	 * @retval <0 a TINYFIX_WIRE_ERR_* code (TINYFIX_WIRE_ERR_SENSOR when reading failed)
	 */
	int (*capture)(void *user, uint8_t dtype, void *values, size_t cap, uint16_t *n_values,
		       uint32_t *t_ms);

	/**
	 * Optional: store an applied parameter blob for the next boot (settings, flash, a
	 * file). NULL: nothing is stored and INFO has no PERSIST capability.
	 *
	 * @retval 0 stored
	 * @retval <0 not stored (the set stays applied; the reply says persisted = 0)
	 */
	int (*persist)(void *user, const uint8_t *blob, size_t len);

	/** Optional: a free-running cycle counter at INFO's cycle_hz; NULL: cycles are 0. */
	uint32_t (*cycles)(void *user);

	/** Optional: device uptime in ms (STATS, voting time of INFER frames); NULL: 0. */
	uint32_t (*uptime_ms)(void *user);

	/**
	 * Optional, for a model that keeps state from one invocation to the next (variable
	 * tensors of LSTM or SVDF ops, resource variables): reset it (TFLM's
	 * MicroInterpreter::Reset()) before an INFER with MODEL_RESET. Set, INFO has the
	 * MODEL_RESET capability, which tells the host the model keeps state, so that it sends
	 * every classification sample with MODEL_RESET. NULL for a stateless model.
	 *
	 * @retval 0 done
	 * @retval <0 a TINYFIX_WIRE_ERR_* code for the ERROR reply
	 */
	int (*reset_model)(void *user);
};

/** Caller-owned buffers; see TINYFIX_LINK_BUFFERS_DEFINE() for static ones. */
struct tinyfix_link_buffers {
	/**
	 * Optional: where WRITE PARAMS stages a parameter blob larger than a frame before
	 * SET_PARAMS checks it whole (TINYFIX_PARAMS_BLOB_MAX holds any set of this build).
	 * NULL: parameter sets must fit one frame.
	 */
	uint8_t *params;
	size_t params_size;
	/**
	 * Autoencoders with inputs staged by WRITE only: a copy of the input (INFO input size),
	 * since Invoke() may reuse the input tensor's memory before the reconstruction error is
	 * computed. NULL otherwise.
	 */
	uint8_t *recon;
	size_t recon_size;
	/** Receive buffer: its size is max_frame, the largest frame accepted and sent. */
	uint8_t *rx;
	size_t rx_size;
	/** Transmit buffer, TINYFIX_LINK_TX_SIZE(max_frame): also keeps the last response. */
	uint8_t *tx;
	size_t tx_size;
	/** Response payloads and capture windows, TINYFIX_LINK_SCRATCH_SIZE(max_frame). */
	uint8_t *scratch;
	size_t scratch_size;
};

/**
 * Define static buffers for a link with largest frame @p frame_size, a staging area of
 * @p staging_size bytes for parameter blobs (0: none), and their descriptor. (The
 * parameters are not named after the fields: a macro would substitute those too.)
 */
#define TINYFIX_LINK_BUFFERS_DEFINE(name, frame_size, staging_size)                                \
	static uint8_t name##_rx[(frame_size)];                                                    \
	static uint8_t name##_tx[TINYFIX_LINK_TX_SIZE(frame_size)];                                \
	static uint8_t name##_scratch[TINYFIX_LINK_SCRATCH_SIZE(frame_size)];                      \
	static uint8_t name##_params[(staging_size) > 0 ? (staging_size) : 1];                     \
	static const struct tinyfix_link_buffers name = {                                          \
		.params = (staging_size) > 0 ? name##_params : NULL,                               \
		.params_size = (staging_size),                                                     \
		.rx = name##_rx,                                                                   \
		.rx_size = sizeof(name##_rx),                                                      \
		.tx = name##_tx,                                                                   \
		.tx_size = sizeof(name##_tx),                                                      \
		.scratch = name##_scratch,                                                         \
		.scratch_size = sizeof(name##_scratch),                                            \
	}

/** An object being staged by WRITE requests. */
struct tinyfix_link_staging {
	/** Length announced in its chunks; 0 when nothing is staged. */
	uint32_t total;
	/** Bytes received in order: the next chunk's offset. */
	uint32_t received;
};

/**
 * One device end of the link. Caller-owned; treat the fields as private and read the
 * counters with tinyfix_link_stats(). Its size is fixed by TINYFIX_MAX_* (it holds a decoded
 * parameter set, so with the head stage it is about as large as the context).
 */
struct tinyfix_link {
	struct tinyfix_wire_rx rx;
	struct tinyfix_ctx *ctx;
	const struct tinyfix_link_ops *ops;
	void *user;
	/** Static INFO fields from ops->info. */
	struct tinyfix_wire_info info;
	size_t input_len;
	size_t raw_len;
	uint16_t n_features;
	/** Largest blob SET_PARAMS can take (inline or staged). */
	size_t max_params;

	/** WRITE staging: the input (in ops->input_buffer) and a parameter blob (in params). */
	struct tinyfix_link_staging staged_input;
	struct tinyfix_link_staging staged_params;
	uint8_t *input_tensor;
	uint8_t *params_buf;
	size_t params_buf_size;
	uint8_t *recon;
	size_t recon_size;
	/** Where the last INFER's raw output and features lie (READ OUTPUT / FEATURES). */
	const uint8_t *last_raw;
	const int8_t *last_features;

	uint8_t *tx;
	size_t tx_size;
	/** Wire bytes of the kept response in tx; 0 when nothing is kept. */
	size_t kept_len;
	uint16_t kept_seq;
	uint32_t kept_crc;
	/** Second fingerprint of the kept request (the CRC misses some differences). */
	uint32_t kept_hash;
	uint8_t *scratch;
	size_t scratch_size;
	uint8_t err_wire[TINYFIX_LINK_ERR_WIRE_MAX];

	/** Decoding target of SET_PARAMS; too large for a thread stack with the head stage. */
	struct tinyfix_params staging;
	struct tinyfix_result result;

	uint32_t inferences;
	uint32_t replays;
};

/**
 * @brief Prepare a link for a context whose model is set up (tinyfix_init() done).
 *
 * Calls ops->info once and checks that the model's tensors fit this build and the buffers:
 * the output tensor has the context model's output count and type, the feature vector fits
 * TINYFIX_LINK_MAX_FEATURES, and an input or parameter blob larger than a frame has a place
 * to be staged (ops->input_buffer, bufs->params).
 *
 * @param link Link state, owned by the caller.
 * @param ctx  Initialised tinyfix context; the link calls the core on it.
 * @param ops  Platform callbacks, kept by pointer.
 * @param user Passed to every callback.
 * @param bufs Buffers, kept by pointer; rx_size is the device's max_frame.
 *
 * @retval 0 Ready.
 * @retval TINYFIX_WIRE_ERR_VALUE A NULL pointer or required callback, rx_size outside
 *         [TINYFIX_WIRE_MIN_FRAME, TINYFIX_WIRE_MAX_FRAME_LIMIT], or tensors that do not
 *         match the context's model.
 * @retval TINYFIX_WIRE_ERR_UNSUPPORTED A tensor type the link cannot carry.
 * @retval TINYFIX_WIRE_ERR_NO_SPACE tx or scratch smaller than max_frame needs, the feature
 *         vector above TINYFIX_LINK_MAX_FEATURES, an input or the largest parameter blob of
 *         this model beyond one frame without a staging place, or an autoencoder whose
 *         staged input has no bufs->recon copy.
 */
int tinyfix_link_init(struct tinyfix_link *link, struct tinyfix_ctx *ctx,
		      const struct tinyfix_link_ops *ops, void *user,
		      const struct tinyfix_link_buffers *bufs);

/**
 * @brief Feed received bytes; every request completed by them is executed and answered.
 *
 * A partial frame is kept for the next call. Responses (and CAPTURE streams) are written
 * through ops->write before this returns.
 *
 * @param link Link.
 * @param data Received bytes.
 * @param len  Number of bytes.
 *
 * @retval >=0 Requests answered (executed or replayed) in this call.
 * @retval TINYFIX_WIRE_ERR_VALUE NULL link, or NULL data with len > 0.
 */
int tinyfix_link_feed(struct tinyfix_link *link, const uint8_t *data, size_t len);

/**
 * @brief The link's STATS figures (what a STATS request would answer now).
 *
 * drift_flags are tinyfix_drift_status()'s flags (0 when the MONITOR stage is off); reading
 * them here leaves the monitor's one-shot newly_advised for the application.
 *
 * @param link  Link.
 * @param stats Out.
 */
void tinyfix_link_stats(const struct tinyfix_link *link, struct tinyfix_wire_stats *stats);

/**
 * @brief What an INFO request would answer now (static fields, capacities, active set).
 *
 * @param link Link.
 * @param info Out; its strings point into the link's INFO fields.
 */
void tinyfix_link_info(const struct tinyfix_link *link, struct tinyfix_wire_info *info);

/**
 * @brief Stage one chunk of a parameter blob, with the rules of WRITE PARAMS (offset 0
 * restarts, the chunk at the received count extends, any other changes nothing). For a
 * second front end on the same link, such as the MCUmgr group: both share one staging area.
 *
 * @retval >=0 bytes received so far (the next chunk's offset)
 * @retval TINYFIX_WIRE_ERR_UNSUPPORTED the link has no staging buffer
 * @retval TINYFIX_WIRE_ERR_VALUE total 0 or above the staging buffer, a chunk past total,
 *         or a total that differs from the object in progress (start at offset 0)
 */
int tinyfix_link_stage_params(struct tinyfix_link *link, uint32_t offset, uint32_t total,
			      const uint8_t *data, size_t len);

/**
 * @brief Decode, validate and apply a parameter blob atomically, then persist it through
 * ops->persist when @p persist (what SET_PARAMS does). A refused set leaves the active one.
 *
 * @param rsp Out: the core's status, the active set's CRC and whether it was stored.
 * @return the core's status (TINYFIX_OK or a TINYFIX_ERR_* code), also in rsp->status
 */
int tinyfix_link_apply_params(struct tinyfix_link *link, const uint8_t *blob, size_t len,
			      bool persist, struct tinyfix_wire_setp_rsp *rsp);

/**
 * @brief tinyfix_link_apply_params() on the completely staged blob; the staging is emptied
 * whatever the verdict.
 *
 * @retval TINYFIX_WIRE_ERR_VALUE no complete staged blob (rsp untouched)
 * @return otherwise as tinyfix_link_apply_params()
 */
int tinyfix_link_apply_staged_params(struct tinyfix_link *link, bool persist,
				     struct tinyfix_wire_setp_rsp *rsp);

/**
 * @brief Tell the link the platform wrote the model's input tensor itself (local inference):
 * an input staged by WRITE is gone, and INFER STAGED is refused until a new one is written.
 *
 * @param link Link.
 */
void tinyfix_link_input_clobbered(struct tinyfix_link *link);

/**
 * @brief Whether a WRITE transfer into the input tensor is under way or complete but not yet
 * consumed by INFER: local inference should wait (or call tinyfix_link_input_clobbered()).
 *
 * @param link Link.
 */
bool tinyfix_link_input_pending(const struct tinyfix_link *link);

/**
 * @brief Forget the kept response, so that no request is answered as a repeat.
 *
 * Call it when the host side was reset (a new connection): a new host may reuse a seq.
 *
 * @param link Link.
 */
void tinyfix_link_forget(struct tinyfix_link *link);

#ifdef __cplusplus
}
#endif

#endif /* TINYFIX_LINK_H_ */
