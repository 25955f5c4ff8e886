/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * @brief TinyFix on Zephyr: devicetree defaults, one shared active context, settings.
 *
 * The application owns a struct tinyfix_ctx and hands it to tinyfix_zephyr_init(), which
 * applies the compiled-in parameters of the "tinyfix,correction" devicetree node, then (with
 * CONFIG_TINYFIX_SETTINGS) the set stored under "tinyfix/params", and makes the context the
 * active one. From then on the application, the shell and the host link reach it only through
 * the functions below, which serialize on one mutex:
 *
 * @code
 * static struct tinyfix_ctx fix;
 * struct tinyfix_result res;
 *
 * err = tinyfix_zephyr_init(&fix, &model_info);
 * ...
 * err = tinyfix_zephyr_process(output->data.int8, NULL, k_uptime_get_32(), &res);
 * @endcode
 *
 * Errors are the core's TINYFIX_ERR_* codes; a Zephyr errno (settings backend, no active
 * context) comes back in a reserved range, unflattened: TINYFIX_ZEPHYR_ERR_FROM_ERRNO(-errno).
 * None of these functions may be called from an ISR (they take a k_mutex).
 */

#ifndef TINYFIX_TINYFIX_ZEPHYR_H_
#define TINYFIX_TINYFIX_ZEPHYR_H_

#include <tinyfix/tinyfix.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Start of the range that carries Zephyr errno values; below every TINYFIX_ERR_* code. */
#define TINYFIX_ZEPHYR_ERRNO_BASE (-1000)
/** Glue error for a negative errno @p e, e.g. TINYFIX_ZEPHYR_ERR_FROM_ERRNO(-ENOENT). */
#define TINYFIX_ZEPHYR_ERR_FROM_ERRNO(e) (TINYFIX_ZEPHYR_ERRNO_BASE + (e))
/** True if @p err carries an errno. */
#define TINYFIX_ZEPHYR_ERR_IS_ERRNO(err) ((err) <= TINYFIX_ZEPHYR_ERRNO_BASE)
/** The negative errno inside @p err. */
#define TINYFIX_ZEPHYR_ERR_TO_ERRNO(err) ((err) - TINYFIX_ZEPHYR_ERRNO_BASE)

/**
 * Upper bound of tinyfix_params_encoded_size() for this build's TINYFIX_MAX_* sizes: the
 * buffer an encoded parameter set (settings record, SET_PARAMS payload) always fits in.
 */
#define TINYFIX_ZEPHYR_PARAMS_BLOB_MAX TINYFIX_PARAMS_BLOB_MAX

/**
 * @brief Fill the compiled-in default parameter set for a model.
 *
 * With a "tinyfix,correction" devicetree node (status okay), the set is the identity set
 * overwritten by the node's properties, sealed and validated against @p m. Without a node it
 * is the identity set. A node that is rejected is logged once with its error code and @p p
 * gets the identity set instead. Never touches the active context.
 *
 * @param p out: the parameter set, always sealed and valid for @p m unless an argument error
 * @param m the model
 * @retval TINYFIX_OK           @p p holds the devicetree set, or identity when there is no node
 * @retval TINYFIX_ERR_ARG      a pointer is NULL
 * @retval TINYFIX_ERR_CAPACITY the model exceeds this build's sizes (from the identity set)
 * @retval TINYFIX_ERR_MODEL    the node's model-crc is for another model; @p p is identity
 * @retval TINYFIX_ERR_CLASSES  a per-class or per-channel array has the wrong length, or
 *                              the counts differ from the model; @p p is identity
 * @retval TINYFIX_ERR_RANGE    a value is out of range; @p p is identity
 * @retval other                any error of tinyfix_params_validate(); @p p is identity
 */
int tinyfix_zephyr_default_params(struct tinyfix_params *p, const struct tinyfix_model_info *m);

/**
 * @brief Initialise @p ctx for @p model and make it the active context.
 *
 * Applies tinyfix_zephyr_default_params(), then, with CONFIG_TINYFIX_SETTINGS, the stored set
 * (tinyfix_zephyr_params_load(); its failure is logged, not returned). Calling it again
 * replaces the active context. @p ctx must outlive its use as the active context.
 *
 * @retval TINYFIX_OK
 * @retval other  any error of tinyfix_init(); the previous active context stays
 */
int tinyfix_zephyr_init(struct tinyfix_ctx *ctx, const struct tinyfix_model_info *model);

