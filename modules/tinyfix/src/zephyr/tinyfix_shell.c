/* SPDX-License-Identifier: Apache-2.0 */
/*
 * "tinyfix" shell command: show the active parameter set in readable units, change a field
 * and apply it, save it to settings. A changed set is re-sealed and goes through the core's
 * validation like any other; the shell never writes the active context directly.
 */

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <zephyr/kernel.h>
#include <zephyr/shell/shell.h>
#include <zephyr/shell/shell_string_conv.h>
#include <zephyr/sys/util.h>

#include <tinyfix/tinyfix.h>
#include <tinyfix/tinyfix_zephyr.h>

/* Shell commands run on the shell thread only, so one copy of a set is enough. */
static struct tinyfix_params sh_params;
static int32_t sh_bias_delta[TINYFIX_MAX_CLASSES];

/* Fixed-point value as a decimal with four places, without float. */
static const char *fmt_fixed(char *buf, size_t size, int32_t raw, unsigned int frac_bits)
{
	uint64_t mag = raw < 0 ? (uint64_t)(-(int64_t)raw) : (uint64_t)raw;
	uint64_t scaled = (mag * 10000U + (1ULL << (frac_bits - 1U))) >> frac_bits;

	snprintk(buf, size, "%s%u.%04u", raw < 0 ? "-" : "", (unsigned int)(scaled / 10000U),
		 (unsigned int)(scaled % 10000U));
	return buf;
}

#define Q16(buf, v) fmt_fixed(buf, sizeof(buf), (v), 16U)
#define Q15(buf, v) fmt_fixed(buf, sizeof(buf), (v), 15U)
#define Q8(buf, v)  fmt_fixed(buf, sizeof(buf), (v), 8U)

static int fetch(const struct shell *sh)
{
	struct tinyfix_ctx *ctx = tinyfix_zephyr_lock();

	if (ctx == NULL) {
		shell_error(sh, "no active context (tinyfix_zephyr_init() not called yet)");
		return -ENODEV;
	}
	sh_params = ctx->params;
	memcpy(sh_bias_delta, ctx->bias_delta, sizeof(sh_bias_delta));
	tinyfix_zephyr_unlock();
	return 0;
}

static int cmd_show(const struct shell *sh, size_t argc, char **argv)
{
	static const char *const stage_names[] = {"head",    "scale", "threshold", "vote",
						  "anomaly", "input", "adapt", "monitor"};
	static const char *const anomaly_modes[] = {"high", "low", "both"};
	const struct tinyfix_params *p = &sh_params;
	char a[20], b[20], c[20], d[20];
	uint16_t i;
	int err;

	ARG_UNUSED(argc);
	ARG_UNUSED(argv);
	err = fetch(sh);
	if (err != 0) {
		return err;
	}
	shell_print(sh, "format v%u, model crc 0x%08x, set crc 0x%08x", p->format_version,
		    p->model_crc, p->crc);
	shell_fprintf(sh, SHELL_NORMAL, "flags 0x%04x:", p->flags);
	for (i = 0; i < ARRAY_SIZE(stage_names); i++) {
		if ((p->flags & BIT(i)) != 0U) {
			shell_fprintf(sh, SHELL_NORMAL, " %s", stage_names[i]);
		}
	}
	shell_print(sh, "");
	shell_print(sh, "classes %u, channels %u, features %u, output %s", p->n_classes,
		    p->n_channels, p->n_features,
		    p->output_kind == TINYFIX_OUTPUT_PROBS ? "probabilities" : "logits");
	shell_print(sh, "inv-temperature %s", Q16(a, p->inv_temperature));
	shell_print(sh, "class       scale        bias   threshold  flags");
	for (i = 0; i < p->n_classes && i < TINYFIX_MAX_CLASSES; i++) {
		shell_print(sh, "%5u %11s %11s %11s  %s", i, Q16(a, p->class_scale[i]),
			    Q16(b, p->class_bias[i]), Q15(c, p->class_threshold[i]),
			    (p->class_flags[i] & TINYFIX_CLASS_BACKGROUND) != 0U ? "background"
										  : "-");
		if (IS_ENABLED(CONFIG_TINYFIX_ADAPT) && sh_bias_delta[i] != 0) {
			shell_print(sh, "      adapted bias change %s", Q16(a, sh_bias_delta[i]));
		}
	}
	shell_print(sh, "vote: %s of %s, threshold %u/255, min count %u, window %d ms, suppr. %d ms",
		    p->vote.mode == TINYFIX_VOTE_MAJORITY ? "majority" : "average",
		    p->vote.source == TINYFIX_VOTE_FROM_RAW ? "raw" : "corrected",
		    p->vote.threshold, p->vote.min_count, p->vote.window_ms, p->vote.suppression_ms);
	shell_print(sh, "anomaly: %s on class %u, window %u, warm-up %u, alpha %s, options 0x%02x",
		    anomaly_modes[MIN(p->anomaly.mode, ARRAY_SIZE(anomaly_modes) - 1U)],
		    p->anomaly.class_index, p->anomaly.window, p->anomaly.warmup,
		    Q8(a, p->anomaly.alpha_q8), p->anomaly.options);
	shell_print(sh, "input: fill %s, stats shift %u, clip k %s",
		    p->input.fill_mode == TINYFIX_FILL_MEAN ? "mean" : "last", p->input.stats_shift,
		    Q8(a, p->input.clip_k_q8));
	for (i = 0; i < p->n_channels && i < TINYFIX_MAX_CHANNELS; i++) {
		shell_print(sh, "  channel %u: offset %s, gain %s", i, Q16(a, p->input.offset[i]),
			    Q16(b, p->input.gain[i]));
	}
	shell_print(sh, "adapt: learning rate %s, clamp %s", Q16(a, p->adapt.learning_rate),
		    Q16(b, p->adapt.clamp));
	shell_print(sh, "monitor: reference confidence %s, advise below it by %s, class mix "
			"distance over %s, input shift over %s sigma",
		    Q15(a, p->monitor.ref_conf), Q15(b, p->monitor.conf_drop),
		    Q15(c, p->monitor.prior_tv), Q8(d, p->monitor.input_z_q8));
	return 0;
}

