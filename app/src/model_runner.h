/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file
 * @brief The TFLM interpreter behind a C interface (model_runner.cpp is the only C++).
 *
 * One model, one interpreter, one statically sized arena. The model is whatever the build
 * was given (-DTINYFIX_MODEL=..., default the bundled demo model): its C array, its op
 * list and its tensor shapes are generated at build time (scripts/gen_model_sources.py
 * into the build folder: model_data.h, model_ops.h, model_info.h). Not thread-safe: the
 * application thread is the only caller.
 */

#ifndef APP_MODEL_RUNNER_H_
#define APP_MODEL_RUNNER_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Largest tensor rank described (the wire protocol's). */
#define MODEL_MAX_DIMS 6

/** A tensor as the application and the link see it. */
struct model_tensor {
	/** TfLiteType numbering (9 int8); 0 for a tensor that is not available. */
	uint8_t dtype;
	uint8_t ndims;
	uint16_t dims[MODEL_MAX_DIMS];
	/** Elements. */
	size_t count;
	/** Bytes. */
	size_t bytes;
	/** Per-tensor quantization: real = scale * (q - zero_point). */
	float scale;
	int32_t zero_point;
};

/** What model_init() found. */
struct model_desc {
	/** zlib.crc32 of the flatbuffer. */
	uint32_t crc;
	struct model_tensor input;
	/** What TinyFix corrects: the output, or the tensor a trailing DEQUANTIZE converts. */
	struct model_tensor output;
	/** Penultimate features (input of the last layer); dtype 0 if unavailable. */
	struct model_tensor feature;
	/** Index of the feature tensor in the subgraph, -1 if none. */
	int feature_index;
	/** Arena bytes reserved and actually used after AllocateTensors(). */
	size_t arena_size;
	size_t arena_used;
	/** How the features are kept readable: "tap", "preserve-all" or "none". */
	const char *feature_mode;
};

/**
 * @brief Load the model, check its version, ops, input and output tensors, allocate.
 *
 * Logs the first failure with its cause.
 *
 * @retval 0 ready; model_desc() describes the model
 * @retval -EINVAL  schema version, tensor type or shape not what the build generated
 * @retval -ENOMEM  the arena is too small (CONFIG_APP_TENSOR_ARENA_SIZE)
 * @retval -ENOTSUP an op the resolver does not have
 */
int model_init(void);

/** @brief The model's description; valid after model_init() succeeded. */
const struct model_desc *model_desc(void);

/**
 * @brief The model's input tensor, model_desc()->input.bytes long, or NULL before
 * model_init(). A caller may fill it in place and pass it to model_invoke().
 */
uint8_t *model_input_buffer(void);

/**
 * @brief Run the model; nothing is copied back.
 *
 * @param input    model input, model_desc()->input.bytes bytes; the input tensor itself
 *                 (model_input_buffer()) is not copied
 * @param raw      out: where the raw output (model_desc()->output) lies, valid until the
 *                 next run
 * @param features out: where the feature vector lies (until the next run), or NULL when
 *                 not wanted; NULL is written when the model has none
 * @param cycles   out: cycles spent in Invoke() (see cycles.h), or NULL
 * @retval 0       done
 * @retval -EIO    Invoke() failed (logged)
 * @retval -ENODEV model_init() has not succeeded
 */
int model_invoke(const uint8_t *input, const uint8_t **raw, const int8_t **features,
		 uint32_t *cycles);

/**
 * @brief Start the model's own state afresh (TFLM's Reset(): variable tensors of LSTM and
 * SVDF ops, resource variables). Only models with MODEL_STATEFUL (model_info.h) have any.
 *
 * @retval 0       done
 * @retval -EIO    Reset() failed
 * @retval -ENODEV model_init() has not succeeded
 */
int model_reset(void);

/**
 * @brief model_invoke() with the raw output and the features copied to the caller's
 * buffers (model_desc()->output.bytes and ->feature.count bytes), for the local pipeline.
 */
int model_run(const int8_t *input, int8_t *raw, int8_t *features, uint32_t *cycles);

#ifdef __cplusplus
}
#endif

#endif /* APP_MODEL_RUNNER_H_ */
