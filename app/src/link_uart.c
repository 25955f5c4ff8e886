/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The calibration link's UART. The ISR only copies bytes into a ring buffer; everything
 * else happens in the application thread. A full ring drops bytes, which costs at most the
 * frames they belonged to: the host sees an ERROR or a timeout and retries.
 */

#include <errno.h>

#include <zephyr/device.h>
#include <zephyr/drivers/uart.h>
#include <zephyr/kernel.h>
#include <zephyr/sys/atomic.h>
#include <zephyr/sys/ring_buffer.h>

#include "link_uart.h"

static const struct device *const link_dev = DEVICE_DT_GET(DT_CHOSEN(tinyfix_link_uart));

RING_BUF_DECLARE(link_rx_ring, CONFIG_APP_LINK_RX_RING_SIZE);
static struct k_spinlock link_rx_lock;
static atomic_t link_rx_dropped;
static void (*link_notify)(void);

static void link_uart_isr(const struct device *dev, void *user_data)
{
	uint8_t chunk[32];
	bool got = false;

	ARG_UNUSED(user_data);

	while (uart_irq_update(dev) > 0 && uart_irq_rx_ready(dev) > 0) {
		int n = uart_fifo_read(dev, chunk, sizeof(chunk));
		k_spinlock_key_t key;
		uint32_t put;

		if (n <= 0) {
			break;
		}
		key = k_spin_lock(&link_rx_lock);
		put = ring_buf_put(&link_rx_ring, chunk, (uint32_t)n);
		k_spin_unlock(&link_rx_lock, key);
		if (put < (uint32_t)n) {
			atomic_add(&link_rx_dropped, (atomic_val_t)(n - (int)put));
		}
		got = true;
	}
	if (got && link_notify != NULL) {
		link_notify();
	}
}

int link_uart_init(void (*notify)(void))
{
	int err;

	if (!device_is_ready(link_dev)) {
		return -ENODEV;
	}
	link_notify = notify;
	err = uart_irq_callback_user_data_set(link_dev, link_uart_isr, NULL);
	if (err != 0) {
		return err == -ENOSYS ? -ENOTSUP : err;
	}
	uart_irq_rx_enable(link_dev);
	return 0;
}

size_t link_uart_read(uint8_t *buf, size_t cap)
{
	k_spinlock_key_t key = k_spin_lock(&link_rx_lock);
	uint32_t n = ring_buf_get(&link_rx_ring, buf, (uint32_t)cap);

	k_spin_unlock(&link_rx_lock, key);
	return n;
}

void link_uart_write(const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uart_poll_out(link_dev, data[i]);
	}
}

uint32_t link_uart_dropped(void)
{
	return (uint32_t)atomic_get(&link_rx_dropped);
}

const char *link_uart_name(void)
{
	return link_dev->name;
}