/**
 * @brief Lock the active context for direct use of the core API.
 *
 * @return the active context, locked (call tinyfix_zephyr_unlock()), or NULL, not locked,
 *         when tinyfix_zephyr_init() has not run. Recursive within one thread.
 */
struct tinyfix_ctx *tinyfix_zephyr_lock(void);

/** @brief Release tinyfix_zephyr_lock(). */
void tinyfix_zephyr_unlock(void);

/**
 * @brief tinyfix_process() on the active context, under the lock.
 *
 * @retval TINYFIX_OK or any error of tinyfix_process()
 * @retval TINYFIX_ZEPHYR_ERR_FROM_ERRNO(-ENODEV) no active context
 */
int tinyfix_zephyr_process(const void *raw, const int8_t *features, int32_t time_ms,
			   struct tinyfix_result *res);

/**
 * @brief Validate and apply a parameter set to the active context.
 *
 * A rejected set is logged once with its error code; the active context keeps its previous
 * parameters. Applying resets the stream state (vote and anomaly windows, adaptation).
 *
 * @retval TINYFIX_OK or any error of tinyfix_set_params()
 * @retval TINYFIX_ZEPHYR_ERR_FROM_ERRNO(-ENODEV) no active context
 */
int tinyfix_zephyr_set_params(const struct tinyfix_params *p);

/**
 * @brief Decode an encoded parameter set (tinyfix_params_encode()) and apply it as
 * tinyfix_zephyr_set_params() does.
 *
 * @retval TINYFIX_OK, any error of tinyfix_params_decode() or tinyfix_set_params()
 * @retval TINYFIX_ZEPHYR_ERR_FROM_ERRNO(-ENODEV) no active context
 */
int tinyfix_zephyr_set_params_blob(const uint8_t *blob, size_t len);

/**
 * @brief Copy the active parameter set (as applied: without adaptation's bias changes).
 *
 * @retval TINYFIX_OK
 * @retval TINYFIX_ERR_ARG                         @p p is NULL
 * @retval TINYFIX_ZEPHYR_ERR_FROM_ERRNO(-ENODEV)  no active context
 */
int tinyfix_zephyr_get_params(struct tinyfix_params *p);

/**
 * @brief tinyfix_adapt_label() on the active context, if CONFIG_TINYFIX_ADAPT allows it.
 *
 * @retval TINYFIX_OK or any error of tinyfix_adapt_label()
 * @retval TINYFIX_ERR_UNSUPPORTED                 CONFIG_TINYFIX_ADAPT is off
 * @retval TINYFIX_ZEPHYR_ERR_FROM_ERRNO(-ENODEV)  no active context
 */
int tinyfix_zephyr_adapt_label(const struct tinyfix_result *res, int label);

/**
 * @brief Store a parameter set under the settings key "tinyfix/params".
 *
 * The set is validated against the active context's model first, so a stored set is one the
 * next tinyfix_zephyr_init() accepts. It is not applied.
 *
 * @retval TINYFIX_OK
 * @retval TINYFIX_ERR_UNSUPPORTED                 CONFIG_TINYFIX_SETTINGS is off
 * @retval TINYFIX_ERR_ARG                         @p p is NULL
 * @retval other TINYFIX_ERR_*                     @p p fails tinyfix_params_validate()
 * @retval TINYFIX_ZEPHYR_ERR_FROM_ERRNO(-ENODEV)  no active context
 * @retval TINYFIX_ZEPHYR_ERR_FROM_ERRNO(e)        the settings backend failed with errno e
 */
int tinyfix_zephyr_params_save(const struct tinyfix_params *p);

/**
 * @brief Apply the set stored under "tinyfix/params" to the active context.
 *
 * A stored set that does not decode or validate is logged once with its error code and the
 * active context keeps its parameters.
 *
 * @retval TINYFIX_OK                              the stored set is now active
 * @retval TINYFIX_ERR_UNSUPPORTED                 CONFIG_TINYFIX_SETTINGS is off
 * @retval TINYFIX_ZEPHYR_ERR_FROM_ERRNO(-ENOENT)  nothing stored
 * @retval TINYFIX_ZEPHYR_ERR_FROM_ERRNO(-ENODEV)  no active context
 * @retval TINYFIX_ZEPHYR_ERR_FROM_ERRNO(e)        the settings subsystem failed with errno e
 * @retval other TINYFIX_ERR_*                     the stored set was rejected
 */
int tinyfix_zephyr_params_load(void);

#ifdef __cplusplus
}
#endif

#endif /* TINYFIX_TINYFIX_ZEPHYR_H_ */
