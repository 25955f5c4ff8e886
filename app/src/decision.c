/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the corrected output means here: the gesture is logged and lights led0 while it is
 * a gesture; idle and unknown turn it off. Kept apart from the pipeline so a product
 * replaces this file, not the inference path.
 */

#include <zephyr/devicetree.h>
#include <zephyr/drivers/gpio.h>
#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <zephyr/sys/util.h>

#include "decision.h"

LOG_MODULE_REGISTER(decision, CONFIG_APP_LOG_LEVEL);

#if defined(APP_DEMO_MODEL)
/* The bundled gesture model's classes; another model's are numbered. */
static const char *const class_names[DECISION_N_CLASSES] = {
	"idle", "wave", "tap", "circle", "shake", "unknown",
};
#endif

#if DT_NODE_HAS_STATUS_OKAY(DT_ALIAS(led0)) && defined(CONFIG_GPIO)
#define HAVE_LED 1
static const struct gpio_dt_spec led = GPIO_DT_SPEC_GET(DT_ALIAS(led0), gpios);
#else
#define HAVE_LED 0
#endif

static int last_event = -2; /* nothing logged yet */

const char *decision_class_name(int cls)
{
	if (cls < 0 || cls >= DECISION_N_CLASSES) {
		return "none";
	}
#if defined(APP_DEMO_MODEL)
	return class_names[cls];
#else
	static const char *const numbers[] = {"class 0", "class 1", "class 2", "class 3",
					      "class 4", "class 5", "class 6", "class 7"};

	return cls < (int)ARRAY_SIZE(numbers) ? numbers[cls] : "class 8+";
#endif
}

bool decision_is_background(int cls)
{
#if defined(APP_DEMO_MODEL)
	return cls == 0 || cls == DECISION_N_CLASSES - 1; /* idle, unknown */
#else
	ARG_UNUSED(cls);
	return false;
#endif
}

int decision_init(void)
{
#if HAVE_LED
	int err;

	if (!gpio_is_ready_dt(&led)) {
		LOG_ERR("LED GPIO not ready");
		return -ENODEV;
	}
	err = gpio_pin_configure_dt(&led, GPIO_OUTPUT_INACTIVE);
	if (err != 0) {
		LOG_ERR("LED GPIO configuration failed (%d)", err);
		return err;
	}
#endif
	return 0;
}

void decision_apply(const struct tinyfix_result *res, bool voted, int label)
{
	int event = voted ? (res->vote_event ? res->vote_class : TINYFIX_NO_DECISION)
			  : res->decision;
	bool gesture = event >= 0 && !decision_is_background(event);

#if HAVE_LED
	(void)gpio_pin_set_dt(&led, gesture ? 1 : 0);
#else
	ARG_UNUSED(gesture);
#endif
	/* Log changes only: a stream of identical decisions says nothing new. */
	if (event != last_event) {
		last_event = event;
		LOG_INF("%s (top %s, p=%u.%03u)%s%s", decision_class_name(event),
			decision_class_name(res->top_class), res->top_prob / 32768U,
			(unsigned int)(((uint32_t)res->top_prob % 32768U) * 1000U / 32768U),
			label >= 0 ? ", label " : "", label >= 0 ? decision_class_name(label) : "");
	}
}
