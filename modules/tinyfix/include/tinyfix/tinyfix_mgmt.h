/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Zephyr glue of the TinyFix MCUmgr group (CONFIG_TINYFIX_MCUMGR): registers the group with
 * MCUmgr, so any SMP transport the build enables (UART, UDP, Bluetooth) carries it, and
 * runs its commands on the application's device link under tinyfix_zephyr_lock(). The group
 * answers MGMT_ERR_EBADSTATE until tinyfix_mgmt_init() has been called.
 */

#ifndef TINYFIX_TINYFIX_MGMT_H_
#define TINYFIX_TINYFIX_MGMT_H_

#include <stdbool.h>
#include <stdint.h>

#include <tinyfix/link.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Serve the group on @p link (initialised, on the glue's context).
 *
 * @param link    the application's device link
 * @param capture true when the application classifies windows itself and offers them with
 *                tinyfix_mgmt_capture_record(); false: CAPTURE is answered "unsupported"
 * @retval 0 serving
 * @retval -EINVAL NULL link
 */
int tinyfix_mgmt_init(struct tinyfix_link *link, bool capture);

/** @brief Whether a CAPTURE is waiting for windows. Takes no lock. */
bool tinyfix_mgmt_capture_wanted(void);

/**
 * @brief Offer a window the application just classified to a CAPTURE in progress: its
 * uptime, raw output and features (NULL when the model has none). Takes the glue's lock.
 */
void tinyfix_mgmt_capture_record(uint32_t t_ms, const uint8_t *raw, const int8_t *features);

#ifdef __cplusplus
}
#endif

#endif /* TINYFIX_TINYFIX_MGMT_H_ */