/* A settable field: a scalar, or an element of a per-class array (then it takes a class). */
struct sh_field {
	const char *name;
	const char *unit;
	uint16_t offset;
	uint8_t size;
	bool per_class;
	bool is_signed;
};

#define SCALAR(n, member, u)                                                                       \
	{n, u, offsetof(struct tinyfix_params, member),                                            \
	 sizeof(((struct tinyfix_params *)0)->member), false,                                       \
	 ((__typeof__(((struct tinyfix_params *)0)->member))-1) < 0}
#define CLASS(n, member, u)                                                                        \
	{n, u, offsetof(struct tinyfix_params, member),                                            \
	 sizeof(((struct tinyfix_params *)0)->member[0]), true,                                    \
	 ((__typeof__(((struct tinyfix_params *)0)->member[0]))-1) < 0}

static const struct sh_field sh_fields[] = {
	SCALAR("flags", flags, "stage bits"),
	SCALAR("inv-temperature", inv_temperature, "Q16.16"),
	CLASS("scale", class_scale, "Q16.16"),
	CLASS("bias", class_bias, "Q16.16"),
	CLASS("threshold", class_threshold, "Q15"),
	CLASS("class-flags", class_flags, "bits"),
	SCALAR("vote-mode", vote.mode, "0 average, 1 majority"),
	SCALAR("vote-source", vote.source, "0 corrected, 1 raw"),
	SCALAR("vote-threshold", vote.threshold, "score 0-255"),
	SCALAR("vote-min-count", vote.min_count, "frames"),
	SCALAR("vote-window-ms", vote.window_ms, "ms"),
	SCALAR("vote-suppression-ms", vote.suppression_ms, "ms"),
	SCALAR("anomaly-mode", anomaly.mode, "0 high, 1 low, 2 both"),
	SCALAR("anomaly-class", anomaly.class_index, "class"),
	SCALAR("anomaly-window", anomaly.window, "samples"),
	SCALAR("anomaly-warmup", anomaly.warmup, "samples"),
	SCALAR("anomaly-alpha-q8", anomaly.alpha_q8, "Q8.8"),
};

static void list_fields(const struct shell *sh)
{
	size_t i;

	shell_print(sh, "fields:");
	for (i = 0; i < ARRAY_SIZE(sh_fields); i++) {
		shell_print(sh, "  %s %s<value, %s>", sh_fields[i].name,
			    sh_fields[i].per_class ? "<class> " : "", sh_fields[i].unit);
	}
}

