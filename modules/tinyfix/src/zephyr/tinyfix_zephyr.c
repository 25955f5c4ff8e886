/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Zephyr glue: the only place (with the shell) that includes Zephyr headers. Turns the
 * "tinyfix,correction" devicetree node into the default parameter set, keeps the one active
 * context behind a mutex for the application, the shell and the host link, and persists
 * parameter sets with the settings subsystem. It must never apply a set that
 * tinyfix_params_validate() refused: the core's set_params is the only way in.
 */

#include <errno.h>
#include <string.h>

#include <zephyr/devicetree.h>
#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <zephyr/sys/util.h>
#if defined(CONFIG_TINYFIX_SETTINGS)
#include <zephyr/settings/settings.h>
#endif

#include <tinyfix/tinyfix.h>
#include <tinyfix/tinyfix_zephyr.h>

LOG_MODULE_REGISTER(tinyfix, CONFIG_TINYFIX_LOG_LEVEL);

#define ERR_NO_CTX TINYFIX_ZEPHYR_ERR_FROM_ERRNO(-ENODEV)

static K_MUTEX_DEFINE(tfz_lock);
static struct tinyfix_ctx *tfz_active;
/* Decoding target for blobs; too large for a caller's stack with the head stage. Locked. */
static struct tinyfix_params tfz_scratch;

/* ---- Devicetree defaults --------------------------------------------------------------- */

#if DT_HAS_COMPAT_STATUS_OKAY(tinyfix_correction)

#define TFZ_NODE DT_COMPAT_GET_ANY_STATUS_OKAY(tinyfix_correction)

/*
 * dtc stores (-N) as a 32-bit two's complement cell and the generated header prints it as an
 * unsigned number, so every cell is read back through int32_t.
 */
