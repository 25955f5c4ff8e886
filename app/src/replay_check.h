/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * @brief Compares the device's numbers for the built-in replay windows with the host twin's.
 *
 * replay_windows.c carries, per window, the int8 input, raw outputs, features and identity
 * decision that the host computed with the tflite-micro package and the host build of the
 * tinyfix core. The first pass over the windows prints one line per window and a summary
 * the twister harnesses match.
 */

#ifndef APP_REPLAY_CHECK_H_
#define APP_REPLAY_CHECK_H_

#include <stdbool.h>
#include <stdint.h>

#include <tinyfix/tinyfix.h>

#include "model_runner.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Start a check.
 *
 * @param m         the running model
 * @param identity  whether the active parameters are the identity set: only then are the
 *                  decisions comparable with the expectations
 * @param params_crc the active parameter set's CRC (printed when not identity)
 */
void replay_check_begin(const struct model_desc *m, bool identity, uint32_t params_crc);

/**
 * @brief Check one window of the first pass; prints its line, and the summary after the last.
 *
 * @param index          replay window index
 * @param input          the int8 model input the device made of the window
 * @param raw            raw outputs
 * @param features       features, or NULL when the device has none
 * @param res            the corrected result
 * @param cycles_invoke  cycles of Invoke()
 * @param cycles_tinyfix cycles of tinyfix_process()
 */
void replay_check_window(int index, const int8_t *input, const int8_t *raw,
			 const int8_t *features, const struct tinyfix_result *res,
			 uint32_t cycles_invoke, uint32_t cycles_tinyfix);

#ifdef __cplusplus
}
#endif

#endif /* APP_REPLAY_CHECK_H_ */
