/* SPDX-License-Identifier: Apache-2.0 */
/* cffi declarations of modules/tinyfix/include/tinyfix/tinyfix.h ("..." = ask the compiler). */

#define TINYFIX_MAX_CLASSES ...
#define TINYFIX_MAX_VOTE_FRAMES ...
#define TINYFIX_MAX_ANOMALY_WINDOW ...
#define TINYFIX_MAX_CHANNELS ...
#define TINYFIX_MAX_FEATURES ...
#define TINYFIX_MAX_HEAD_WEIGHTS ...
#define TINYFIX_HEAD_MAX_COLUMNS ...
#define TINYFIX_PARAMS_BLOB_MAX ...
#define TINYFIX_USE_FLOAT ...
#define TINYFIX_PARAMS_VERSION ...
#define TINYFIX_NO_DECISION ...
#define TINYFIX_SAMPLE_MISSING ...
#define TINYFIX_STAGE_ALL ...
#define TINYFIX_ANOMALY_LEARN_ANOMALIES ...
#define TINYFIX_ANOMALY_FROZEN ...
#define TINYFIX_DRIFT_ADVISED ...
#define TINYFIX_DRIFT_CONF ...
#define TINYFIX_DRIFT_PRIOR ...
#define TINYFIX_DRIFT_INPUT ...

#define TINYFIX_OK ...
#define TINYFIX_ERR_ARG ...
#define TINYFIX_ERR_VERSION ...
#define TINYFIX_ERR_CRC ...
#define TINYFIX_ERR_MODEL ...
#define TINYFIX_ERR_CLASSES ...
#define TINYFIX_ERR_RANGE ...
#define TINYFIX_ERR_CAPACITY ...
#define TINYFIX_ERR_TIME ...
#define TINYFIX_ERR_FORMAT ...
#define TINYFIX_ERR_UNSUPPORTED ...

enum tinyfix_dtype { TINYFIX_DTYPE_INT8, TINYFIX_DTYPE_INT16, TINYFIX_DTYPE_FLOAT32 };
enum tinyfix_model_kind { TINYFIX_MODEL_CLASSIFIER, TINYFIX_MODEL_BINARY, TINYFIX_MODEL_AUTOENCODER };
enum tinyfix_output_kind { TINYFIX_OUTPUT_LOGITS, TINYFIX_OUTPUT_PROBS };
enum tinyfix_stage {
	TINYFIX_STAGE_HEAD, TINYFIX_STAGE_SCALE, TINYFIX_STAGE_THRESHOLD, TINYFIX_STAGE_VOTE,
	TINYFIX_STAGE_ANOMALY, TINYFIX_STAGE_INPUT, TINYFIX_STAGE_ADAPT, TINYFIX_STAGE_MONITOR, ...
};
enum tinyfix_class_flag { TINYFIX_CLASS_BACKGROUND, ... };
enum tinyfix_vote_mode { TINYFIX_VOTE_AVERAGE, TINYFIX_VOTE_MAJORITY };
enum tinyfix_vote_source { TINYFIX_VOTE_FROM_CORRECTED, TINYFIX_VOTE_FROM_RAW };
enum tinyfix_anomaly_mode { TINYFIX_ANOMALY_HIGH, TINYFIX_ANOMALY_LOW, TINYFIX_ANOMALY_BOTH };
enum tinyfix_fill_mode { TINYFIX_FILL_LAST, TINYFIX_FILL_MEAN };

struct tinyfix_quant {
	int32_t multiplier;
	int32_t shift;
	int32_t zero_point;
};

struct tinyfix_model_info {
	uint32_t model_crc;
	uint16_t n_classes;
	uint8_t kind;
	uint32_t n_outputs;
	enum tinyfix_dtype output_type;
	struct tinyfix_quant output_quant;
	uint16_t n_channels;
	struct tinyfix_quant input_quant;
	uint16_t n_features;
	int32_t feature_zero_point;
};

struct tinyfix_vote_params {
	uint8_t mode;
	uint8_t source;
	uint8_t threshold;
	uint8_t min_count;
	int32_t window_ms;
	int32_t suppression_ms;
};

struct tinyfix_anomaly_params {
	uint8_t mode;
	uint8_t options;
	uint16_t class_index;
	uint16_t window;
	uint16_t warmup;
	uint16_t alpha_q8;
	int32_t min_dev;
	uint8_t score_shift;
	int32_t seed_mean;
	int32_t seed_sigma;
	uint16_t guard_q8;
};

struct tinyfix_input_params {
	uint8_t fill_mode;
	uint8_t stats_shift;
	uint16_t clip_k_q8;
	int32_t offset[...];
	int32_t gain[...];
};

struct tinyfix_adapt_params {
	int32_t learning_rate;
	int32_t clamp;
	int32_t head_learning_rate;
	uint8_t head_clamp;
};

