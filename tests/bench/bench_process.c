/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host driver of the benchmark workload for scripts/bench-core-instructions, which runs it
 * under callgrind and divides the instructions inside tinyfix_process() by the call count.
 */

#include <stdio.h>
#include <stdlib.h>

#include "bench_frames.h"

int main(int argc, char **argv)
{
	long calls = argc > 1 ? atol(argv[1]) : 1000;
	long detections = 0;
	int c;

	if (bench_setup() != TINYFIX_OK) {
		fprintf(stderr, "bench_setup failed\n");
		return 1;
	}
	srand(1);
	for (long i = 0; i < calls; i++) {
		for (c = 0; c < BENCH_CLASSES; c++) {
			bench_raw[c] = (int8_t)(rand() % 256 - 128);
		}
		if (bench_frame((int32_t)(i * BENCH_FRAME_MS)) != TINYFIX_OK) {
			return 1;
		}
		detections += bench_res.vote_event;
	}
	printf("calls %ld detections %ld\n", calls, detections);
	return 0;
}
