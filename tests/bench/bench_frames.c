/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The benchmark workload, shared by both instruction counts: a 12-class int8 model with every
 * per-frame stage on (scaling, thresholds, 5-frame vote window, adaptive threshold).
 * scripts/bench_cortexm.py runs these entry points bare-metal in a Cortex-M emulator;
 * bench_process.c drives them on the host under callgrind.
 */

#include "bench_frames.h"

#define N_CLASSES BENCH_CLASSES
#define FRAME_MS  BENCH_FRAME_MS

struct tinyfix_ctx bench_ctx;
struct tinyfix_result bench_res;
int8_t bench_raw[N_CLASSES];

int bench_setup(void)
{
	struct tinyfix_model_info m = {0};
	struct tinyfix_params p;
	int c;

	m.model_crc = 0x12345678u;
	m.n_classes = N_CLASSES;
	m.output_type = TINYFIX_DTYPE_INT8;
	tinyfix_quant_from_float(0.0921f, -7, &m.output_quant);
	if (tinyfix_init(&bench_ctx, &m) != TINYFIX_OK) {
		return -1;
	}
	tinyfix_params_identity(&p, &m);
	p.flags |= TINYFIX_STAGE_THRESHOLD | TINYFIX_STAGE_VOTE | TINYFIX_STAGE_ANOMALY;
	p.inv_temperature = 52000;
	for (c = 0; c < N_CLASSES; c++) {
		p.class_bias[c] = (c - 6) * 3000;
		p.class_threshold[c] = 16000;
	}
	p.class_flags[0] = TINYFIX_CLASS_BACKGROUND;
	p.vote.window_ms = 4 * FRAME_MS;
	p.vote.min_count = 5;
	p.vote.threshold = 150;
	p.vote.suppression_ms = 1000;
	p.anomaly.window = 32;
	tinyfix_params_seal(&p);
	return tinyfix_set_params(&bench_ctx, &p);
}

/* One frame: bench_raw is written by the emulator host before each call. */
int bench_frame(int32_t time_ms)
{
	return tinyfix_process(&bench_ctx, bench_raw, NULL, time_ms, &bench_res);
}
