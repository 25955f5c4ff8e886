/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cffi cdef for modules/tinyfix/include/tinyfix/smp.h, the MCUmgr group. The twin serves SMP
 * with it on plain buffers (tinyfix_smp_handle_buf); the zcbor-state entry point is the
 * Zephyr glue's and is not declared here.
 */

#define TINYFIX_SMP_GROUP_ID_DEFAULT ...
#define TINYFIX_SMP_CHUNK_MAX ...
#define TINYFIX_SMP_RECORD_HEADER ...

struct tinyfix_smp {
	uint32_t capture_requested;
	uint32_t capture_done;
	...;
};

int tinyfix_smp_init(struct tinyfix_smp *smp, struct tinyfix_link *link, uint8_t *capture_buf,
		     size_t capture_size, size_t chunk_max);
int tinyfix_smp_handle_buf(struct tinyfix_smp *smp, uint16_t group_id, uint8_t cmd, bool write,
			   const uint8_t *req, size_t req_len, uint8_t *rsp, size_t rsp_cap);
bool tinyfix_smp_capture_wanted(const struct tinyfix_smp *smp);
void tinyfix_smp_capture_record(struct tinyfix_smp *smp, uint32_t t_ms, const uint8_t *raw,
				const int8_t *features);
