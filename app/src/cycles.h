/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * @brief The one cycle counter the application measures Invoke() and tinyfix with.
 *
 * With CONFIG_APP_CYCLES_TIMING_API it is the timing API (on Cortex-M3/M4 the DWT cycle
 * counter, at the CPU clock); otherwise k_cycle_get_32(), the system timer. On
 * qemu_cortex_m3 that is the SysTick at 12 MHz in QEMU's virtual time: with icount
 * (shift 6, one instruction per 64 ns) one count is 1/0.768 instructions, so the figures
 * are instruction counts in disguise, not Cortex-M3 cycles.
 */

#ifndef APP_CYCLES_H_
#define APP_CYCLES_H_

#include <stdint.h>

#include <zephyr/kernel.h>
#if defined(CONFIG_APP_CYCLES_TIMING_API)
#include <zephyr/timing/timing.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Start the counter; call once before app_cycles(). */
static inline void app_cycles_init(void)
{
#if defined(CONFIG_APP_CYCLES_TIMING_API)
	timing_init();
	timing_start();
#endif
}

/** @brief The free-running 32-bit counter (wraps; differences are what count). */
static inline uint32_t app_cycles(void)
{
#if defined(CONFIG_APP_CYCLES_TIMING_API)
	return (uint32_t)timing_counter_get();
#else
	return k_cycle_get_32();
#endif
}

/** @brief Counter rate in Hz. */
static inline uint32_t app_cycles_hz(void)
{
#if defined(CONFIG_APP_CYCLES_TIMING_API)
	return (uint32_t)timing_freq_get();
#else
	return (uint32_t)sys_clock_hw_cycles_per_sec();
#endif
}

#ifdef __cplusplus
}
#endif

#endif /* APP_CYCLES_H_ */
