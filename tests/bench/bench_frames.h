/* SPDX-License-Identifier: Apache-2.0 */
/* Entry points of the benchmark workload (bench_frames.c). */

#ifndef BENCH_FRAMES_H_
#define BENCH_FRAMES_H_

#include <tinyfix/tinyfix.h>

#define BENCH_CLASSES  12
#define BENCH_FRAME_MS 100

extern struct tinyfix_result bench_res;
extern int8_t bench_raw[BENCH_CLASSES];

/* tinyfix_init() and tinyfix_set_params() with the benchmark's parameters; 0 on success. */
int bench_setup(void);
/* One tinyfix_process() call on bench_raw at time_ms. */
int bench_frame(int32_t time_ms);

#endif /* BENCH_FRAMES_H_ */
