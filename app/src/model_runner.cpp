/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TFLM interpreter for the model the build was given, after TFLM's micro_speech
 * main_functions.cc: every status is checked, the input and output tensors are checked
 * against what the build generated from the same flatbuffer (model_info.h), the op resolver
 * holds exactly the model's ops (model_ops.h), and the arena is a named static array sized
 * from a host-side estimate (CONFIG_APP_TENSOR_ARENA_SIZE, set by the generated model.conf).
 * The only C++ in the application.
 *
 * The penultimate features (the input of the model's last layer, what a head re-fit reads)
 * are normally gone after Invoke(): TFLM reuses intermediate tensors' memory. Two ways keep
 * them readable (CONFIG_APP_FEATURES_*):
 *  - tap (default): the last layer's op (FULLY_CONNECTED, or the 1x1 CONV_2D that ends a
 *    person-detection style model) is registered with a wrapped invoke that copies that
 *    node's input into a static buffer: the one copy, read in place by the link and the
 *    core. No arena bytes; works with CMSIS-NN kernels too.
 *  - preserve-all: TFLM's preserve_all_tensors mode; GetTensor() reads them in the arena.
 * A third way, rewriting the model so the features are a second output, changes the
 * flatbuffer and so its CRC, which every parameter set is bound to; it is not used.
 *
 * A model that ends in DEQUANTIZE (float output) is corrected on the int8 numbers before
 * it: they are recovered exactly from the float output, q = round(f / scale) + zero point.
 */

#include <errno.h>
#include <math.h>
#include <string.h>

#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>

#include <tensorflow/lite/micro/kernels/conv.h>
#include <tensorflow/lite/micro/kernels/fully_connected.h>
#include <tensorflow/lite/micro/kernels/kernel_util.h>
#include <tensorflow/lite/micro/micro_allocator.h>
#include <tensorflow/lite/micro/micro_interpreter.h>
#include <tensorflow/lite/micro/micro_resource_variable.h>
#include <tensorflow/lite/micro/micro_mutable_op_resolver.h>
#include <tensorflow/lite/schema/schema_generated.h>

#include <tinyfix/tinyfix.h>

#include "cycles.h"
#include "model_data.h"
#include "model_info.h"
#include "model_ops.h"
#include "model_runner.h"

LOG_MODULE_REGISTER(model, CONFIG_APP_LOG_LEVEL);

