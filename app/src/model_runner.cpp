/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TFLM interpreter for the demo model, after TFLM's micro_speech main_functions.cc:
 * every status is checked, the input and output tensors are checked against what the
 * application feeds and reads, the op resolver holds only the model's ops, and the arena is
 * a named static array. The only C++ in the application.
 *
 * The penultimate features (the int8 input of the final FULLY_CONNECTED, what a last-layer
 * re-fit reads) are normally gone after Invoke(): TFLM reuses intermediate tensors' memory.
 * Two ways keep them readable (CONFIG_APP_FEATURES_*):
 *  - tap (default): FULLY_CONNECTED is registered with a wrapped invoke that copies that
 *    kernel's input into a static buffer when the node is the model's final layer. No
 *    arena bytes, one copy of the vector per inference, works with CMSIS-NN kernels too.
 *  - preserve-all: TFLM's preserve_all_tensors mode; GetTensor() reads it after Invoke().
 *    Every intermediate tensor keeps its own memory, which costs arena bytes.
 * A third way, rewriting the model so the features are a second output, changes the
 * flatbuffer and so its CRC, which every parameter set is bound to; it is not used.
 */

#include <errno.h>
#include <string.h>

#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>

#include <tensorflow/compiler/mlir/lite/schema/schema_utils.h>
#include <tensorflow/lite/micro/kernels/fully_connected.h>
#include <tensorflow/lite/micro/kernels/kernel_util.h>
#include <tensorflow/lite/micro/micro_interpreter.h>
#include <tensorflow/lite/micro/micro_mutable_op_resolver.h>
#include <tensorflow/lite/schema/schema_generated.h>

#include <tinyfix/tinyfix.h>

#include "cycles.h"
#include "gesture_model_data.h"
#include "model_runner.h"

LOG_MODULE_REGISTER(model, CONFIG_APP_LOG_LEVEL);

namespace {

/* What the application feeds and reads: 64 samples x 3 axes in, 6 class logits out. */
constexpr int kWindowFrames = 64;
constexpr int kChannels = 3;
constexpr int kClasses = 6;
/*
 * Largest feature vector kept: what the tinyfix core was sized for (the demo model's is 24);
 * a longer one is of no use to the head stage, so the model then reports none.
 */
constexpr size_t kMaxFeatures = TINYFIX_MAX_FEATURES > 0 ? TINYFIX_MAX_FEATURES : 1;

/*
 * Tensor arena. The demo model needs about 3.5 KB with reference kernels on a 64-bit host;
 * CMSIS-NN asks for scratch buffers and 32-bit targets have smaller bookkeeping, so the
 * size is a Kconfig option and model_init() logs what was really used.
 */
constexpr size_t kTensorArenaSize = CONFIG_APP_TENSOR_ARENA_SIZE;
alignas(16) uint8_t tensor_arena[kTensorArenaSize];

/* RESHAPE, CONV_2D, MAX_POOL_2D, FULLY_CONNECTED: the ops of the demo model, no more. */
constexpr int kNumOps = 4;

const tflite::Model *model;
tflite::MicroInterpreter *interpreter;
TfLiteTensor *input;
TfLiteTensor *output;
struct model_desc desc;

#if defined(CONFIG_APP_FEATURES_TAP)
TFLMRegistration fc_kernel;
int tap_tensor_index = -1;
size_t tap_len;
int8_t tap_buf[kMaxFeatures];

/* Never log or fail here beyond the wrapped kernel: it runs inside Invoke(). */
TfLiteStatus fc_tap_invoke(TfLiteContext *context, TfLiteNode *node)
{
	TfLiteStatus status = fc_kernel.invoke(context, node);

	if (status == kTfLiteOk && node->inputs->data[0] == tap_tensor_index) {
		const TfLiteEvalTensor *in = tflite::micro::GetEvalInput(context, node, 0);

		memcpy(tap_buf, in->data.int8, tap_len);
	}
	return status;
}
#endif

bool shape_is(const TfLiteTensor *t, int d0, int d1, int d2)
{
	const int want[] = {d0, d1, d2};
	int n = d2 > 0 ? 3 : 2;

	if (t->dims->size != n) {
		return false;
	}
	for (int i = 0; i < n; i++) {
		if (t->dims->data[i] != want[i]) {
			return false;
		}
	}
	return true;
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
	d->scale = t->params.scale;
	d->zero_point = t->params.zero_point;
}

/*
 * The feature tensor: input 0 of the final FULLY_CONNECTED (before an optional SOFTMAX),
 * found in the flatbuffer, as the host tool finds it. -1 when the graph ends otherwise.
 */
int find_feature_tensor(const tflite::Model *m, struct model_tensor *d)
{
	const tflite::SubGraph *sg = m->subgraphs()->Get(0);
	const auto *ops = sg->operators();
	const auto *codes = m->operator_codes();
	int at = (int)ops->size() - 1;

	if (at >= 0 &&
	    tflite::GetBuiltinCode(codes->Get(ops->Get(at)->opcode_index())) ==
		    tflite::BuiltinOperator_SOFTMAX) {
		at--;
	}
	if (at < 0 || tflite::GetBuiltinCode(codes->Get(ops->Get(at)->opcode_index())) !=
			      tflite::BuiltinOperator_FULLY_CONNECTED) {
		return -1;
	}
	int index = ops->Get(at)->inputs()->Get(0);
	const tflite::Tensor *t = sg->tensors()->Get(index);
	const tflite::QuantizationParameters *q = t->quantization();

	if (t->type() != tflite::TensorType_INT8 || q == nullptr || q->scale() == nullptr ||
	    q->scale()->size() != 1 || q->zero_point() == nullptr ||
	    q->zero_point()->size() != 1) {
		return -1;
	}
	d->dtype = (uint8_t)kTfLiteInt8;
	d->ndims = (uint8_t)MIN(t->shape()->size(), (unsigned int)MODEL_MAX_DIMS);
	d->count = 1;
	for (unsigned int i = 0; i < t->shape()->size(); i++) {
		if (i < MODEL_MAX_DIMS) {
			d->dims[i] = (uint16_t)t->shape()->Get(i);
		}
		d->count *= (size_t)t->shape()->Get(i);
	}
	d->scale = q->scale()->Get(0);
	d->zero_point = (int32_t)q->zero_point()->Get(0);
	return index;
}

} /* namespace */