/* Parses a value that must fit the field's C type; the core checks the documented range. */
static int parse_value(const struct shell *sh, const struct sh_field *f, const char *arg,
		       uint32_t *out)
{
	int err = 0;
	long v = shell_strtol(arg, 0, &err);
	int64_t lo = f->is_signed ? -(1LL << (8U * f->size - 1U)) : 0;
	int64_t hi = f->is_signed ? (1LL << (8U * f->size - 1U)) - 1 : (1LL << (8U * f->size)) - 1;

	if (err != 0 || (int64_t)v < lo || (int64_t)v > hi) {
		shell_error(sh, "%s: '%s' is not an integer in [%ld, %ld]", f->name, arg, (long)lo,
			    (long)hi);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

static void store(uint8_t *dst, uint8_t size, uint32_t v)
{
	if (size == 1U) {
		*dst = (uint8_t)v;
	} else if (size == 2U) {
		uint16_t h = (uint16_t)v;

		memcpy(dst, &h, sizeof(h));
	} else {
		memcpy(dst, &v, sizeof(v));
	}
}

static int cmd_set(const struct shell *sh, size_t argc, char **argv)
{
	const struct sh_field *f = NULL;
	unsigned long cls = 0;
	uint32_t v;
	size_t i;
	int err;

	for (i = 0; i < ARRAY_SIZE(sh_fields); i++) {
		if (strcmp(argv[1], sh_fields[i].name) == 0) {
			f = &sh_fields[i];
		}
	}
	if (f == NULL || argc != (f->per_class ? 4U : 3U)) {
		shell_error(sh, f == NULL ? "unknown field '%s'" : "wrong arguments for '%s'",
			    argv[1]);
		list_fields(sh);
		return -EINVAL;
	}
	err = fetch(sh);
	if (err != 0) {
		return err;
	}
	if (f->per_class) {
		err = 0;
		cls = shell_strtoul(argv[2], 0, &err);
		if (err != 0 || cls >= sh_params.n_classes) {
			shell_error(sh, "class '%s' is not in [0, %u]", argv[2],
				    sh_params.n_classes - 1U);
			return -EINVAL;
		}
	}
	err = parse_value(sh, f, argv[argc - 1U], &v);
	if (err != 0) {
		return err;
	}
	store((uint8_t *)&sh_params + f->offset + cls * f->size, f->size, v);
	tinyfix_params_seal(&sh_params);
	err = tinyfix_zephyr_set_params(&sh_params);
	if (err != TINYFIX_OK) {
		shell_error(sh, "rejected, active set unchanged: %s (%d)", tinyfix_strerror(err),
			    err);
		return -EINVAL;
	}
	shell_print(sh, "applied, set crc 0x%08x", sh_params.crc);
	return 0;
}

static int cmd_save(const struct shell *sh, size_t argc, char **argv)
{
	int err;

	ARG_UNUSED(argc);
	ARG_UNUSED(argv);
	err = fetch(sh);
	if (err != 0) {
		return err;
	}
	err = tinyfix_zephyr_params_save(&sh_params);
	if (err != TINYFIX_OK) {
		shell_error(sh, "not saved: %s (%d)",
			    TINYFIX_ZEPHYR_ERR_IS_ERRNO(err) ? "settings error"
							     : tinyfix_strerror(err),
			    err);
		return -EIO;
	}
	shell_print(sh, "saved, set crc 0x%08x", sh_params.crc);
	return 0;
}

#if defined(CONFIG_TINYFIX_ADAPT)
static int cmd_adapt_reset(const struct shell *sh, size_t argc, char **argv)
{
	struct tinyfix_ctx *ctx = tinyfix_zephyr_lock();

	ARG_UNUSED(argc);
	ARG_UNUSED(argv);
	if (ctx == NULL) {
		shell_error(sh, "no active context");
		return -ENODEV;
	}
	tinyfix_adapt_reset(ctx);
	tinyfix_zephyr_unlock();
	shell_print(sh, "adaptation undone");
	return 0;
}
#endif

SHELL_STATIC_SUBCMD_SET_CREATE(
	sub_tinyfix,
	SHELL_CMD(show, NULL, "Show the active parameter set.", cmd_show),
	SHELL_CMD_ARG(set, NULL,
		      "Change one field and apply the set: set <field> [<class>] <value>.\n"
		      "Integers in the field's fixed-point format (0x for hex); "
		      "run without a valid field for the list.",
		      cmd_set, 3, 1),
	SHELL_CMD(save, NULL, "Save the active parameter set to settings.", cmd_save),
#if defined(CONFIG_TINYFIX_ADAPT)
	SHELL_CMD(adapt-reset, NULL, "Undo on-device adaptation of the biases.",
		  cmd_adapt_reset),
#endif
	SHELL_SUBCMD_SET_END);

SHELL_CMD_REGISTER(tinyfix, &sub_tinyfix, "TinyFix model output correction", NULL);