#define TFZ_CELL(node, prop, idx) ((int32_t)DT_PROP_BY_IDX(node, prop, idx))
#define TFZ_ARRAY(prop)                                                                            \
	COND_CODE_1(DT_NODE_HAS_PROP(TFZ_NODE, prop),                                              \
		    (static const int32_t dt_##prop[] = {                                          \
			     DT_FOREACH_PROP_ELEM_SEP(TFZ_NODE, prop, TFZ_CELL, (,))};),             \
		    (static const int32_t *const dt_##prop;))
#define TFZ_LEN(prop) DT_PROP_LEN_OR(TFZ_NODE, prop, 0)

TFZ_ARRAY(class_scale)
TFZ_ARRAY(class_bias)
TFZ_ARRAY(class_threshold)
TFZ_ARRAY(class_flags)
TFZ_ARRAY(input_offset)
TFZ_ARRAY(input_gain)
TFZ_ARRAY(monitor_ref_prior)
TFZ_ARRAY(monitor_ref_in_mean)
TFZ_ARRAY(monitor_ref_in_std)

/* Counts beyond this build's sizes are a build error here rather than a refusal at boot. */
BUILD_ASSERT(TFZ_LEN(class_scale) <= TINYFIX_MAX_CLASSES &&
		     TFZ_LEN(class_bias) <= TINYFIX_MAX_CLASSES &&
		     TFZ_LEN(class_threshold) <= TINYFIX_MAX_CLASSES &&
		     TFZ_LEN(class_flags) <= TINYFIX_MAX_CLASSES &&
		     TFZ_LEN(monitor_ref_prior) <= TINYFIX_MAX_CLASSES,
	     "tinyfix,correction: more classes than CONFIG_TINYFIX_MAX_CLASSES");
BUILD_ASSERT(TFZ_LEN(input_offset) <= TINYFIX_MAX_CHANNELS &&
		     TFZ_LEN(input_gain) <= TINYFIX_MAX_CHANNELS &&
		     TFZ_LEN(monitor_ref_in_mean) <= TINYFIX_MAX_CHANNELS &&
		     TFZ_LEN(monitor_ref_in_std) <= TINYFIX_MAX_CHANNELS &&
		     DT_PROP_OR(TFZ_NODE, n_channels, 0) <= TINYFIX_MAX_CHANNELS,
	     "tinyfix,correction: more input channels than CONFIG_TINYFIX_MAX_CHANNELS");
BUILD_ASSERT(DT_PROP_OR(TFZ_NODE, n_features, 0) <= TINYFIX_MAX_FEATURES,
	     "tinyfix,correction: n-features above CONFIG_TINYFIX_MAX_FEATURES");

#if TINYFIX_MAX_FEATURES > 0
TFZ_ARRAY(head_multiplier)
TFZ_ARRAY(head_shift)
TFZ_ARRAY(head_bias)
/* Byte arrays stay bytes in flash (a head can hold thousands of weights). */
#define TFZ_BYTES(prop)                                                                            \
	COND_CODE_1(DT_NODE_HAS_PROP(TFZ_NODE, prop),                                              \
		    (static const uint8_t dt_##prop[] = DT_PROP(TFZ_NODE, prop);),                  \
		    (static const uint8_t *const dt_##prop;))
TFZ_BYTES(head_weights)
TFZ_BYTES(head_column_mask)
BUILD_ASSERT(TFZ_LEN(head_bias) <= TINYFIX_MAX_CLASSES &&
		     TFZ_LEN(head_multiplier) <= TINYFIX_MAX_CLASSES &&
		     TFZ_LEN(head_shift) <= TINYFIX_MAX_CLASSES &&
		     TFZ_LEN(head_weights) <= TINYFIX_MAX_HEAD_WEIGHTS &&
		     TFZ_LEN(head_column_mask) <= (TINYFIX_MAX_FEATURES + 7) / 8,
	     "tinyfix,correction: head larger than CONFIG_TINYFIX_MAX_CLASSES/_MAX_FEATURES/"
	     "_MAX_HEAD_WEIGHTS");
#endif
/* Without n-features > 0 the head-* properties describe no head and are ignored. */

/*
 * Copies a devicetree array into a parameter array of elem-byte elements. Absent (src NULL):
 * the identity values stay. Values that do not fit the element are out of range; a one-byte
 * element stores the low byte, which makes uint8-array bytes int8 two's complement.
 */
static int dt_array(void *dst, size_t elem, const int32_t *src, size_t n, size_t want,
		    int64_t lo, int64_t hi)
{
	uint8_t *d = dst;
	size_t i;

	if (src == NULL) {
		return TINYFIX_OK;
	}
	if (n != want) {
		return TINYFIX_ERR_CLASSES;
	}
	for (i = 0; i < n; i++) {
		if (src[i] < lo || src[i] > hi) {
			return TINYFIX_ERR_RANGE;
		}
		if (elem == sizeof(int32_t)) {
			memcpy(d + i * elem, &src[i], elem);
		} else if (elem == sizeof(uint16_t)) {
			uint16_t v = (uint16_t)src[i];

			memcpy(d + i * elem, &v, elem);
		} else {
			d[i] = (uint8_t)src[i];
		}
	}
	return TINYFIX_OK;
}

/* Copies a devicetree byte array; absent (src NULL) keeps the identity values. */
static int dt_bytes(uint8_t *dst, const uint8_t *src, size_t n, size_t want)
{
	if (src == NULL) {
		return TINYFIX_OK;
	}
	if (n != want) {
		return TINYFIX_ERR_CLASSES;
	}
	memcpy(dst, src, n);
	return TINYFIX_OK;
}

#define TFZ_ARRAY_INTO(err, dst, prop, want, lo, hi)                                               \
	do {                                                                                       \
		if ((err) == TINYFIX_OK) {                                                         \
			(err) = dt_array((dst), sizeof((dst)[0]), dt_##prop, TFZ_LEN(prop), (want), \
					 (lo), (hi));                                              \
		}                                                                                  \
	} while (false)

/* An unsigned field; a cell wider than the field is out of range, not truncated. */
#define TFZ_UNSIGNED(err, field, prop)                                                             \
	do {                                                                                       \
		uint64_t v_ = (uint32_t)DT_PROP_OR(TFZ_NODE, prop, (field));                       \
		if (v_ > (UINT64_MAX >> (64U - 8U * sizeof(field)))) {                             \
			(err) = TINYFIX_ERR_RANGE;                                                 \
		}                                                                                  \
		(field) = v_;                                                                      \
	} while (false)

/* A signed 32-bit field: the cell is the two's complement value. */
#define TFZ_SIGNED(field, prop) ((field) = (int32_t)DT_PROP_OR(TFZ_NODE, prop, (field)))

static int dt_fill(struct tinyfix_params *p, const struct tinyfix_model_info *m)
{
	int err = TINYFIX_OK;

	p->model_crc = (uint32_t)DT_PROP(TFZ_NODE, model_crc);
	if (p->model_crc != m->model_crc) {
		/* Nothing else about a set for another model is worth checking. */
		return TINYFIX_ERR_MODEL;
	}
	TFZ_UNSIGNED(err, p->flags, flags);
	TFZ_UNSIGNED(err, p->output_kind, output_kind);
	TFZ_SIGNED(p->inv_temperature, inv_temperature);

	TFZ_UNSIGNED(err, p->vote.mode, vote_mode);
	TFZ_UNSIGNED(err, p->vote.source, vote_source);
	TFZ_UNSIGNED(err, p->vote.threshold, vote_threshold);
	TFZ_UNSIGNED(err, p->vote.min_count, vote_min_count);
	TFZ_SIGNED(p->vote.window_ms, vote_window_ms);
	TFZ_SIGNED(p->vote.suppression_ms, vote_suppression_ms);

	TFZ_UNSIGNED(err, p->anomaly.mode, anomaly_mode);
	TFZ_UNSIGNED(err, p->anomaly.options, anomaly_options);
	TFZ_UNSIGNED(err, p->anomaly.class_index, anomaly_class);
	TFZ_UNSIGNED(err, p->anomaly.window, anomaly_window);
	/* The identity warm-up may not fit a shorter window the node asks for. */
	p->anomaly.warmup = MIN(p->anomaly.warmup, p->anomaly.window);
	TFZ_UNSIGNED(err, p->anomaly.warmup, anomaly_warmup);
	TFZ_UNSIGNED(err, p->anomaly.alpha_q8, anomaly_alpha_q8);
	TFZ_SIGNED(p->anomaly.min_dev, anomaly_min_dev);
	TFZ_UNSIGNED(err, p->anomaly.score_shift, anomaly_score_shift);
	TFZ_SIGNED(p->anomaly.seed_mean, anomaly_seed_mean);
	TFZ_SIGNED(p->anomaly.seed_sigma, anomaly_seed_sigma);
	TFZ_UNSIGNED(err, p->anomaly.guard_q8, anomaly_guard_q8);

	TFZ_UNSIGNED(err, p->input.fill_mode, input_fill_mode);
	TFZ_UNSIGNED(err, p->input.stats_shift, input_stats_shift);
	TFZ_UNSIGNED(err, p->input.clip_k_q8, input_clip_k_q8);

	TFZ_SIGNED(p->adapt.learning_rate, adapt_learning_rate);
	TFZ_SIGNED(p->adapt.clamp, adapt_clamp);
	TFZ_SIGNED(p->adapt.head_learning_rate, adapt_head_learning_rate);
	TFZ_UNSIGNED(err, p->adapt.head_clamp, adapt_head_clamp);

	TFZ_UNSIGNED(err, p->monitor.rate_shift, monitor_rate_shift);
	TFZ_UNSIGNED(err, p->monitor.min_frames, monitor_min_frames);
	TFZ_UNSIGNED(err, p->monitor.ref_conf, monitor_ref_conf);
	TFZ_UNSIGNED(err, p->monitor.conf_drop, monitor_conf_drop);
	TFZ_UNSIGNED(err, p->monitor.prior_tv, monitor_prior_tv);
	TFZ_UNSIGNED(err, p->monitor.input_z_q8, monitor_input_z_q8);

	TFZ_UNSIGNED(err, p->n_channels, n_channels);
	TFZ_UNSIGNED(err, p->n_features, n_features);
	/* Absent head-rows: one per model output (the usual whole layer). */
	p->head_rows =
		p->n_features > 0U ? (uint16_t)(m->n_outputs ? m->n_outputs : m->n_classes) : 0U;
	TFZ_UNSIGNED(err, p->head_rows, head_rows);
	TFZ_UNSIGNED(err, p->head_columns, head_columns);
	if (err != TINYFIX_OK) {
		return err;
	}
	if (p->n_classes != m->n_classes) {
		return TINYFIX_ERR_CLASSES;
	}

	TFZ_ARRAY_INTO(err, p->class_scale, class_scale, p->n_classes, INT32_MIN, INT32_MAX);
	TFZ_ARRAY_INTO(err, p->class_bias, class_bias, p->n_classes, INT32_MIN, INT32_MAX);
	TFZ_ARRAY_INTO(err, p->class_threshold, class_threshold, p->n_classes, 0, UINT16_MAX);
	TFZ_ARRAY_INTO(err, p->class_flags, class_flags, p->n_classes, 0, UINT8_MAX);
	TFZ_ARRAY_INTO(err, p->input.offset, input_offset, p->n_channels, INT32_MIN, INT32_MAX);
	TFZ_ARRAY_INTO(err, p->input.gain, input_gain, p->n_channels, INT32_MIN, INT32_MAX);
	TFZ_ARRAY_INTO(err, p->monitor.ref_prior, monitor_ref_prior, p->n_classes, 0, UINT16_MAX);
	TFZ_ARRAY_INTO(err, p->monitor.ref_in_mean, monitor_ref_in_mean, p->n_channels, INT32_MIN,
		       INT32_MAX);
	TFZ_ARRAY_INTO(err, p->monitor.ref_in_std, monitor_ref_in_std, p->n_channels, INT32_MIN,
		       INT32_MAX);
#if TINYFIX_MAX_FEATURES > 0
	if (p->n_features > 0U) {
		size_t rows = MIN((size_t)p->head_rows, (size_t)TINYFIX_MAX_CLASSES);
		size_t per_row = p->head_columns > 0U ? p->head_columns : p->n_features;

		for (size_t r = 0; r < rows; r++) {
			p->head.multiplier[r] = 1 << 30;
		}
		TFZ_ARRAY_INTO(err, p->head.multiplier, head_multiplier, rows, INT32_MIN,
			       INT32_MAX);
		TFZ_ARRAY_INTO(err, p->head.shift, head_shift, rows, INT32_MIN, INT32_MAX);
		TFZ_ARRAY_INTO(err, p->head.bias, head_bias, rows, INT32_MIN, INT32_MAX);
		if (err == TINYFIX_OK &&
		    (!DT_NODE_HAS_PROP(TFZ_NODE, head_weights) ||
		     rows * per_row > (size_t)TINYFIX_MAX_HEAD_WEIGHTS ||
		     (p->head_columns > 0U && !DT_NODE_HAS_PROP(TFZ_NODE, head_column_mask)))) {
			err = TINYFIX_ERR_CLASSES; /* a head without its weights has no meaning */
		}
		if (err == TINYFIX_OK && p->head_columns > 0U) {
			err = dt_bytes(p->head.columns, dt_head_column_mask,
				       TFZ_LEN(head_column_mask), (p->n_features + 7U) / 8U);
		}
		if (err == TINYFIX_OK) {
			err = dt_bytes((uint8_t *)p->head.weights, dt_head_weights,
				       TFZ_LEN(head_weights), rows * per_row);
		}
	}
#endif
	return err;
}

#endif /* DT_HAS_COMPAT_STATUS_OKAY(tinyfix_correction) */

int tinyfix_zephyr_default_params(struct tinyfix_params *p, const struct tinyfix_model_info *m)
{
	int err = tinyfix_params_identity(p, m);

	if (err != TINYFIX_OK) {
		return err;
	}
#if DT_HAS_COMPAT_STATUS_OKAY(tinyfix_correction)
	err = dt_fill(p, m);
	if (err == TINYFIX_OK) {
		tinyfix_params_seal(p);
		err = tinyfix_params_validate(p, m);
	}
	if (err != TINYFIX_OK) {
		LOG_ERR("devicetree parameters rejected, using identity: %s (%d)",
			tinyfix_strerror(err), err);
		(void)tinyfix_params_identity(p, m);
	}
#endif
	return err;
}

/* ---- The active context ---------------------------------------------------------------- */

struct tinyfix_ctx *tinyfix_zephyr_lock(void)
{
	(void)k_mutex_lock(&tfz_lock, K_FOREVER);
	if (tfz_active == NULL) {
		(void)k_mutex_unlock(&tfz_lock);
		return NULL;
	}
	return tfz_active;
}

void tinyfix_zephyr_unlock(void)
{
	(void)k_mutex_unlock(&tfz_lock);
}

/* Applies under the lock; logs a refusal once, here where it is decided. */
static int apply_locked(struct tinyfix_ctx *ctx, const struct tinyfix_params *p,
			const char *what)
{
	int err = tinyfix_set_params(ctx, p);

	if (err != TINYFIX_OK) {
		LOG_ERR("%s rejected, keeping the active set: %s (%d)", what,
			tinyfix_strerror(err), err);
	}
	return err;
}

static int apply_blob_locked(struct tinyfix_ctx *ctx, const uint8_t *blob, size_t len,
			     const char *what)
{
	int err = tinyfix_params_decode(blob, len, &tfz_scratch);

	if (err != TINYFIX_OK) {
		LOG_ERR("%s rejected, keeping the active set: %s (%d)", what,
			tinyfix_strerror(err), err);
		return err;
	}
	return apply_locked(ctx, &tfz_scratch, what);
}

int tinyfix_zephyr_init(struct tinyfix_ctx *ctx, const struct tinyfix_model_info *model)
{
	int err;

	/* Locked first: ctx may be the active context another thread is using. */
	(void)k_mutex_lock(&tfz_lock, K_FOREVER);
	err = tinyfix_init(ctx, model);
	if (err != TINYFIX_OK) {
		(void)k_mutex_unlock(&tfz_lock);
		LOG_ERR("init failed: %s (%d)", tinyfix_strerror(err), err);
		return err;
	}
	/* A refused devicetree set was logged and replaced by identity, which always applies. */
	(void)tinyfix_zephyr_default_params(&tfz_scratch, model);
	err = tinyfix_set_params(ctx, &tfz_scratch);
	tfz_active = ctx;
	(void)k_mutex_unlock(&tfz_lock);
	if (err != TINYFIX_OK) {
		LOG_ERR("default parameters not applied: %s (%d)", tinyfix_strerror(err), err);
	}

	if (IS_ENABLED(CONFIG_TINYFIX_SETTINGS)) {
		err = tinyfix_zephyr_params_load();
		if (err == TINYFIX_OK) {
			LOG_INF("parameters loaded from settings");
		}
	}
	return TINYFIX_OK;
}

int tinyfix_zephyr_process(const void *raw, const int8_t *features, int32_t time_ms,
			   struct tinyfix_result *res)
{
	struct tinyfix_ctx *ctx = tinyfix_zephyr_lock();
	int err;

	if (ctx == NULL) {
		return ERR_NO_CTX;
	}
	err = tinyfix_process(ctx, raw, features, time_ms, res);
#if defined(CONFIG_TINYFIX_MONITOR)
	struct tinyfix_drift drift;

	/* The advice is logged once per parameter set, where the decision is made. */
	if (err == TINYFIX_OK && (ctx->params.flags & TINYFIX_STAGE_MONITOR) != 0U &&
	    tinyfix_drift_status(ctx, &drift) == TINYFIX_OK && drift.newly_advised) {
		LOG_WRN("recalibration advised (flags 0x%02x): mean confidence %u/32768, class mix "
			"distance %u/32768, input shift %u/256 sigma after %u frames",
			drift.flags, drift.mean_conf, drift.prior_tv, drift.input_z_q8,
			drift.frames);
	}
#endif
	tinyfix_zephyr_unlock();
	return err;
}

int tinyfix_zephyr_set_params(const struct tinyfix_params *p)
{
	struct tinyfix_ctx *ctx = tinyfix_zephyr_lock();
	int err;

	if (ctx == NULL) {
		return ERR_NO_CTX;
	}
	err = apply_locked(ctx, p, "parameter set");
	tinyfix_zephyr_unlock();
	return err;
}

int tinyfix_zephyr_set_params_blob(const uint8_t *blob, size_t len)
{
	struct tinyfix_ctx *ctx = tinyfix_zephyr_lock();
	int err;

	if (ctx == NULL) {
		return ERR_NO_CTX;
	}
	err = apply_blob_locked(ctx, blob, len, "parameter blob");
	tinyfix_zephyr_unlock();
	return err;
}

int tinyfix_zephyr_get_params(struct tinyfix_params *p)
{
	struct tinyfix_ctx *ctx;

	if (p == NULL) {
		return TINYFIX_ERR_ARG;
	}
	ctx = tinyfix_zephyr_lock();
	if (ctx == NULL) {
		return ERR_NO_CTX;
	}
	*p = ctx->params;
	tinyfix_zephyr_unlock();
	return TINYFIX_OK;
}

int tinyfix_zephyr_adapt_label(const struct tinyfix_result *res, int label)
{
	struct tinyfix_ctx *ctx;
	int err;

	if (!IS_ENABLED(CONFIG_TINYFIX_ADAPT)) {
		return TINYFIX_ERR_UNSUPPORTED;
	}
	ctx = tinyfix_zephyr_lock();
	if (ctx == NULL) {
		return ERR_NO_CTX;
	}
	err = tinyfix_adapt_label(ctx, res, label);
	tinyfix_zephyr_unlock();
	return err;
}

/* ---- Settings -------------------------------------------------------------------------- */

#if defined(CONFIG_TINYFIX_SETTINGS)

#define TFZ_SETTINGS_KEY "tinyfix/params"

/* One blob buffer for saving and loading, under tfz_lock. */
static uint8_t tfz_blob[TINYFIX_ZEPHYR_PARAMS_BLOB_MAX];
/* Outcome of the last "tinyfix/params" record the handler saw. */
static int tfz_load_err;
static bool tfz_load_seen;

static int tfz_settings_set(const char *key, size_t len, settings_read_cb read_cb, void *cb_arg)
{
	struct tinyfix_ctx *ctx;
	const char *next;
	ssize_t rd;
	int err;

	if (!settings_name_steq(key, "params", &next) || next != NULL) {
		return -ENOENT;
	}
	ctx = tinyfix_zephyr_lock();
	if (ctx == NULL) {
		/* Loaded before tinyfix_zephyr_init(), which loads it again with a model. */
		return 0;
	}
	if (len > sizeof(tfz_blob)) {
		err = TINYFIX_ERR_CAPACITY;
		LOG_ERR("stored parameters rejected, keeping the active set: %s (%d)",
			tinyfix_strerror(err), err);
	} else {
		rd = read_cb(cb_arg, tfz_blob, len);
		if (rd < 0) {
			err = TINYFIX_ZEPHYR_ERR_FROM_ERRNO((int)rd);
			LOG_ERR("stored parameters unreadable (%d)", (int)rd);
		} else {
			err = apply_blob_locked(ctx, tfz_blob, (size_t)rd, "stored parameters");
		}
	}
	tfz_load_err = err;
	tfz_load_seen = true;
	tinyfix_zephyr_unlock();
	/* Handled and logged here: an error would make settings_load() log it again. */
	return 0;
}

SETTINGS_STATIC_HANDLER_DEFINE(tinyfix, "tinyfix", NULL, tfz_settings_set, NULL, NULL);

int tinyfix_zephyr_params_load(void)
{
	int err;

	if (tinyfix_zephyr_lock() == NULL) {
		return ERR_NO_CTX;
	}
	tfz_load_seen = false;
	tinyfix_zephyr_unlock();

	err = settings_subsys_init();
	if (err == 0) {
		err = settings_load_subtree("tinyfix");
	}
	if (err != 0) {
		LOG_ERR("settings load failed (%d)", err);
		return TINYFIX_ZEPHYR_ERR_FROM_ERRNO(err);
	}

	(void)k_mutex_lock(&tfz_lock, K_FOREVER);
	err = tfz_load_seen ? tfz_load_err : TINYFIX_ZEPHYR_ERR_FROM_ERRNO(-ENOENT);
	(void)k_mutex_unlock(&tfz_lock);
	return err;
}

int tinyfix_zephyr_params_save(const struct tinyfix_params *p)
{
	struct tinyfix_ctx *ctx;
	size_t len = 0;
	int err;

	if (p == NULL) {
		return TINYFIX_ERR_ARG;
	}
	ctx = tinyfix_zephyr_lock();
	if (ctx == NULL) {
		return ERR_NO_CTX;
	}
	err = tinyfix_params_validate(p, &ctx->model);
	if (err == TINYFIX_OK) {
		err = tinyfix_params_encode(p, tfz_blob, sizeof(tfz_blob), &len);
	}
	if (err != TINYFIX_OK) {
		LOG_ERR("parameters not saved: %s (%d)", tinyfix_strerror(err), err);
	} else {
		err = settings_save_one(TFZ_SETTINGS_KEY, tfz_blob, len);
		if (err != 0) {
			LOG_ERR("parameters not saved: settings (%d)", err);
			err = TINYFIX_ZEPHYR_ERR_FROM_ERRNO(err);
		}
	}
	tinyfix_zephyr_unlock();
	return err;
}

#else /* CONFIG_TINYFIX_SETTINGS */

int tinyfix_zephyr_params_load(void)
{
	return TINYFIX_ERR_UNSUPPORTED;
}

int tinyfix_zephyr_params_save(const struct tinyfix_params *p)
{
	ARG_UNUSED(p);
	return TINYFIX_ERR_UNSUPPORTED;
}

#endif /* CONFIG_TINYFIX_SETTINGS */