extern "C" int model_init(void)
{
	uint32_t crc = tinyfix_crc32(0, gesture_model_data, GESTURE_MODEL_DATA_LEN);

	if (crc != GESTURE_MODEL_DATA_CRC32) {
		/* A corrupted model would make every parameter set's binding meaningless. */
		LOG_ERR("model CRC 0x%08x, expected 0x%08x", crc, GESTURE_MODEL_DATA_CRC32);
		return -EINVAL;
	}
	model = tflite::GetModel(gesture_model_data);
	if (model->version() != TFLITE_SCHEMA_VERSION) {
		LOG_ERR("model schema version %d, supported %d", (int)model->version(),
			TFLITE_SCHEMA_VERSION);
		return -EINVAL;
	}
	desc.crc = crc;
	desc.feature_index = -1;

	static tflite::MicroMutableOpResolver<kNumOps> resolver;
	TfLiteStatus status = resolver.AddReshape();

	if (status == kTfLiteOk) {
		status = resolver.AddConv2D();
	}
	if (status == kTfLiteOk) {
		status = resolver.AddMaxPool2D();
	}
#if defined(CONFIG_APP_FEATURES_TAP)
	fc_kernel = tflite::Register_FULLY_CONNECTED();
	TFLMRegistration tapped = fc_kernel;

	tapped.invoke = fc_tap_invoke;
	if (status == kTfLiteOk) {
		status = resolver.AddFullyConnected(tapped);
	}
#else
	if (status == kTfLiteOk) {
		status = resolver.AddFullyConnected();
	}
#endif
	if (status != kTfLiteOk) {
		LOG_ERR("op resolver full");
		return -ENOTSUP;
	}

	static tflite::MicroInterpreter static_interpreter(
		model, resolver, tensor_arena, kTensorArenaSize, nullptr, nullptr,
		IS_ENABLED(CONFIG_APP_FEATURES_PRESERVE_ALL));
	interpreter = &static_interpreter;

	if (interpreter->AllocateTensors() != kTfLiteOk) {
		/* TFLM has printed which op or allocation failed. */
		LOG_ERR("AllocateTensors() failed: arena of %u bytes too small, or an op missing",
			(unsigned int)kTensorArenaSize);
		return -ENOMEM;
	}
	desc.arena_size = kTensorArenaSize;
	desc.arena_used = interpreter->arena_used_bytes();

	input = interpreter->input(0);
	output = interpreter->output(0);
	if (input == nullptr || input->type != kTfLiteInt8 ||
	    !shape_is(input, 1, kWindowFrames, kChannels)) {
		LOG_ERR("input tensor is not int8 [1, %d, %d]", kWindowFrames, kChannels);
		return -EINVAL;
	}
	if (output == nullptr || output->type != kTfLiteInt8 || !shape_is(output, 1, kClasses, 0)) {
		LOG_ERR("output tensor is not int8 [1, %d]", kClasses);
		return -EINVAL;
	}
	describe(&desc.input, input);
	describe(&desc.output, output);

	desc.feature_mode = "none";
#if !defined(CONFIG_APP_FEATURES_NONE)
	desc.feature_index = find_feature_tensor(model, &desc.feature);
	if (desc.feature_index < 0 || TINYFIX_MAX_FEATURES == 0 ||
	    desc.feature.count > kMaxFeatures) {
		LOG_WRN("no usable penultimate feature tensor (CONFIG_TINYFIX_MAX_FEATURES=%d); "
			"the head stage is unavailable",
			TINYFIX_MAX_FEATURES);
		desc.feature_index = -1;
		memset(&desc.feature, 0, sizeof(desc.feature));
	} else {
#if defined(CONFIG_APP_FEATURES_TAP)
		tap_tensor_index = desc.feature_index;
		tap_len = desc.feature.count;
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

extern "C" int model_run(const int8_t *in, int8_t *raw, int8_t *features, uint32_t *cycles)
{
	if (interpreter == nullptr) {
		return -ENODEV;
	}
	memcpy(input->data.int8, in, desc.input.count);

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
	memcpy(raw, output->data.int8, desc.output.count);
	if (features != nullptr && desc.feature_index >= 0) {
#if defined(CONFIG_APP_FEATURES_TAP)
		memcpy(features, tap_buf, desc.feature.count);
#elif defined(CONFIG_APP_FEATURES_PRESERVE_ALL)
		const TfLiteEvalTensor *t = interpreter->GetTensor(desc.feature_index);

		if (t == nullptr) {
			return -EIO;
		}
		memcpy(features, t->data.int8, desc.feature.count);
#endif
	}
	return 0;
}
