/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * TinyFix MCUmgr group: the commands of docs/smp-group.md, CBOR in and out through zcbor,
 * executed on the same device link (struct tinyfix_link) the lab protocol uses, so both front
 * ends share one parameter staging area, one validation path and one persistence callback.
 *
 * Portable C99 with zcbor only: the Zephyr glue (src/zephyr/tinyfix_mgmt.c) registers the
 * group with MCUmgr and passes the SMP streamer's zcbor states; the host twin and the tests
 * call tinyfix_smp_handle_buf() on plain buffers. Not thread-safe: hold the lock that guards
 * the link's context around every call (tinyfix_zephyr_lock()).
 *
 * Commands (read = SMP op 0, write = op 2):
 *  INFO    read:  model CRC, tensors, parameter CRC and format, capacities
 *  PARAMS  read:  {off} -> a chunk of the active parameter blob
 *          write: {off, data, len, persist} -> chunks staged (len and persist with the chunk
 *                 at offset 0, as image upload's len); the complete set is validated
 *                 whole, applied atomically and persisted, or refused with its core code
 *  STATS   read:  the link counters and the drift monitor's figures
 *  ADAPT   write: undo on-device adaptation (back to the applied set's biases)
 *  CAPTURE write: {n, features} -> record the next n windows the device classifies itself
 *          read:  {off} -> progress, and a chunk of the completed records
 */

#ifndef TINYFIX_SMP_H_
#define TINYFIX_SMP_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zcbor_common.h>

#include <tinyfix/link.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Default group ID, in MCUmgr's user range (MGMT_GROUP_ID_PERUSER = 64 and up). */
#define TINYFIX_SMP_GROUP_ID_DEFAULT 84

/** Command IDs. */
enum tinyfix_smp_cmd {
	TINYFIX_SMP_CMD_INFO = 0,
	TINYFIX_SMP_CMD_PARAMS = 1,
	TINYFIX_SMP_CMD_STATS = 2,
	TINYFIX_SMP_CMD_ADAPT = 3,
	TINYFIX_SMP_CMD_CAPTURE = 4,
	TINYFIX_SMP_CMD_COUNT = 5,
};

/**
 * Group return codes (SMP version 2 "err": {"group", "rc"}). A set the core refuses is
 * TINYFIX_SMP_RC_CORE + |TINYFIX_ERR_*|: 20 is TINYFIX_ERR_MODEL, a set for another model.
 */
enum tinyfix_smp_rc {
	TINYFIX_SMP_RC_OK = 0,
	TINYFIX_SMP_RC_UNKNOWN = 1,
	/** A required field is missing, or a field has the wrong type or range. */
	TINYFIX_SMP_RC_BAD_REQUEST = 2,
	/** The parameter set, or the capture asked for, is larger than the device holds. */
	TINYFIX_SMP_RC_TOO_LARGE = 3,
	/** A chunk's length differs from the upload in progress: start again at offset 0. */
	TINYFIX_SMP_RC_OTHER_UPLOAD = 4,
	/** No capture was started (CAPTURE read before write). */
	TINYFIX_SMP_RC_NO_CAPTURE = 5,
	/** This build cannot do it (no staging buffer, no capture buffer, no adaptation). */
	TINYFIX_SMP_RC_UNSUPPORTED = 6,
	/** Read offset past the end of the object. */
	TINYFIX_SMP_RC_OFFSET = 7,
	TINYFIX_SMP_RC_CORE = 16,
};

/**
 * Negative returns of tinyfix_smp_handle(): MCUmgr's generic MGMT_ERR_* codes, negated
 * (the group has no say in them).
 */
#define TINYFIX_SMP_MGMT_EINVAL   (-3) /**< the request is not a CBOR map */
#define TINYFIX_SMP_MGMT_ENOTSUP  (-8) /**< unknown command, or op not defined for it */
#define TINYFIX_SMP_MGMT_EMSGSIZE (-7) /**< the response does not fit the buffer */

/** Bytes of one capture record before its raw output: the window's uptime, u32 LE. */
#define TINYFIX_SMP_RECORD_HEADER 4U

/** Largest data chunk of a PARAMS read, bytes (a copy of it lives in struct tinyfix_smp). */
#ifndef TINYFIX_SMP_CHUNK_MAX
#define TINYFIX_SMP_CHUNK_MAX 256
#endif

/** Group state: the link it works on and the capture in progress. Caller-owned. */
struct tinyfix_smp {
	struct tinyfix_link *link;
	/** Largest data chunk in a response (PARAMS and CAPTURE reads), bytes. */
	size_t chunk_max;
	/** Capture records: {t_ms u32 LE, raw output, features (when asked)} each. */
	uint8_t *capture_buf;
	size_t capture_size;
	size_t record_size;
	uint32_t capture_requested;
	uint32_t capture_done;
	bool capture_features;
	/** Whether the upload in progress is to be stored: its offset-0 chunk says so. */
	bool upload_persist;
	/** A PARAMS read's chunk, encoded from the active set. */
	uint8_t chunk[TINYFIX_SMP_CHUNK_MAX];
};

/**
 * @brief Prepare the group for a link that is ready (tinyfix_link_init() done).
 *
 * @param capture_buf where CAPTURE keeps its records (NULL: no CAPTURE)
 * @param chunk_max   largest data chunk per response, at least 16 bytes: the transport's
 *                    buffer less the SMP header and the response's other fields
 * @retval 0 ready
 * @retval TINYFIX_WIRE_ERR_VALUE NULL smp or link, or chunk_max < 16
 */
int tinyfix_smp_init(struct tinyfix_smp *smp, struct tinyfix_link *link, uint8_t *capture_buf,
		     size_t capture_size, size_t chunk_max);

/**
 * @brief Execute one request of the group.
 *
 * @param cmd   command ID (enum tinyfix_smp_cmd)
 * @param write true for SMP's write op, false for read
 * @param zsd   decoder on the request payload, before its map
 * @param zse   encoder inside the (open) response map: the handler adds key/value pairs
 * @retval 0 done, the response fields are encoded
 * @retval >0 a group return code (enum tinyfix_smp_rc) for the caller to send as "err"
 * @retval <0 a negated MGMT_ERR_* code (TINYFIX_SMP_MGMT_*)
 */
int tinyfix_smp_handle(struct tinyfix_smp *smp, uint8_t cmd, bool write, zcbor_state_t *zsd,
		       zcbor_state_t *zse);

/**
 * @brief tinyfix_smp_handle() on plain buffers: @p req is the request's CBOR payload, the
 * whole response map (with "err" for a group return code) goes to @p rsp. For the host twin.
 *
 * @param group_id the group's ID, written into an "err" map
 * @retval >=0 response bytes
 * @retval <0  a negated MGMT_ERR_* code (nothing useful in rsp)
 */
int tinyfix_smp_handle_buf(struct tinyfix_smp *smp, uint16_t group_id, uint8_t cmd, bool write,
			   const uint8_t *req, size_t req_len, uint8_t *rsp, size_t rsp_cap);

/** @brief Whether a capture is asking for windows (the platform then calls _record()). */
bool tinyfix_smp_capture_wanted(const struct tinyfix_smp *smp);

/**
 * @brief Offer one window the device classified itself to the capture in progress: its
 * uptime, the raw output (INFO output size) and the features (INFO feature size, or NULL).
 * Ignored when no capture wants windows.
 */
void tinyfix_smp_capture_record(struct tinyfix_smp *smp, uint32_t t_ms, const uint8_t *raw,
				const int8_t *features);

#ifdef __cplusplus
}
#endif

#endif /* TINYFIX_SMP_H_ */
