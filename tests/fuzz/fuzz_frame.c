/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The frame receiver and the COBS decoder, then every request payload decoder on what
 * they deliver. The first input byte picks the receive buffer size (a device's max_frame),
 * so buffers of every size meet frames of every length. ASan and UBSan watch every access.
 */

#include <string.h>

#include <tinyfix/wire.h>

#include "fuzz_device.h"

static void decode_payload(const struct tinyfix_wire_frame *f)
{
	struct tinyfix_wire_infer_req infer;
	struct tinyfix_wire_capture_req capture;
	struct tinyfix_wire_write_req write;
	struct tinyfix_wire_read_req read;

	FUZZ_CHECK(f->payload_len + TINYFIX_WIRE_OVERHEAD <= FUZZ_MAX_FRAME, "payload length");
	if (tinyfix_wire_infer_req_decode(f->payload, f->payload_len, &infer) == 0) {
		FUZZ_CHECK(infer.input_len <= f->payload_len, "INFER input beyond the payload");
	}
	(void)tinyfix_wire_capture_req_decode(f->payload, f->payload_len, &capture);
	if (tinyfix_wire_write_req_decode(f->payload, f->payload_len, &write) == 0) {
		FUZZ_CHECK(write.len <= f->payload_len, "WRITE data beyond the payload");
	}
	(void)tinyfix_wire_read_req_decode(f->payload, f->payload_len, &read);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[FUZZ_MAX_FRAME];
	static uint8_t decoded[FUZZ_MAX_FRAME];
	struct tinyfix_wire_rx rx;
	size_t cap;
	int n;

	if (size == 0U) {
		return 0;
	}
	cap = TINYFIX_WIRE_OVERHEAD + (size_t)data[0] * (FUZZ_MAX_FRAME - TINYFIX_WIRE_OVERHEAD) /
					      255U;
	FUZZ_CHECK(tinyfix_wire_rx_init(&rx, buf, cap) == 0, "rx init");
	data++;
	size--;
	for (size_t at = 0U; at < size;) {
		struct tinyfix_wire_frame frame;
		size_t used = 0U;
		int ret = tinyfix_wire_rx_push(&rx, data + at, size - at, &used, &frame);

		FUZZ_CHECK(used > 0U && used <= size - at, "rx_push consumed nothing or too much");
		if (ret == TINYFIX_WIRE_RX_FRAME) {
			FUZZ_CHECK(frame.payload >= buf && frame.payload + frame.payload_len <= buf + cap,
				   "payload outside the receive buffer");
			decode_payload(&frame);
		}
		at += used;
	}
	/* The whole input as one block of COBS bytes, into a buffer of the same size. */
	n = tinyfix_wire_cobs_decode(data, size, decoded, cap);
	FUZZ_CHECK(n <= (int)cap, "COBS decode beyond its buffer");
	if (n >= 0) {
		struct tinyfix_wire_frame frame;

		if (tinyfix_wire_frame_parse(decoded, (size_t)n, &frame) == 0) {
			decode_payload(&frame);
		}
	}
	return 0;
}
