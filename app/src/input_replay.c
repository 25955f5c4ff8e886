/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Input provider without a sensor: the built-in windows of replay_windows.c, one every
 * CONFIG_APP_HOP_MS, in order, then again from the start if CONFIG_APP_REPLAY_LOOP.
 * A k_timer paces them; the window itself is copied in the application thread.
 * With CONFIG_APP_REPLAY_CAPTURE the same windows, at the same pace, also answer the
 * link's CAPTURE (input_wait()), so a guided capture can be tested without a sensor.
 */

#include <errno.h>
#include <string.h>

#include <zephyr/kernel.h>
#include <zephyr/sys/atomic.h>
#include <zephyr/sys/util.h>

#include "input.h"
#include "replay_windows.h"

BUILD_ASSERT(REPLAY_WINDOW_FRAMES == INPUT_FRAMES && REPLAY_CHANNELS == INPUT_CHANNELS,
	     "replay windows do not have the model's input shape");

static input_notify_t replay_notify;
static atomic_t replay_due;
static unsigned int replay_next;
/* Given on every tick: input_wait() takes one window per tick, as from a sensor. */
static K_SEM_DEFINE(replay_tick_sem, 0, 1);

static void replay_tick(struct k_timer *timer)
{
	ARG_UNUSED(timer);
	atomic_set(&replay_due, 1);
	k_sem_give(&replay_tick_sem);
	if (replay_notify != NULL) {
		replay_notify();
	}
}

static K_TIMER_DEFINE(replay_timer, replay_tick, NULL);

int input_init(input_notify_t notify)
{
	replay_notify = notify;
	replay_next = 0;
	/* The first window right away: a boot log shows a decision without waiting a hop. */
	k_timer_start(&replay_timer, K_NO_WAIT, K_MSEC(CONFIG_APP_HOP_MS));
	return 0;
}

static void replay_copy(struct input_window *w)
{
	const struct replay_window *r = &replay_windows[replay_next % REPLAY_N_WINDOWS];

	memcpy(w->samples, r->samples, sizeof(w->samples));
	w->t_ms = k_uptime_get_32();
	w->label = r->label;
	w->index = (int16_t)(replay_next % REPLAY_N_WINDOWS);
	replay_next++;
}

int input_get(struct input_window *w)
{
	if (!IS_ENABLED(CONFIG_APP_REPLAY_LOOP) && replay_next >= REPLAY_N_WINDOWS) {
		/* A capture keeps the timer: it replays the windows as long as it is asked. */
		if (!IS_ENABLED(CONFIG_APP_REPLAY_CAPTURE)) {
			k_timer_stop(&replay_timer);
		}
		return -ENODATA;
	}
	if (!atomic_cas(&replay_due, 1, 0)) {
		return -EAGAIN;
	}
	replay_copy(w);
	return 0;
}

int input_wait(struct input_window *w, k_timeout_t timeout)
{
	if (!IS_ENABLED(CONFIG_APP_REPLAY_CAPTURE)) {
		return -ENOTSUP;
	}
	if (k_sem_take(&replay_tick_sem, timeout) != 0) {
		return -EAGAIN;
	}
	/* This tick's window goes to the capture, not to local inference as well. */
	atomic_set(&replay_due, 0);
	replay_copy(w);
	return 0;
}

bool input_is_live(void)
{
	return IS_ENABLED(CONFIG_APP_REPLAY_CAPTURE);
}

const char *input_name(void)
{
	return "replay";
}
