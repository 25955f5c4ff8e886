/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * @brief TinyFix: correct a quantized model's outputs without retraining it.
 *
 * The caller runs the model (TFLite Micro), then hands the raw output tensor (and, when the
 * last-layer re-fit is used, the int8 feature vector that feeds the model's last layer) to
 * tinyfix_process(). The pipeline, each stage switched by a flag in the parameter set:
 *
 *   0. head:      new last layer from the int8 features (TFLM int8 FULLY_CONNECTED arithmetic)
 *   1. scale:     dequantize, log() if the model outputs probabilities, then per-class
 *                 logit = x * inv_temperature * class_scale + class_bias   (vector scaling)
 *   2. softmax:   fixed-point softmax -> per-class probability, top class, confidence
 *   3. threshold: per-class confidence threshold -> decision or TINYFIX_NO_DECISION
 *   4. vote:      multi-frame average (TFLM micro_speech RecognizeCommands semantics) or
 *                 majority vote, with minimum count, threshold and suppression
 *   5. anomaly:   adaptive threshold at windowed mean +/- alpha * sigma on one logit
 *   +  input:     tinyfix_input_correct() before Invoke: offset/gain, z-score clipping,
 *                 missing-sample fill, round-to-nearest saturating quantization
 *   +  adapt:     tinyfix_adapt_label(): bounded SGD step on the biases from a given label
 *   +  monitor:   running statistics (top-class confidence, class histogram, input mean) set
 *                 against the values stored with the parameters: tinyfix_drift_status()
 *
 * Number formats (all integers, so the core runs on a Cortex-M0/M3 without FPU):
 *   - Q16.16: int32_t, value = raw / 65536. Logits, biases, scales, sensor samples.
 *   - Q15:    uint16_t, value = raw / 32768, 32768 = 1.0. Probabilities and thresholds.
 *   - Q8.8:   uint16_t, value = raw / 256. alpha and k multipliers.
 *   - score8: uint8_t, probability * 256 saturated at 255; this is exactly an int8 softmax
 *             output (scale 1/256, zero point -128) plus 128, the domain RecognizeCommands
 *             averages in.
 *
 * Compile-time options (the Zephyr glue maps CONFIG_TINYFIX_* onto these; on the host pass
 * them with -D). Every state array is sized by them; there is no heap.
 *   - TINYFIX_MAX_CLASSES        classes per model (default 16, at most 64)
 *   - TINYFIX_MAX_VOTE_FRAMES    frames kept for voting (default 16)
 *   - TINYFIX_MAX_ANOMALY_WINDOW samples in the adaptive-threshold window (default 64)
 *   - TINYFIX_MAX_CHANNELS       input channels for input correction (default 8)
 *   - TINYFIX_MAX_FEATURES       length of the feature vector the re-fitted last layer reads;
 *                                0 compiles the head stage out (default 0)
 *   - TINYFIX_MAX_HEAD_WEIGHTS   int8 weights a re-fitted head stores: rows x features for a
 *                                whole layer, rows x columns for a residual on a subset of
 *                                the features (default TINYFIX_MAX_CLASSES x
 *                                TINYFIX_MAX_FEATURES: any whole layer)
 *   - TINYFIX_USE_FLOAT          1: stages 1-2 use float math (for cores with an FPU);
 *                                0: integer only (default 0)
 *   - TINYFIX_WITH_VOTE, TINYFIX_WITH_ANOMALY, TINYFIX_WITH_INPUT, TINYFIX_WITH_ADAPT,
 *     TINYFIX_WITH_MONITOR
 *                                0 compiles that stage out to save flash; a parameter set that
 *                                enables it is then refused (default 1 each)
 *   - TINYFIX_NO_ERRMSG          compiles the tinyfix_strerror() strings out
 *
 * Threading: no function keeps global state; a context is used by one thread at a time (the
 * caller locks). None of the functions may be called from an ISR while the same context is in
 * use elsewhere. Nothing allocates memory.
 */

#ifndef TINYFIX_TINYFIX_H_
#define TINYFIX_TINYFIX_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef TINYFIX_MAX_CLASSES
#define TINYFIX_MAX_CLASSES 16
#endif
#ifndef TINYFIX_MAX_VOTE_FRAMES
#define TINYFIX_MAX_VOTE_FRAMES 16
#endif
#ifndef TINYFIX_MAX_ANOMALY_WINDOW
#define TINYFIX_MAX_ANOMALY_WINDOW 64
#endif
#ifndef TINYFIX_MAX_CHANNELS
#define TINYFIX_MAX_CHANNELS 8
#endif
#ifndef TINYFIX_MAX_FEATURES
#define TINYFIX_MAX_FEATURES 0
#endif
#ifndef TINYFIX_MAX_HEAD_WEIGHTS
#define TINYFIX_MAX_HEAD_WEIGHTS (TINYFIX_MAX_CLASSES * TINYFIX_MAX_FEATURES)
#endif
#ifndef TINYFIX_USE_FLOAT
#define TINYFIX_USE_FLOAT 0
#endif
#ifndef TINYFIX_WITH_VOTE
#define TINYFIX_WITH_VOTE 1
#endif
#ifndef TINYFIX_WITH_ANOMALY
#define TINYFIX_WITH_ANOMALY 1
#endif
#ifndef TINYFIX_WITH_INPUT
#define TINYFIX_WITH_INPUT 1
#endif
#ifndef TINYFIX_WITH_ADAPT
#define TINYFIX_WITH_ADAPT 1
#endif
#ifndef TINYFIX_WITH_MONITOR
#define TINYFIX_WITH_MONITOR 1
#endif

#if TINYFIX_MAX_CLASSES < 2 || TINYFIX_MAX_CLASSES > 64
#error "TINYFIX_MAX_CLASSES must be in [2, 64]"
#endif
#if TINYFIX_MAX_VOTE_FRAMES < 1 || TINYFIX_MAX_VOTE_FRAMES > 255
#error "TINYFIX_MAX_VOTE_FRAMES must be in [1, 255]"
#endif
#if TINYFIX_MAX_ANOMALY_WINDOW < 2 || TINYFIX_MAX_ANOMALY_WINDOW > 256
#error "TINYFIX_MAX_ANOMALY_WINDOW must be in [2, 256]"
#endif
#if TINYFIX_MAX_CHANNELS < 1 || TINYFIX_MAX_CHANNELS > 64
#error "TINYFIX_MAX_CHANNELS must be in [1, 64]"
#endif
#if TINYFIX_MAX_FEATURES < 0 || TINYFIX_MAX_FEATURES > 4096
#error "TINYFIX_MAX_FEATURES must be in [0, 4096]"
#endif
#if TINYFIX_MAX_FEATURES > 0 && (TINYFIX_MAX_HEAD_WEIGHTS < 1 || TINYFIX_MAX_HEAD_WEIGHTS > 262144)
#error "TINYFIX_MAX_HEAD_WEIGHTS must be in [1, 262144]"
#endif
/** Most features a head reads: every one for a whole layer, fewer if the weights limit it. */
#define TINYFIX_HEAD_MAX_COLUMNS                                                                   \
	(TINYFIX_MAX_HEAD_WEIGHTS < TINYFIX_MAX_FEATURES                                           \
		 ? TINYFIX_MAX_HEAD_WEIGHTS                                                        \
		 : (TINYFIX_MAX_FEATURES > 0 ? TINYFIX_MAX_FEATURES : 1))

/** Format version of struct tinyfix_params and of its encoded blob. */
#define TINYFIX_PARAMS_VERSION 2

/** Decision value when the top class is below its confidence threshold. */
#define TINYFIX_NO_DECISION (-1)

/** Sensor sample value that marks a missing sample for tinyfix_input_correct(). */
#define TINYFIX_SAMPLE_MISSING INT32_MIN

/** Q16.16 one. */
#define TINYFIX_Q16_ONE 65536
/** Q15 one. */
#define TINYFIX_Q15_ONE 32768

/**
 * @defgroup tinyfix_errors Error codes
 * Stable values: they travel over the wire to the host, so they do not depend on any libc's
 * errno numbering. 0 is success; every error is negative.
 * @{
 */
#define TINYFIX_OK            0
#define TINYFIX_ERR_ARG       (-1)  /**< NULL pointer or argument out of its domain */
#define TINYFIX_ERR_VERSION   (-2)  /**< parameter format version not supported */
#define TINYFIX_ERR_CRC       (-3)  /**< parameter set's own CRC does not match */
#define TINYFIX_ERR_MODEL     (-4)  /**< parameter set was fitted for another model (CRC) */
#define TINYFIX_ERR_CLASSES   (-5)  /**< class, channel or feature count differs from model */
#define TINYFIX_ERR_RANGE     (-6)  /**< a parameter value is outside its documented range */
#define TINYFIX_ERR_CAPACITY  (-7)  /**< counts exceed this build's TINYFIX_MAX_* sizes */
#define TINYFIX_ERR_TIME      (-8)  /**< frame timestamp earlier than the previous frame */
#define TINYFIX_ERR_FORMAT    (-9)  /**< encoded parameter blob truncated or malformed */
#define TINYFIX_ERR_UNSUPPORTED (-10) /**< tensor type or stage not supported by this build */
/** @} */

/** Tensor element type of the model's output (or input). */
enum tinyfix_dtype {
	TINYFIX_DTYPE_INT8 = 0,
	TINYFIX_DTYPE_INT16 = 1,
	TINYFIX_DTYPE_FLOAT32 = 2,
};

/** How the model's output tensor maps onto classes. */
enum tinyfix_model_kind {
	/** One output element per class (n_outputs == n_classes). */
	TINYFIX_MODEL_CLASSIFIER = 0,
	/**
	 * One output element, class 1's logit (or its probability, a sigmoid output); class 0
	 * is the complement. n_outputs 1, n_classes 2.
	 */
	TINYFIX_MODEL_BINARY = 1,
	/**
	 * The output reconstructs the input (same element count): the anomaly score is the
	 * reconstruction error (tinyfix_process_recon()). n_classes 2: normal, anomaly.
	 */
	TINYFIX_MODEL_AUTOENCODER = 2,
};

/** What the model's output means. */
enum tinyfix_output_kind {
	/** Unnormalised scores (logits): corrected directly. */
	TINYFIX_OUTPUT_LOGITS = 0,
	/** Probabilities (the graph ends in SOFTMAX): corrected in the log domain. */
	TINYFIX_OUTPUT_PROBS = 1,
};

/** Stage switches in tinyfix_params.flags. */
enum tinyfix_stage {
	TINYFIX_STAGE_HEAD = 1u << 0,
	TINYFIX_STAGE_SCALE = 1u << 1,
	TINYFIX_STAGE_THRESHOLD = 1u << 2,
	TINYFIX_STAGE_VOTE = 1u << 3,
	TINYFIX_STAGE_ANOMALY = 1u << 4,
	TINYFIX_STAGE_INPUT = 1u << 5,
	TINYFIX_STAGE_ADAPT = 1u << 6,
	TINYFIX_STAGE_MONITOR = 1u << 7,
};
#define TINYFIX_STAGE_ALL 0xFFu

/** Per-class flags in tinyfix_params.class_flags. */
enum tinyfix_class_flag {
	/**
	 * A class that is never an event (silence, unknown, idle). Voting reports it but never
	 * as an event, and, as RecognizeCommands does for "silence", a background class on top
	 * does not start a suppression period.
	 */
	TINYFIX_CLASS_BACKGROUND = 1u << 0,
};
#define TINYFIX_CLASS_FLAGS_ALL 0x01u

enum tinyfix_vote_mode {
	TINYFIX_VOTE_AVERAGE = 0,  /**< average score8 over the window (RecognizeCommands) */
	TINYFIX_VOTE_MAJORITY = 1, /**< score8 = 256 * (frames with c on top) / frames */
};

enum tinyfix_vote_source {
	TINYFIX_VOTE_FROM_CORRECTED = 0, /**< score8 from the corrected probabilities */
	TINYFIX_VOTE_FROM_RAW = 1,       /**< raw int8 output + 128, as RecognizeCommands */
};

enum tinyfix_anomaly_mode {
	TINYFIX_ANOMALY_HIGH = 0, /**< anomaly when score > mean + alpha * sigma */
	TINYFIX_ANOMALY_LOW = 1,  /**< anomaly when score < mean - alpha * sigma */
	TINYFIX_ANOMALY_BOTH = 2, /**< either side */
};

/** Anomaly option bits. */
#define TINYFIX_ANOMALY_LEARN_ANOMALIES 0x01u /**< also add anomalous samples to the window */
/**
 * Learn nothing: the window keeps the seeded baseline (seed_mean, seed_sigma), so the
 * threshold is fixed at seed_mean + max(alpha * seed_sigma, min_dev). For a baseline that
 * does not drift, where an adaptive window only adds its estimation noise.
 */
#define TINYFIX_ANOMALY_FROZEN          0x02u
#define TINYFIX_ANOMALY_OPTIONS_ALL     0x03u

enum tinyfix_fill_mode {
	TINYFIX_FILL_LAST = 0, /**< missing sample takes the channel's last good value */
	TINYFIX_FILL_MEAN = 1, /**< missing sample takes the channel's running mean */
};

/**
 * Quantization of a tensor: real = scale * (q - zero_point), with
 * scale = multiplier * 2^(shift - 31) and multiplier in [2^30, 2^31) (or 0 for scale 0),
 * the same representation as TFLM's QuantizeMultiplier().
 */
struct tinyfix_quant {
	int32_t multiplier;
	int32_t shift;
	int32_t zero_point;
};

/** What the model looks like; given once to tinyfix_init(). */
struct tinyfix_model_info {
	/** CRC32 (IEEE, as zlib.crc32) of the model flatbuffer the parameters must match. */
	uint32_t model_crc;
	/** Number of classes: output elements, 2 for a binary model or an autoencoder. */
	uint16_t n_classes;
	/** enum tinyfix_model_kind. */
	uint8_t kind;
	/** Output tensor elements (0 means n_classes; 1 for a binary model). */
	uint32_t n_outputs;
	/** Element type of the output tensor. */
	enum tinyfix_dtype output_type;
	/** Output quantization (ignored for float32). */
	struct tinyfix_quant output_quant;
	/** Input channels (e.g. 3 for an accelerometer); 0 when input correction is unused. */
	uint16_t n_channels;
	/** Input tensor quantization (int8 input tensor; needed for channels or recon). */
	struct tinyfix_quant input_quant;
	/** Length of the int8 feature vector feeding the last layer; 0 if not available. */
	uint16_t n_features;
	/** Zero point of that feature vector. */
	int32_t feature_zero_point;
};

/** Voting parameters (stage 4). */
struct tinyfix_vote_params {
	uint8_t mode;           /**< enum tinyfix_vote_mode */
	uint8_t source;         /**< enum tinyfix_vote_source */
	uint8_t threshold;      /**< score8 a window average must exceed, [0, 255] */
	uint8_t min_count;      /**< frames needed in the window, [1, TINYFIX_MAX_VOTE_FRAMES] */
	int32_t window_ms;      /**< averaging window in ms, [0, 600000] */
	int32_t suppression_ms; /**< quiet time after a detection in ms, [0, 3600000] */
};

/** Adaptive threshold parameters (stage 5). */
struct tinyfix_anomaly_params {
	uint8_t mode;        /**< enum tinyfix_anomaly_mode */
	uint8_t options;     /**< TINYFIX_ANOMALY_* bits */
	uint16_t class_index; /**< which corrected logit is the anomaly score, < n_classes */
	uint16_t window;     /**< samples in the sliding window, [2, TINYFIX_MAX_ANOMALY_WINDOW] */
	uint16_t warmup;     /**< samples before any decision, [2, window] */
	uint16_t alpha_q8;   /**< alpha in Q8.8, [1, 65535] (up to 256.0) */
	/**
	 * Smallest deviation from the window mean that counts as an anomaly, Q16.16 score
	 * units, [0, 128.0]: a floor under alpha * sigma, so that a quiet baseline (sigma near
	 * 0) does not turn every small wobble into an alarm. 0: alpha * sigma alone.
	 */
	int32_t min_dev;
	/**
	 * Autoencoders: score = reconstruction MSE in squared input quantization steps,
	 * divided by 2^score_shift, Q16.16, [0, 30]. The host picks it so that scores stay
	 * well inside the adaptive threshold's +/-128.0.
	 */
	uint8_t score_shift;
	/**
	 * Baseline the window starts from, Q16.16 score units: a stream reset fills it with
	 * values whose mean and standard deviation are these (the calibration data's normal
	 * scores), so decisions start at once and the first frames, anomalies among them,
	 * do not set the baseline. seed_sigma 0: the window starts empty (warm-up).
	 * seed_mean [-128.0, 128.0], seed_sigma [0, 64.0].
	 */
	int32_t seed_mean;
	int32_t seed_sigma;
	/**
	 * Guard band of the baseline, Q8.8 sigmas, [0, 65535]: a frame further than
	 * guard * sigma (and min_dev) above or below the mean stays out of the window even
	 * when it is not flagged, so anomalies just under the threshold cannot drag the
	 * baseline after them. 0: every frame not flagged is learned.
	 */
	uint16_t guard_q8;
};

/** Input correction parameters (tinyfix_input_correct()). */
struct tinyfix_input_params {
	uint8_t fill_mode;   /**< enum tinyfix_fill_mode */
	uint8_t stats_shift; /**< running statistics rate 2^-shift per sample, [1, 15] */
	uint16_t clip_k_q8;  /**< clip at mean +/- k * sigma, Q8.8; 0 = no clipping, else >= 128 */
	/** Offset subtracted from each channel, Q16.16 (sensor units). */
	int32_t offset[TINYFIX_MAX_CHANNELS];
	/** Gain applied after the offset, Q16.16, (0, 64.0]. */
	int32_t gain[TINYFIX_MAX_CHANNELS];
};

/** On-device adaptation parameters (tinyfix_adapt_label()). */
struct tinyfix_adapt_params {
	int32_t learning_rate; /**< Q16.16, [0, 1.0] */
	int32_t clamp;         /**< largest bias change from the set value, Q16.16, [0, 64.0] */
	/**
	 * Head weights (stage HEAD with features): step in weight LSBs per unit of probability
	 * error times feature LSB, Q16.16, [0, 1.0]; 0 adapts only the biases. The host sets it
	 * from the learning rate and the feature and weight scales.
	 */
	int32_t head_learning_rate;
	uint8_t head_clamp; /**< largest change of a head weight from its set value, LSB, [0, 127] */
};

/**
 * Drift monitor parameters: what the calibration data looked like, and how far the running
 * statistics may move before recalibration is advised.
 */
struct tinyfix_monitor_params {
	uint8_t rate_shift;  /**< running statistics rate 2^-shift per frame, [1, 15] */
	uint16_t min_frames; /**< frames before any advice, [1, 65535] */
	uint16_t ref_conf;   /**< mean top-class probability on the calibration data, Q15 */
	uint16_t conf_drop;  /**< advise when the running mean falls this far below, Q15 */
	uint16_t prior_tv;   /**< advise when the class histogram's total-variation distance
			      *   from ref_prior exceeds this, Q15 (32768: never) */
	uint16_t input_z_q8; /**< advise when a channel's running mean is this many reference
			      *   standard deviations from ref_in_mean, Q8.8 (0: no input check) */
	/** Class priors of the calibration data (share of top-class decisions), Q15. */
	uint16_t ref_prior[TINYFIX_MAX_CLASSES];
	/** Per-channel mean and standard deviation of the corrected input, Q16.16. */
	int32_t ref_in_mean[TINYFIX_MAX_CHANNELS];
	int32_t ref_in_std[TINYFIX_MAX_CHANNELS];
};

#if TINYFIX_MAX_FEATURES > 0
/**
 * Re-fitted last layer (stage 0), one row per model output (head_rows: n_classes, or 1 for a
 * binary model), in one of two forms:
 *
 * - whole layer (head_columns 0): TFLM int8 FULLY_CONNECTED arithmetic with per-channel
 *   (per-row) quantization, as TFLite's converter emits it; per-tensor is every row equal:
 *   acc = bias[r] + sum_f weights[r][f] * (feature[f] - feature_zero_point);
 *   out = clamp(MultiplyByQuantizedMultiplier(acc, multiplier[r], shift[r]) + output zp).
 *   The output replaces the model's, in its quantization, so the later stages are unchanged.
 * - residual (head_columns k > 0): a correction of the model's own output from k of the
 *   features (bit f of columns[f / 8] set; weights [r][j] for the j-th set bit):
 *   acc = bias[r] + sum_j weights[r][j] * (feature[f_j] - feature_zero_point);
 *   the logit of row r's class gains tinyfix_mul_q31(acc, multiplier[r], shift[r]) (Q16.16)
 *   before the scale stage. The model's own layer stays in the model and is not stored.
 */
struct tinyfix_head_params {
	int32_t multiplier[TINYFIX_MAX_CLASSES]; /**< [2^30, 2^31) */
	int32_t shift[TINYFIX_MAX_CLASSES];      /**< [-31, 30] */
	int32_t bias[TINYFIX_MAX_CLASSES];
	/** Residual: the features it reads, bit f % 8 of byte f / 8. */
	uint8_t columns[(TINYFIX_MAX_FEATURES + 7) / 8];
	/** Row-major [head_rows][n_features or head_columns]. */
	int8_t weights[TINYFIX_MAX_HEAD_WEIGHTS];
};
#endif

/**
 * One parameter set. Arrays are indexed by class (or channel); entries past n_classes (or
 * n_channels) are ignored, and so not covered by the CRC. Fill it with
 * tinyfix_params_identity(), change what the fit found, then tinyfix_params_seal().
 */
struct tinyfix_params {
	uint16_t format_version; /**< TINYFIX_PARAMS_VERSION */
	uint16_t flags;          /**< enum tinyfix_stage bits */
	uint32_t model_crc;      /**< model this set was fitted for */
	uint16_t n_classes;
	uint16_t n_channels;     /**< input channels covered, 0 when the input stage is off */
	uint16_t n_features;     /**< head inputs, 0 when the head stage is off */
	uint16_t head_rows;      /**< head output rows (the model's outputs), 0 without a head */
	uint16_t head_columns;   /**< 0: the head is a whole layer; k: a residual on k features */
	uint8_t output_kind;     /**< enum tinyfix_output_kind */
	/** 1/T of temperature scaling, Q16.16, [1/256, 64.0]. */
	int32_t inv_temperature;
	/** Vector scaling, Q16.16, [0, 64.0]. */
	int32_t class_scale[TINYFIX_MAX_CLASSES];
	/** Logit offset, Q16.16, [-1024.0, 1024.0]. Label shift is log(prior ratio) here. */
	int32_t class_bias[TINYFIX_MAX_CLASSES];
	/** Confidence threshold, Q15, [0, 32768]. */
	uint16_t class_threshold[TINYFIX_MAX_CLASSES];
	/** enum tinyfix_class_flag bits. */
	uint8_t class_flags[TINYFIX_MAX_CLASSES];
	struct tinyfix_vote_params vote;
	struct tinyfix_anomaly_params anomaly;
	struct tinyfix_input_params input;
	struct tinyfix_adapt_params adapt;
	struct tinyfix_monitor_params monitor;
#if TINYFIX_MAX_FEATURES > 0
	struct tinyfix_head_params head;
#endif
	/** CRC32 of the encoded blob before this field (tinyfix_params_seal()). */
	uint32_t crc;
};

/** Everything tinyfix_process() reports for one frame. */
struct tinyfix_result {
	/** Corrected logits, Q16.16. */
	int32_t logit[TINYFIX_MAX_CLASSES];
	/** Corrected probabilities, Q15. */
	uint16_t prob[TINYFIX_MAX_CLASSES];
	int16_t top_class;
	uint16_t top_prob; /**< Q15 */
	/** top_class if top_prob >= its threshold (or thresholds off), else TINYFIX_NO_DECISION */
	int16_t decision;

	/** Voting: class on top of the window (-1 before any), its score8, and whether this
	 *  frame starts a detection (vote_new) that is not background (vote_event).
	 */
	int16_t vote_class;
	uint8_t vote_score;
	bool vote_new;
	bool vote_event;

	/** Adaptive threshold: decision on this frame, the score it judged and the window's
	 *  mean and sigma (Q16.16) it was compared against (0 during warm-up).
	 */
	bool anomaly;
	int32_t anomaly_score;
	int32_t anomaly_mean;
	int32_t anomaly_sigma;
};

/** Caller-owned state. Treat as opaque; its size is fixed by the TINYFIX_MAX_* options. */
struct tinyfix_ctx {
	struct tinyfix_model_info model;
	struct tinyfix_params params;
	int32_t eff_scale[TINYFIX_MAX_CLASSES];  /* inv_temperature * class_scale, Q16.16 */
	int32_t bias_delta[TINYFIX_MAX_CLASSES]; /* on-device adaptation, Q16.16 */

	int32_t vote_time[TINYFIX_MAX_VOTE_FRAMES];
	uint8_t vote_score[TINYFIX_MAX_VOTE_FRAMES][TINYFIX_MAX_CLASSES];
	uint8_t vote_head;
	uint8_t vote_count;
	int16_t vote_prev_top;
	bool vote_prev_valid;
	int32_t vote_prev_time;

	int32_t anom_value[TINYFIX_MAX_ANOMALY_WINDOW];
	uint16_t anom_head;
	uint16_t anom_count;
	int64_t anom_sum;
	int64_t anom_sumsq;

	int32_t in_mean[TINYFIX_MAX_CHANNELS];  /* Q16.16 */
	int64_t in_var[TINYFIX_MAX_CHANNELS];   /* Q32.32 */
	int32_t in_last[TINYFIX_MAX_CHANNELS];  /* Q16.16 */
	uint32_t in_seen;
	int32_t mon_conf;                       /* running mean of top_prob, Q23 */
	int32_t mon_hist[TINYFIX_MAX_CLASSES];  /* running share of top classes, Q23 */
	uint32_t mon_frames;
	bool mon_advised;                       /* advice already reported once */
#if TINYFIX_MAX_FEATURES > 0 && TINYFIX_WITH_ADAPT
	/* Adapted head weights: change from the set value in 1/256 LSB, and the features the
	 * head read on the last frame (the columns of a residual), which a label refers to.
	 */
	int16_t head_delta[TINYFIX_MAX_HEAD_WEIGHTS];
	int8_t last_features[TINYFIX_HEAD_MAX_COLUMNS];
	bool have_features;
#endif
	int32_t in_inv_multiplier; /* 1 / input scale, as struct tinyfix_quant */
	int32_t in_inv_shift;
	/* Autoencoders: output scale / input scale in Q16.16, and 1/n_outputs as the
	 * reciprocal of n_outputs << recon_n_shift (tinyfix_recip_q30()).
	 */
	int64_t recon_ratio_q16;
	uint32_t recon_inv_n;
	uint8_t recon_n_shift;

	bool ready;
};

/* ---- Quantization helpers ------------------------------------------------------------ */

/**
 * @brief Represent a float scale as TFLM-style multiplier and shift.
 *
 * Reads the IEEE-754 bits, so it needs no libm and no FPU. Call at init, not per frame.
 *
 * @param scale      tensor scale, finite and >= 0
 * @param zero_point tensor zero point
 * @param q          out
 * @retval TINYFIX_OK
 * @retval TINYFIX_ERR_ARG  q is NULL, or scale is negative, NaN, infinite or too large
 */
int tinyfix_quant_from_float(float scale, int32_t zero_point, struct tinyfix_quant *q);

/**
 * @brief x * multiplier * 2^(shift - 31) rounded half up, saturated to int32.
 *
 * The dequantization primitive of every stage (not TFLM's requantize, see tinyfix_head).
 * Domain: |x| <= 2^31, so that x * multiplier plus the rounding term fits int64.
 */
int32_t tinyfix_mul_q31(int64_t x, int32_t multiplier, int32_t shift);

/* ---- Fixed-point math (exposed for tests and the host) ------------------------------- */

/** e^x for x <= 0 in Q16.16, result in Q2.30 (2^30 = 1.0). x > 0 is treated as 0. */
int32_t tinyfix_exp_q16(int32_t x);
/** Natural log of a positive Q16.16 value, in Q16.16. x <= 0 returns INT32_MIN. */
int32_t tinyfix_log_q16(int32_t x);
/** About 2^61 / d for d in [2^30, 2^31), within a few units (Newton-Raphson, no division). */
uint32_t tinyfix_recip_q30(uint32_t d);
/** floor(sqrt(x)). */
uint32_t tinyfix_isqrt64(uint64_t x);

/* ---- CRC --------------------------------------------------------------------------- */

/**
 * @brief CRC-32/IEEE (reflected 0xEDB88320), chainable: tinyfix_crc32(0, buf, n) equals
 * zlib.crc32(buf), and tinyfix_crc32(tinyfix_crc32(0, a, n), b, m) that of a then b.
 */
uint32_t tinyfix_crc32(uint32_t crc, const void *data, size_t len);

/* ---- Parameters ---------------------------------------------------------------------- */

/**
 * @brief Fill a parameter set that changes nothing: stage SCALE with T = 1, scale 1, bias 0,
 * every other stage off but with usable defaults, then seal it.
 *
 * @retval TINYFIX_OK
 * @retval TINYFIX_ERR_ARG      a pointer is NULL
 * @retval TINYFIX_ERR_CAPACITY the model has more classes than TINYFIX_MAX_CLASSES
 */
int tinyfix_params_identity(struct tinyfix_params *params, const struct tinyfix_model_info *model);

/** @brief Compute and store params->crc over the encoded form. */
void tinyfix_params_seal(struct tinyfix_params *params);

/**
 * @brief Check a parameter set against a model, without applying it.
 *
 * Checks, in this order: version, capacity of this build, the set's CRC, model CRC, counts
 * against the model, then every range documented in struct tinyfix_params.
 *
 * @retval TINYFIX_OK
 * @retval TINYFIX_ERR_ARG, TINYFIX_ERR_VERSION, TINYFIX_ERR_CAPACITY, TINYFIX_ERR_CRC,
 *         TINYFIX_ERR_MODEL, TINYFIX_ERR_CLASSES, TINYFIX_ERR_RANGE, TINYFIX_ERR_UNSUPPORTED
 *         (a stage this build or this model's tensor type cannot run)
 */
int tinyfix_params_validate(const struct tinyfix_params *params,
			    const struct tinyfix_model_info *model);

/**
 * Bytes of an encoded parameter set (docs/params-format.md) without a head, and what a head
 * of @p rows rows adds (whole layer: columns 0; residual: columns k), as constant expressions
 * for buffer sizes; tinyfix_params_encoded_size() computes the same at run time.
 */
#define TINYFIX_PARAMS_ENCODED_SIZE(classes, channels) (97U + 13U * (classes) + 16U * (channels))
#define TINYFIX_PARAMS_HEAD_SIZE(rows, features, columns)                                          \
	((features) > 0 ? 12U * (rows) + (rows) * ((columns) > 0 ? (columns) : (features)) +       \
				  ((columns) > 0 ? ((features) + 7U) / 8U : 0U)                    \
			: 0U)

/** The largest encoded parameter set this build accepts. */
#define TINYFIX_PARAMS_BLOB_MAX                                                                    \
	(TINYFIX_PARAMS_ENCODED_SIZE(TINYFIX_MAX_CLASSES, TINYFIX_MAX_CHANNELS) +                  \
	 (TINYFIX_MAX_FEATURES > 0 ? 12U * TINYFIX_MAX_CLASSES + TINYFIX_MAX_HEAD_WEIGHTS +        \
					     (TINYFIX_MAX_FEATURES + 7U) / 8U                      \
				   : 0U))

/** Bytes tinyfix_params_encoded_size() for these counts (rows and columns of the head). */
size_t tinyfix_params_encoded_size(uint16_t n_classes, uint16_t n_channels, uint16_t n_features,
				   uint16_t head_rows, uint16_t head_columns);

/**
 * @brief Serialize to the portable little-endian blob (the SET_PARAMS payload and the
 * settings record). Layout: docs/params-format.md.
 *
 * @param params  set to encode (its crc field is written as is)
 * @param buf     output buffer
 * @param size    its size
 * @param written bytes written (may be NULL)
 * @retval TINYFIX_OK
 * @retval TINYFIX_ERR_ARG      NULL pointer or counts above this build's capacity
 * @retval TINYFIX_ERR_CAPACITY buf too small
 */
int tinyfix_params_encode(const struct tinyfix_params *params, uint8_t *buf, size_t size,
			  size_t *written);

/**
 * @brief Encode bytes [offset, offset + len) of the blob tinyfix_params_encode() would write,
 * without a buffer for the whole blob (GET_PARAMS in chunks).
 *
 * @param params set to encode
 * @param offset first byte wanted
 * @param buf    output, @p len bytes
 * @param len    bytes wanted; fewer are written past the end
 * @param total  out: the whole blob's size (may be NULL)
 * @retval >=0 bytes written
 * @retval TINYFIX_ERR_ARG NULL pointer or counts above this build's capacity
 */
int tinyfix_params_encode_range(const struct tinyfix_params *params, size_t offset, uint8_t *buf,
				size_t len, size_t *total);

/**
 * @brief Parse a blob into a parameter set. Does not validate ranges or the CRC: call
 * tinyfix_params_validate() (tinyfix_set_params() does).
 *
 * @retval TINYFIX_OK
 * @retval TINYFIX_ERR_ARG      NULL pointer
 * @retval TINYFIX_ERR_FORMAT   bad magic, truncated, or trailing bytes
 * @retval TINYFIX_ERR_VERSION  unknown format version
 * @retval TINYFIX_ERR_CAPACITY counts above this build's capacity
 */
int tinyfix_params_decode(const uint8_t *buf, size_t size, struct tinyfix_params *params);

/* ---- Context ----------------------------------------------------------------------- */

/**
 * @brief Prepare a context for a model, with identity parameters.
 *
 * @retval TINYFIX_OK
 * @retval TINYFIX_ERR_ARG         NULL pointer, n_classes < 2, counts that do not match the
 *                                 kind (a binary model has 1 output and 2 classes), or bad
 *                                 quantization
 * @retval TINYFIX_ERR_CAPACITY    model larger than this build's TINYFIX_MAX_* sizes
 * @retval TINYFIX_ERR_UNSUPPORTED float32 output in a build without TINYFIX_USE_FLOAT is fine;
 *                                 this is returned for an unknown dtype
 */
int tinyfix_init(struct tinyfix_ctx *ctx, const struct tinyfix_model_info *model);

/**
 * @brief Validate and apply a parameter set atomically.
 *
 * On success the stream state (vote window, anomaly window, input statistics, adaptation)
 * starts afresh. On any error the context is untouched and keeps its previous parameters.
 *
 * @retval TINYFIX_OK or any error of tinyfix_params_validate()
 */
int tinyfix_set_params(struct tinyfix_ctx *ctx, const struct tinyfix_params *params);

/** @brief Forget the stream state (vote and anomaly windows, input statistics). */
void tinyfix_reset_stream(struct tinyfix_ctx *ctx);

/**
 * @brief Correct one frame of a classifier or binary model: stages 0-3 always as configured,
 * then vote and anomaly when their stage flags are set (otherwise those result fields say
 * "none"). An autoencoder's frames go to tinyfix_process_recon().
 *
 * @param ctx      context
 * @param raw      the model's output tensor data (type and quantization from model info)
 * @param features int8 feature vector for the head stage, or NULL to skip the head
 * @param time_ms  frame time, non-decreasing across calls (used by voting)
 * @param res      out
 * @retval TINYFIX_OK
 * @retval TINYFIX_ERR_ARG  NULL ctx/raw/res, context not initialised, or an autoencoder
 * @retval TINYFIX_ERR_TIME time_ms earlier than the previous frame's (state unchanged)
 */
int tinyfix_process(struct tinyfix_ctx *ctx, const void *raw, const int8_t *features,
		    int32_t time_ms, struct tinyfix_result *res);

/**
 * @brief Judge one frame of an autoencoder (model kind TINYFIX_MODEL_AUTOENCODER): the
 * reconstruction error is the anomaly score, and the adaptive threshold (stage ANOMALY,
 * with its min_dev floor) decides on it.
 *
 * score = mean over the n_outputs elements of d^2, d = output - input in units of the input's
 * quantization step (output scale / input scale applied in Q16.16, d rounded to 1/256 step),
 * divided by 2^anomaly.score_shift, Q16.16, saturated. Integer only; no division.
 * res->anomaly_score holds it; res->decision and top_class are 1 (anomaly), 0 (normal) or
 * TINYFIX_NO_DECISION during the warm-up; prob is [1 - a, a] with a = 1 on an anomaly.
 *
 * @param input   the int8 input tensor the model ran on (n_outputs elements)
 * @param raw     the int8 output tensor
 * @retval TINYFIX_OK
 * @retval TINYFIX_ERR_ARG  NULL pointer, context not initialised, or not an autoencoder
 * @retval TINYFIX_ERR_UNSUPPORTED tensors that are not int8
 */
int tinyfix_process_recon(struct tinyfix_ctx *ctx, const int8_t *input, const void *raw,
			  int32_t time_ms, struct tinyfix_result *res);

/**
 * @brief Which compile-time limit a model exceeds, for messages that name the option.
 *
 * @return "TINYFIX_MAX_CLASSES", "TINYFIX_MAX_CHANNELS" or "TINYFIX_MAX_FEATURES" (the
 *         Kconfig option is CONFIG_ plus this), or NULL when the model fits this build.
 */
const char *tinyfix_capacity_limit(const struct tinyfix_model_info *model);

/**
 * @brief Feed one value to the adaptive threshold directly (stage 5 without stages 0-4),
 * for applications whose anomaly score is not one of the model's outputs.
 *
 * @param score Q16.16, clamped to [-128.0, 128.0]
 * @param res   out: only the anomaly fields are written
 */
int tinyfix_anomaly_update(struct tinyfix_ctx *ctx, int32_t score, struct tinyfix_result *res);

/**
 * @brief Correct and quantize one window of sensor samples into the model's int8 input.
 *
 * Per sample and channel: fill if TINYFIX_SAMPLE_MISSING, (x - offset) * gain, clip at the
 * running mean +/- k * sigma (statistics as of the start of the window), update the running
 * statistics, then q = round_half_away(x / input scale) + zero point, saturated to int8.
 * With the input stage off only the quantization runs.
 *
 * @param samples interleaved [n_frames][n_channels], Q16.16 sensor units
 * @param out     int8 [n_frames][n_channels]
 * @retval TINYFIX_OK
 * @retval TINYFIX_ERR_ARG NULL pointer, or model has no input channels
 * @retval TINYFIX_ERR_UNSUPPORTED compiled out (TINYFIX_WITH_INPUT=0)
 */
int tinyfix_input_correct(struct tinyfix_ctx *ctx, const int32_t *samples, size_t n_frames,
			  int8_t *out);

/**
 * @brief One bounded SGD step on the class biases from a label (stage ADAPT).
 *
 * Cross-entropy gradient on the corrected logits: bias[c] -= lr * (prob[c] - [c == label]),
 * each bias kept within +/- clamp of its value in the applied parameter set. With the head
 * stage, features on that frame and a non-zero head_learning_rate, the head's weights take
 * the same step, w[c][f] -= head_lr * (prob[c] - [c == label]) * (feature[f] - zero point),
 * kept within +/- head_clamp LSB of the set weights.
 *
 * @param res   the result tinyfix_process() returned for the labelled frame
 * @param label the true class
 * @retval TINYFIX_OK
 * @retval TINYFIX_ERR_ARG         NULL pointer or label out of range
 * @retval TINYFIX_ERR_UNSUPPORTED stage ADAPT is off in the parameters
 */
int tinyfix_adapt_label(struct tinyfix_ctx *ctx, const struct tinyfix_result *res, int label);

/** @brief Undo all adaptation: back to the biases of the applied parameter set. */
void tinyfix_adapt_reset(struct tinyfix_ctx *ctx);

/** Drift flags in struct tinyfix_drift (also the STATS drift_flags bits above bit 0). */
#define TINYFIX_DRIFT_ADVISED 0x01u /**< recalibration advised */
#define TINYFIX_DRIFT_CONF    0x02u /**< mean confidence dropped */
#define TINYFIX_DRIFT_PRIOR   0x04u /**< class histogram moved away from the priors */
#define TINYFIX_DRIFT_INPUT   0x08u /**< an input channel's mean moved */

/** What the drift monitor sees now (tinyfix_drift_status()). */
struct tinyfix_drift {
	uint16_t mean_conf;  /**< running mean top-class probability, Q15 */
	uint16_t prior_tv;   /**< total-variation distance of the class histogram, Q15 */
	uint16_t input_z_q8; /**< largest input mean shift in reference sigmas, Q8.8, saturated */
	uint32_t frames;     /**< frames seen since the parameter set was applied */
	uint8_t flags;       /**< TINYFIX_DRIFT_* bits */
	/** true on the first call that finds recalibration advised (log it once), then false
	 *  until a new parameter set is applied.
	 */
	bool newly_advised;
};

/**
 * @brief Compare the running statistics with those stored in the parameter set (stage
 * MONITOR; input figures need tinyfix_input_correct() and a non-zero input_z_q8).
 *
 * @retval TINYFIX_OK
 * @retval TINYFIX_ERR_ARG         NULL pointer or context not initialised
 * @retval TINYFIX_ERR_UNSUPPORTED stage MONITOR is off (out is zeroed)
 */
int tinyfix_drift_status(struct tinyfix_ctx *ctx, struct tinyfix_drift *out);

/** @brief Short text for an error code ("" with TINYFIX_NO_ERRMSG). */
const char *tinyfix_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* TINYFIX_TINYFIX_H_ */
