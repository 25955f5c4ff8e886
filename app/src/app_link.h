/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * @brief The calibration link: the module's portable dispatcher (tinyfix/link.h) wired to
 * this application's UART, model runner, input provider and settings.
 */

#ifndef APP_APP_LINK_H_
#define APP_APP_LINK_H_

#include <stdbool.h>

#include <tinyfix/tinyfix.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Start the link on the "tinyfix,link-uart" UART.
 *
 * @param ctx    the active tinyfix context (tinyfix_zephyr_init() done)
 * @param info   the model as the context knows it: a feature vector is offered over the
 *               link only when info->n_features says the core was sized for it
 * @param notify called from the UART ISR when bytes arrive
 * @retval 0 serving
 * @retval <0 a negative errno, or a TINYFIX_WIRE_ERR_* code of tinyfix_link_init() (logged)
 */
int app_link_init(struct tinyfix_ctx *ctx, const struct tinyfix_model_info *info,
		  void (*notify)(void));

/**
 * @brief Execute every request received so far. Application thread only.
 *
 * @return requests answered
 */
int app_link_poll(void);

/** @brief True while the host talked within CONFIG_APP_LINK_HOLD_MS (calibration mode). */
bool app_link_busy(void);

/**
 * @brief Local inference is about to write the model's input tensor: an input the host was
 * staging there (WRITE) is dropped, and its INFER refused until it is written again.
 */
void app_link_input_clobbered(void);

#ifdef __cplusplus
}
#endif

#endif /* APP_APP_LINK_H_ */
