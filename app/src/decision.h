/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * @brief Application logic: what a corrected result means for this device (log, LED).
 */

#ifndef APP_DECISION_H_
#define APP_DECISION_H_

#include <stdbool.h>
#include <stdint.h>

#include <tinyfix/tinyfix.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Classes of the demo model, in output order (models/gesture/MODEL_CARD.md). */
#include "model_info.h"

/** Classes of the model the build runs (generated from it). */
#define DECISION_N_CLASSES MODEL_NUM_CLASSES

/** @brief Class name, or "none" for TINYFIX_NO_DECISION / out of range. */
const char *decision_class_name(int cls);

/** @brief True for the background classes (idle, unknown): never an event. */
bool decision_is_background(int cls);

/**
 * @brief Set up the LED behind the devicetree alias led0, if the board has one.
 *
 * @retval 0 ready (also without an LED)
 * @retval <0 the LED's GPIO failed (logged; decisions are still logged)
 */
int decision_init(void);

/**
 * @brief Act on one corrected frame: log the decision and drive the LED.
 *
 * The event is the voting detection when the parameter set votes, else the thresholded
 * decision; the LED is on while the event is a gesture (not a background class).
 *
 * @param res   the frame's result
 * @param voted whether the vote stage produced @p res's vote fields
 * @param label the true class when known, else -1 (only logged)
 */
void decision_apply(const struct tinyfix_result *res, bool voted, int label);

#ifdef __cplusplus
}
#endif

#endif /* APP_DECISION_H_ */