namespace {

/*
 * Tensor arena: the generated estimate (reference or CMSIS-NN kernels, 32-bit) with a
 * margin, unless the build sets it; preserve-all needs its own larger estimate.
 */
#if defined(CONFIG_APP_FEATURES_PRESERVE_ALL)
constexpr size_t kTensorArenaSize = CONFIG_APP_TENSOR_ARENA_SIZE > MODEL_ARENA_SIZE_PRESERVE_ALL
					    ? CONFIG_APP_TENSOR_ARENA_SIZE
					    : MODEL_ARENA_SIZE_PRESERVE_ALL;
#else
constexpr size_t kTensorArenaSize = CONFIG_APP_TENSOR_ARENA_SIZE;
#endif
alignas(16) uint8_t tensor_arena[kTensorArenaSize];

constexpr bool kFeaturesUsable = MODEL_FEATURE_USABLE && TINYFIX_MAX_FEATURES > 0 &&
				 MODEL_FEATURE_ELEMENTS <= TINYFIX_MAX_FEATURES;
constexpr size_t kFeatureBytes = MODEL_FEATURE_ELEMENTS > 0 ? MODEL_FEATURE_ELEMENTS : 1;

using Resolver = tflite::MicroMutableOpResolver<MODEL_OP_COUNT>;

const tflite::Model *model;
tflite::MicroInterpreter *interpreter;
TfLiteTensor *input;
TfLiteTensor *output;
struct model_desc desc;

#if MODEL_OUTPUT_DEQUANTIZED
/* The int8 (or int16) numbers a trailing DEQUANTIZE turned into floats. */
alignas(4) uint8_t logical_output[MODEL_LOGICAL_OUTPUT_BYTES];
#endif

/* The last layer's op as a resolver method suffix and its stock registration. */
#if defined(MODEL_HEAD_OP_FULLY_CONNECTED)
constexpr const char *kHeadOp = "FullyConnected";
[[maybe_unused]] TFLMRegistration head_registration()
{
	return tflite::Register_FULLY_CONNECTED();
}
#elif defined(MODEL_HEAD_OP_CONV_2D)
constexpr const char *kHeadOp = "Conv2D";
[[maybe_unused]] TFLMRegistration head_registration()
{
	return tflite::Register_CONV_2D();
}
#else
constexpr const char *kHeadOp = "";
[[maybe_unused]] TFLMRegistration head_registration()
{
	return TFLMRegistration{};
}
#endif

constexpr bool same(const char *a, const char *b)
{
	return *a == *b && (*a == '\0' || same(a + 1, b + 1));
}

#if defined(CONFIG_APP_FEATURES_TAP)
TFLMRegistration head_kernel;
int8_t tap_buf[kFeatureBytes];
bool tap_on;

/* Never log or fail here beyond the wrapped kernel: it runs inside Invoke(). */
[[maybe_unused]] TfLiteStatus head_tap_invoke(TfLiteContext *context, TfLiteNode *node)
{
	TfLiteStatus status = head_kernel.invoke(context, node);

	if (status == kTfLiteOk && tap_on && node->inputs->data[0] == MODEL_FEATURE_TENSOR) {
		const TfLiteEvalTensor *in = tflite::micro::GetEvalInput(context, node, 0);

		memcpy(tap_buf, in->data.int8, MODEL_FEATURE_ELEMENTS);
	}
	return status;
}
#endif

/* The registration of the model's op `name`: the last layer's wrapped for the tap. */
template <bool Head, typename AddFn> TfLiteStatus add_op(Resolver &r, AddFn add)
{
	if constexpr (Head) {
#if defined(CONFIG_APP_FEATURES_TAP)
		head_kernel = head_registration();
		TFLMRegistration tapped = head_kernel;

		tapped.invoke = head_tap_invoke;
		return add(r, tapped);
#else
		return add(r);
#endif
	} else {
		return add(r);
	}
}

#define ADD_OP(name)                                                                               \
	if (status == kTfLiteOk) {                                                                 \
		status = add_op<same(#name, kHeadOp)>(                                             \
			resolver, [](Resolver &r, auto &&...reg) { return r.Add##name(reg...); }); \
		if (status != kTfLiteOk) {                                                         \
			LOG_ERR("op %s not added to the resolver", #name);                         \
		}                                                                                  \
	}

TfLiteStatus register_ops(Resolver &resolver)
{
	TfLiteStatus status = kTfLiteOk;

	MODEL_OPS(ADD_OP)
	return status;
}

void describe(struct model_tensor *d, const TfLiteTensor *t)
{
	d->dtype = (uint8_t)t->type;
	d->ndims = (uint8_t)MIN(t->dims->size, MODEL_MAX_DIMS);
	d->count = 1;
	for (int i = 0; i < t->dims->size; i++) {
		if (i < MODEL_MAX_DIMS) {
			d->dims[i] = (uint16_t)t->dims->data[i];
		}
		d->count *= (size_t)t->dims->data[i];
	}
	d->bytes = t->bytes;
	d->scale = t->params.scale;
	d->zero_point = t->params.zero_point;
}

/* A tensor of the flatbuffer (the feature tensor or the logical output) by index. */
[[maybe_unused]] void describe_flat(struct model_tensor *d, int index, uint8_t dtype,
				    size_t elem_size)
{
	const tflite::SubGraph *sg = model->subgraphs()->Get(0);
	const tflite::Tensor *t = sg->tensors()->Get(index);
	const tflite::QuantizationParameters *q = t->quantization();

	d->dtype = dtype;
	d->ndims = (uint8_t)MIN(t->shape()->size(), (unsigned int)MODEL_MAX_DIMS);
	d->count = 1;
	for (unsigned int i = 0; i < t->shape()->size(); i++) {
		if (i < MODEL_MAX_DIMS) {
			d->dims[i] = (uint16_t)t->shape()->Get(i);
		}
		d->count *= (size_t)t->shape()->Get(i);
	}
	d->bytes = d->count * elem_size;
	d->scale = (q != nullptr && q->scale() != nullptr && q->scale()->size() > 0)
			   ? q->scale()->Get(0)
			   : 0.0f;
	d->zero_point = (q != nullptr && q->zero_point() != nullptr && q->zero_point()->size() > 0)
				? (int32_t)q->zero_point()->Get(0)
				: 0;
}

bool matches(const TfLiteTensor *t, int dtype, size_t bytes)
{
	return t != nullptr && (int)t->type == dtype && t->bytes == bytes;
}

#if MODEL_OUTPUT_DEQUANTIZED
/* q = round(f / scale) + zero point: exact, f was scale * (q - zero point) in float. */
void requantize_output(void)
{
	const float *f = output->data.f;

	for (size_t i = 0; i < MODEL_LOGICAL_OUTPUT_ELEMENTS; i++) {
		long q = lroundf(f[i] / MODEL_LOGICAL_OUTPUT_SCALE) +
			 MODEL_LOGICAL_OUTPUT_ZERO_POINT;

#if MODEL_LOGICAL_OUTPUT_DTYPE == 7 /* int16 */
		((int16_t *)logical_output)[i] = (int16_t)CLAMP(q, INT16_MIN, INT16_MAX);
#else
		((int8_t *)logical_output)[i] = (int8_t)CLAMP(q, INT8_MIN, INT8_MAX);
#endif
	}
}
#endif

} /* namespace */

extern "C" int model_init(void)
{
	uint32_t crc = tinyfix_crc32(0, model_data, MODEL_DATA_LEN);

	if (crc != MODEL_DATA_CRC32) {
		/* A corrupted model would make every parameter set's binding meaningless. */
		LOG_ERR("model CRC 0x%08x, expected 0x%08x", crc, MODEL_DATA_CRC32);
		return -EINVAL;
	}
	model = tflite::GetModel(model_data);
	if (model->version() != TFLITE_SCHEMA_VERSION) {
		LOG_ERR("model schema version %d, supported %d", (int)model->version(),
			TFLITE_SCHEMA_VERSION);
		return -EINVAL;
	}
	desc.crc = crc;
	desc.feature_index = -1;

	static Resolver resolver;

	if (register_ops(resolver) != kTfLiteOk) {
		return -ENOTSUP;
	}

#if MODEL_RESOURCE_VARIABLES > 0
	/* Resource variables (VAR_HANDLE) live in the arena: the allocator comes first. */
	tflite::MicroAllocator *allocator = tflite::MicroAllocator::Create(
		tensor_arena, kTensorArenaSize,
		IS_ENABLED(CONFIG_APP_FEATURES_PRESERVE_ALL) ? tflite::MemoryPlannerType::kLinear
							     : tflite::MemoryPlannerType::kGreedy);
	tflite::MicroResourceVariables *variables =
		allocator != nullptr
			? tflite::MicroResourceVariables::Create(allocator, MODEL_RESOURCE_VARIABLES)
			: nullptr;

	if (variables == nullptr) {
		LOG_ERR("arena of %u bytes too small for %d resource variables",
			(unsigned int)kTensorArenaSize, MODEL_RESOURCE_VARIABLES);
		return -ENOMEM;
	}
	static tflite::MicroInterpreter static_interpreter(model, resolver, allocator, variables);
#else
	static tflite::MicroInterpreter static_interpreter(
		model, resolver, tensor_arena, kTensorArenaSize, nullptr, nullptr,
		IS_ENABLED(CONFIG_APP_FEATURES_PRESERVE_ALL));
#endif
	interpreter = &static_interpreter;

	if (interpreter->AllocateTensors() != kTfLiteOk) {
		/* TFLM has printed which op or allocation failed. */
		LOG_ERR("AllocateTensors() failed: arena of %u bytes too small (raise "
			"CONFIG_APP_TENSOR_ARENA_SIZE), or an op missing",
			(unsigned int)kTensorArenaSize);
		return -ENOMEM;
	}
	desc.arena_size = kTensorArenaSize;
	desc.arena_used = interpreter->arena_used_bytes();

	input = interpreter->input(0);
	output = interpreter->output(0);
	if (!matches(input, MODEL_INPUT_DTYPE, MODEL_INPUT_BYTES)) {
		LOG_ERR("input tensor is not the generated one (type %d, %u bytes)",
			MODEL_INPUT_DTYPE, (unsigned int)MODEL_INPUT_BYTES);
		return -EINVAL;
	}
	if (!matches(output, MODEL_OUTPUT_DTYPE, MODEL_OUTPUT_BYTES)) {
		LOG_ERR("output tensor is not the generated one (type %d, %u bytes)",
			MODEL_OUTPUT_DTYPE, (unsigned int)MODEL_OUTPUT_BYTES);
		return -EINVAL;
	}
	describe(&desc.input, input);
#if MODEL_OUTPUT_DEQUANTIZED
	describe_flat(&desc.output, MODEL_LOGICAL_OUTPUT_TENSOR, MODEL_LOGICAL_OUTPUT_DTYPE,
		      MODEL_LOGICAL_OUTPUT_BYTES / MODEL_LOGICAL_OUTPUT_ELEMENTS);
#else
	describe(&desc.output, output);
#endif

	desc.feature_mode = "none";
#if !defined(CONFIG_APP_FEATURES_NONE)
	if (!kFeaturesUsable) {
		if (MODEL_FEATURE_TENSOR >= 0) {
			LOG_WRN("feature vector of %d values unused "
				"(CONFIG_TINYFIX_MAX_FEATURES=%d): "
				"the head stage is unavailable",
				MODEL_FEATURE_ELEMENTS, TINYFIX_MAX_FEATURES);
		}
	} else {
		desc.feature_index = MODEL_FEATURE_TENSOR;
		describe_flat(&desc.feature, MODEL_FEATURE_TENSOR, MODEL_FEATURE_DTYPE, 1);
#if defined(CONFIG_APP_FEATURES_TAP)
		tap_on = true;
		desc.feature_mode = "tap";
#else
		desc.feature_mode = "preserve-all";
#endif
	}
#endif
	return 0;
}

extern "C" const struct model_desc *model_desc(void)
{
	return &desc;
}

extern "C" uint8_t *model_input_buffer(void)
{
	return input != nullptr ? input->data.uint8 : nullptr;
}

extern "C" int model_invoke(const uint8_t *in, const uint8_t **raw, const int8_t **features,
			    uint32_t *cycles)
{
	if (interpreter == nullptr) {
		return -ENODEV;
	}
	if (in != input->data.uint8) {
		memcpy(input->data.uint8, in, MODEL_INPUT_BYTES);
	}

	uint32_t start = app_cycles();
	TfLiteStatus status = interpreter->Invoke();
	uint32_t spent = app_cycles() - start;

	if (status != kTfLiteOk) {
		LOG_ERR("Invoke() failed (%d)", (int)status);
		return -EIO;
	}
	if (cycles != nullptr) {
		*cycles = spent;
	}
#if MODEL_OUTPUT_DEQUANTIZED
	requantize_output();
	*raw = logical_output;
#else
	*raw = output->data.uint8;
#endif
	if (features != nullptr) {
		*features = nullptr;
		if (desc.feature_index >= 0) {
#if defined(CONFIG_APP_FEATURES_TAP)
			*features = tap_buf;
#elif defined(CONFIG_APP_FEATURES_PRESERVE_ALL)
			const TfLiteEvalTensor *t = interpreter->GetTensor(desc.feature_index);

			if (t == nullptr) {
				return -EIO;
			}
			*features = t->data.int8;
#endif
		}
	}
	return 0;
}

extern "C" int model_reset(void)
{
	if (interpreter == nullptr) {
		return -ENODEV;
	}
	/* Variable tensors to their zero point, resource variables to their defaults. */
	return interpreter->Reset() == kTfLiteOk ? 0 : -EIO;
}

extern "C" int model_run(const int8_t *in, int8_t *raw, int8_t *features, uint32_t *cycles)
{
	const uint8_t *out = nullptr;
	const int8_t *feats = nullptr;
	int err = model_invoke((const uint8_t *)in, &out, features != nullptr ? &feats : nullptr,
			       cycles);

	if (err != 0) {
		return err;
	}
	memcpy(raw, out, desc.output.bytes);
	if (features != nullptr && feats != nullptr) {
		memcpy(features, feats, desc.feature.count);
	}
	return 0;
}
