/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * @brief Byte transport of the calibration link: the UART chosen as "tinyfix,link-uart".
 *
 * Receiving is interrupt driven: the ISR moves bytes into a ring buffer and calls the
 * notify callback; the application thread drains the ring with link_uart_read(), so the
 * protocol never runs in interrupt context. Sending is uart_poll_out() from that thread.
 */

#ifndef APP_LINK_UART_H_
#define APP_LINK_UART_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Start receiving.
 *
 * @param notify called from the UART ISR after bytes were queued (may be NULL)
 * @retval 0        receiving
 * @retval -ENODEV  the UART is not ready
 * @retval -ENOTSUP the driver has no interrupt-driven API
 */
int link_uart_init(void (*notify)(void));

/** @brief Move up to @p cap queued bytes into @p buf; returns how many. Thread only. */
size_t link_uart_read(uint8_t *buf, size_t cap);

/** @brief Send all of @p data, blocking until the driver took it. Thread only. */
void link_uart_write(const uint8_t *data, size_t len);

/** @brief Bytes dropped because the ring was full (the frame CRC then rejects the frame). */
uint32_t link_uart_dropped(void);

/** @brief Name of the UART device, for the boot log. */
const char *link_uart_name(void);

#ifdef __cplusplus
}
#endif

#endif /* APP_LINK_UART_H_ */
