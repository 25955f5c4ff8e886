/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Input provider for boards with an accelerometer (devicetree alias accel0): a sampling
 * thread reads SENSOR_CHAN_ACCEL_XYZ at CONFIG_APP_SAMPLE_RATE_HZ into a ring of the last
 * INPUT_FRAMES samples and, every CONFIG_APP_HOP_MS, publishes that window. A consumer
 * that is slower than the hop gets the newest window; older ones are dropped, as a live
 * stream must.
 */

#include <errno.h>
#include <string.h>

#include <zephyr/device.h>
#include <zephyr/drivers/sensor.h>
#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <zephyr/sys/atomic.h>

#include "input.h"

LOG_MODULE_REGISTER(input, CONFIG_APP_LOG_LEVEL);

#define SAMPLE_PERIOD_US (1000000 / CONFIG_APP_SAMPLE_RATE_HZ)
#define HOP_FRAMES       MAX(1, CONFIG_APP_HOP_MS * CONFIG_APP_SAMPLE_RATE_HZ / 1000)
#define SAMPLER_STACK    1024
/* Above the application thread (CONFIG_MAIN_THREAD_PRIORITY), so an inference does not
 * delay a sample.
 */
#define SAMPLER_PRIO     K_PRIO_PREEMPT(2)

static const struct device *const accel = DEVICE_DT_GET(DT_ALIAS(accel0));

static input_notify_t sensor_notify;
static int32_t ring[INPUT_FRAMES][INPUT_CHANNELS];
static uint32_t frames_seen;
static struct input_window latest;
static K_MUTEX_DEFINE(latest_lock);
static K_SEM_DEFINE(window_ready, 0, 1);
static atomic_t read_errors;

static K_THREAD_STACK_DEFINE(sampler_stack, SAMPLER_STACK);
static struct k_thread sampler_thread;
static K_TIMER_DEFINE(sample_timer, NULL, NULL);

/* sensor_value (m/s^2 as integer and millionths) to Q16.16, rounded half away from zero. */
static int32_t to_q16(const struct sensor_value *v)
{
	int64_t micro = (int64_t)v->val1 * 1000000 + v->val2;
	int64_t scaled = micro * 65536;

	return (int32_t)((scaled + (scaled >= 0 ? 500000 : -500000)) / 1000000);
}

static void publish(uint32_t now_ms)
{
	uint32_t first = frames_seen - INPUT_FRAMES;

	k_mutex_lock(&latest_lock, K_FOREVER);
	for (uint32_t i = 0; i < INPUT_FRAMES; i++) {
		memcpy(&latest.samples[i * INPUT_CHANNELS], ring[(first + i) % INPUT_FRAMES],
		       sizeof(ring[0]));
	}
	latest.t_ms = now_ms - (INPUT_FRAMES - 1) * SAMPLE_PERIOD_US / 1000;
	latest.label = -1;
	latest.index = -1;
	k_mutex_unlock(&latest_lock);
	k_sem_give(&window_ready);
	if (sensor_notify != NULL) {
		sensor_notify();
	}
}

static void sampler(void *p1, void *p2, void *p3)
{
	struct sensor_value v[INPUT_CHANNELS];
	uint32_t since_publish = 0;

	ARG_UNUSED(p1);
	ARG_UNUSED(p2);
	ARG_UNUSED(p3);

	k_timer_start(&sample_timer, K_USEC(SAMPLE_PERIOD_US), K_USEC(SAMPLE_PERIOD_US));
	for (;;) {
		int err;

		k_timer_status_sync(&sample_timer);
		err = sensor_sample_fetch_chan(accel, SENSOR_CHAN_ACCEL_XYZ);
		if (err == 0) {
			err = sensor_channel_get(accel, SENSOR_CHAN_ACCEL_XYZ, v);
		}
		if (err != 0) {
			/* Logged once; input_get() reports -EIO while reads keep failing. */
			if (atomic_inc(&read_errors) == 0) {
				LOG_ERR("accelerometer read failed (%d)", err);
			}
			continue;
		}
		atomic_clear(&read_errors);
		for (int c = 0; c < INPUT_CHANNELS; c++) {
			ring[frames_seen % INPUT_FRAMES][c] = to_q16(&v[c]);
		}
		frames_seen++;
		since_publish++;
		if (frames_seen >= INPUT_FRAMES && since_publish >= HOP_FRAMES) {
			since_publish = 0;
			publish(k_uptime_get_32());
		}
	}
}

int input_init(input_notify_t notify)
{
	if (!device_is_ready(accel)) {
		LOG_ERR("accelerometer %s not ready", accel->name);
		return -ENODEV;
	}
	sensor_notify = notify;
	k_thread_create(&sampler_thread, sampler_stack, K_THREAD_STACK_SIZEOF(sampler_stack),
			sampler, NULL, NULL, NULL, SAMPLER_PRIO, 0, K_NO_WAIT);
	k_thread_name_set(&sampler_thread, "sampler");
	return 0;
}

static void take_latest(struct input_window *w)
{
	k_mutex_lock(&latest_lock, K_FOREVER);
	*w = latest;
	k_mutex_unlock(&latest_lock);
}

int input_get(struct input_window *w)
{
	if (k_sem_take(&window_ready, K_NO_WAIT) != 0) {
		return atomic_get(&read_errors) > 0 ? -EIO : -EAGAIN;
	}
	take_latest(w);
	return 0;
}

int input_wait(struct input_window *w, k_timeout_t timeout)
{
	if (k_sem_take(&window_ready, timeout) != 0) {
		return atomic_get(&read_errors) > 0 ? -EIO : -EAGAIN;
	}
	take_latest(w);
	return 0;
}

bool input_is_live(void)
{
	return true;
}

const char *input_name(void)
{
	return accel->name;
}
