/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device side of the bit-exactness check against the host twin. printk, not the log:
 * these lines are the test's protocol and must neither be dropped nor reordered.
 */

#include <string.h>

#include <zephyr/kernel.h>
#include <zephyr/sys/printk.h>
#include <zephyr/sys/util.h>

#include "cycles.h"
#include "decision.h"
#include "replay_check.h"
#include "replay_windows.h"

BUILD_ASSERT(REPLAY_N_CLASSES == DECISION_N_CLASSES, "replay windows for another class count");

static struct {
	bool stale;       /* expectations are for another model */
	bool identity;    /* decisions comparable */
	uint32_t params_crc;
	uint32_t model_crc;
	bool features;    /* the device returns features */
	uint32_t seen;    /* bit per window of the first pass */
	bool done;
	int mismatched;
	int correct_lab;
	int correct_field;
	uint64_t sum_invoke;
	uint64_t sum_tinyfix;
} chk;

BUILD_ASSERT(REPLAY_N_WINDOWS <= 32, "the first-pass bitmap holds 32 windows");

static const char *verdict(bool ok)
{
	return ok ? "ok" : "DIFFERS";
}

void replay_check_begin(const struct model_desc *m, bool identity, uint32_t params_crc)
{
	memset(&chk, 0, sizeof(chk));
	chk.stale = m->crc != REPLAY_MODEL_CRC32;
	chk.identity = identity;
	chk.params_crc = params_crc;
	chk.model_crc = m->crc;
	chk.features = m->feature.dtype != 0U && m->feature.count == REPLAY_N_FEATURES;
	if (chk.stale) {
		printk("replay: expectations are for model 0x%08x, this is 0x%08x: rerun "
		       "scripts/gen_replay_windows.py\n",
		       REPLAY_MODEL_CRC32, m->crc);
	}
}

static void summary(void)
{
	int n = REPLAY_N_WINDOWS;

	if (chk.stale) {
		printk("replay check: STALE, expectations are for another model\n");
	} else if (chk.mismatched == 0) {
		printk("replay check: %d/%d windows bit-exact with the host twin "
		       "(input, raw%s%s)\n",
		       n, n, chk.features ? ", features" : "", chk.identity ? ", decisions" : "");
		if (!chk.identity) {
			printk("replay check: decisions not compared: parameters 0x%08x are "
			       "not the identity set\n",
			       chk.params_crc);
		}
	} else {
		printk("replay check: FAILED, %d/%d windows differ from the host twin\n",
		       chk.mismatched, n);
	}
	printk("replay accuracy: %d/%d decisions equal the label (lab %d/%d, field %d/%d)\n",
	       chk.correct_lab + chk.correct_field, n, chk.correct_lab, n / 2, chk.correct_field,
	       n - n / 2);
	printk("cycles: Invoke %u, tinyfix %u per window (mean of %d, counter at %u Hz)\n",
	       (unsigned int)(chk.sum_invoke / (uint64_t)n),
	       (unsigned int)(chk.sum_tinyfix / (uint64_t)n), n, app_cycles_hz());
}

void replay_check_window(int index, const int8_t *input, const int8_t *raw,
			 const int8_t *features, const struct tinyfix_result *res,
			 uint32_t cycles_invoke, uint32_t cycles_tinyfix)
{
	const struct replay_window *r;
	bool in_ok, raw_ok, feat_ok, dec_ok;

	if (chk.done || index < 0 || index >= REPLAY_N_WINDOWS || (chk.seen & BIT(index)) != 0U) {
		return;
	}
	chk.seen |= BIT(index);
	r = &replay_windows[index];

	/* Features are compared when the device hands them over (the core was sized for them). */
	chk.features = chk.features && features != NULL;
	in_ok = memcmp(input, r->input, sizeof(r->input)) == 0;
	raw_ok = memcmp(raw, r->raw, sizeof(r->raw)) == 0;
	feat_ok = !chk.features || memcmp(features, r->features, sizeof(r->features)) == 0;
	dec_ok = !chk.identity || (res->top_class == r->top_class &&
				   res->top_prob == r->top_prob && res->decision == r->decision);
	if (!chk.stale && !(in_ok && raw_ok && feat_ok && dec_ok)) {
		chk.mismatched++;
	}
	if (res->decision == r->label) {
		if (index < REPLAY_N_WINDOWS / 2) {
			chk.correct_lab++;
		} else {
			chk.correct_field++;
		}
	}
	chk.sum_invoke += cycles_invoke;
	chk.sum_tinyfix += cycles_tinyfix;

	/* One printk per line: a console shared with the log never splits it. */
	if (chk.stale) {
		printk("replay %d/%d %s: decision %s, top %s p=%u/32768, raw [%d %d %d %d %d %d]"
		       " | not checked\n",
		       index + 1, REPLAY_N_WINDOWS, r->name, decision_class_name(res->decision),
		       decision_class_name(res->top_class), res->top_prob, raw[0], raw[1], raw[2],
		       raw[3], raw[4], raw[5]);
	} else {
		printk("replay %d/%d %s: decision %s, top %s p=%u/32768, raw [%d %d %d %d %d %d]"
		       " | input %s, raw %s, features %s, decision %s\n",
		       index + 1, REPLAY_N_WINDOWS, r->name, decision_class_name(res->decision),
		       decision_class_name(res->top_class), res->top_prob, raw[0], raw[1], raw[2],
		       raw[3], raw[4], raw[5], verdict(in_ok), verdict(raw_ok),
		       chk.features ? verdict(feat_ok) : "n/a",
		       chk.identity ? verdict(dec_ok) : "n/a");
		if (!raw_ok) {
			printk("replay %d/%d: host twin raw [%d %d %d %d %d %d]\n", index + 1,
			       REPLAY_N_WINDOWS, r->raw[0], r->raw[1], r->raw[2], r->raw[3],
			       r->raw[4], r->raw[5]);
		}
	}
	if (chk.seen == BIT_MASK(REPLAY_N_WINDOWS)) {
		chk.done = true;
		summary();
	}
}
