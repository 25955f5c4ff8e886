/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * @brief Where the windows the application classifies on its own come from.
 *
 * Two providers implement it: input_sensor.c (an accelerometer through the Zephyr sensor
 * API) and input_replay.c (the built-in windows of replay_windows.c). Exactly one is built,
 * chosen by CONFIG_APP_INPUT_*. Only the application thread calls these functions.
 */

#ifndef APP_INPUT_H_
#define APP_INPUT_H_

#include <stdint.h>

#include <zephyr/kernel.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Samples per window and axes: the demo model's input shape [1, 64, 3]. */
#define INPUT_FRAMES   64
#define INPUT_CHANNELS 3

/** One window of sensor samples. */
struct input_window {
	/** Specific force, Q16.16 m/s^2, [frame][x, y, z]. */
	int32_t samples[INPUT_FRAMES * INPUT_CHANNELS];
	/** Uptime at the first sample, ms. */
	uint32_t t_ms;
	/** True class when the provider knows it (replay), else -1. */
	int16_t label;
	/** Replay window index, -1 for live windows. */
	int16_t index;
};

/** Called, from any context, when a new window is ready for input_get(). */
typedef void (*input_notify_t)(void);

/**
 * @brief Start the provider.
 *
 * @param notify called whenever a window becomes ready (may be NULL)
 * @retval 0        started
 * @retval -ENODEV  the sensor is not ready
 * @retval <0       another errno from the sensor driver
 */
int input_init(input_notify_t notify);

/**
 * @brief Take the window that is ready, if any.
 *
 * @retval 0        @p w holds a new window
 * @retval -EAGAIN  no new window yet
 * @retval -ENODATA the provider has nothing more to give (replay without looping)
 * @retval -EIO     reading the sensor failed
 */
int input_get(struct input_window *w);

/**
 * @brief Wait for the next live window (for the link's CAPTURE).
 *
 * @retval 0        @p w holds a new window
 * @retval -EAGAIN  none within @p timeout
 * @retval -ENOTSUP the provider has no live source
 * @retval -EIO     reading the sensor failed
 */
int input_wait(struct input_window *w, k_timeout_t timeout);

/** @brief Whether input_wait() delivers live windows (the link's CAPTURE capability). */
bool input_is_live(void);

/** @brief Short name of the source, for the boot log. */
const char *input_name(void);

#ifdef __cplusplus
}
#endif

#endif /* APP_INPUT_H_ */