struct tinyfix_monitor_params {
	uint8_t rate_shift;
	uint16_t min_frames;
	uint16_t ref_conf;
	uint16_t conf_drop;
	uint16_t prior_tv;
	uint16_t input_z_q8;
	uint16_t ref_prior[...];
	int32_t ref_in_mean[...];
	int32_t ref_in_std[...];
};

struct tinyfix_head_params {
	int32_t multiplier[...];
	int32_t shift[...];
	int32_t bias[...];
	uint8_t columns[...];
	int8_t weights[...];
};

struct tinyfix_params {
	uint16_t format_version;
	uint16_t flags;
	uint32_t model_crc;
	uint16_t n_classes;
	uint16_t n_channels;
	uint16_t n_features;
	uint16_t head_rows;
	uint16_t head_columns;
	uint8_t output_kind;
	int32_t inv_temperature;
	int32_t class_scale[...];
	int32_t class_bias[...];
	uint16_t class_threshold[...];
	uint8_t class_flags[...];
	struct tinyfix_vote_params vote;
	struct tinyfix_anomaly_params anomaly;
	struct tinyfix_input_params input;
	struct tinyfix_adapt_params adapt;
	struct tinyfix_monitor_params monitor;
	struct tinyfix_head_params head;
	uint32_t crc;
	...;
};

struct tinyfix_result {
	int32_t logit[...];
	uint16_t prob[...];
	int16_t top_class;
	uint16_t top_prob;
	int16_t decision;
	int16_t vote_class;
	uint8_t vote_score;
	bool vote_new;
	bool vote_event;
	bool anomaly;
	int32_t anomaly_score;
	int32_t anomaly_mean;
	int32_t anomaly_sigma;
	...;
};

struct tinyfix_drift {
	uint16_t mean_conf;
	uint16_t prior_tv;
	uint16_t input_z_q8;
	uint32_t frames;
	uint8_t flags;
	bool newly_advised;
};

struct tinyfix_ctx {
	int32_t bias_delta[...];
	int16_t head_delta[...];
	...;
};

int tinyfix_quant_from_float(float scale, int32_t zero_point, struct tinyfix_quant *q);
int32_t tinyfix_mul_q31(int64_t x, int32_t multiplier, int32_t shift);
int32_t tinyfix_exp_q16(int32_t x);
int32_t tinyfix_log_q16(int32_t x);
uint32_t tinyfix_recip_q30(uint32_t d);
uint32_t tinyfix_isqrt64(uint64_t x);
uint32_t tinyfix_crc32(uint32_t crc, const void *data, size_t len);

int tinyfix_params_identity(struct tinyfix_params *params, const struct tinyfix_model_info *model);
void tinyfix_params_seal(struct tinyfix_params *params);
int tinyfix_params_validate(const struct tinyfix_params *params,
			    const struct tinyfix_model_info *model);
size_t tinyfix_params_encoded_size(uint16_t n_classes, uint16_t n_channels, uint16_t n_features,
				   uint16_t head_rows, uint16_t head_columns);
int tinyfix_params_encode_range(const struct tinyfix_params *params, size_t offset, uint8_t *buf,
				size_t len, size_t *total);
int tinyfix_params_encode(const struct tinyfix_params *params, uint8_t *buf, size_t size,
			  size_t *written);
int tinyfix_params_decode(const uint8_t *buf, size_t size, struct tinyfix_params *params);

int tinyfix_init(struct tinyfix_ctx *ctx, const struct tinyfix_model_info *model);
int tinyfix_set_params(struct tinyfix_ctx *ctx, const struct tinyfix_params *params);
void tinyfix_reset_stream(struct tinyfix_ctx *ctx);
int tinyfix_process(struct tinyfix_ctx *ctx, const void *raw, const int8_t *features,
		    int32_t time_ms, struct tinyfix_result *res);
int tinyfix_process_recon(struct tinyfix_ctx *ctx, const int8_t *input, const void *raw,
			  int32_t time_ms, struct tinyfix_result *res);
const char *tinyfix_capacity_limit(const struct tinyfix_model_info *model);
int tinyfix_anomaly_update(struct tinyfix_ctx *ctx, int32_t score, struct tinyfix_result *res);
int tinyfix_input_correct(struct tinyfix_ctx *ctx, const int32_t *samples, size_t n_frames,
			  int8_t *out);
int tinyfix_adapt_label(struct tinyfix_ctx *ctx, const struct tinyfix_result *res, int label);
void tinyfix_adapt_reset(struct tinyfix_ctx *ctx);
int tinyfix_drift_status(struct tinyfix_ctx *ctx, struct tinyfix_drift *out);
const char *tinyfix_strerror(int err);
