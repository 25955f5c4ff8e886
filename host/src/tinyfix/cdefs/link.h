/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cffi cdef for modules/tinyfix/include/tinyfix/link.h, the device-side request dispatcher.
 * struct tinyfix_link is sized by the compiler ("...;"): Python only passes it around.
 * The extern "Python" functions are the platform callbacks the twin and the tests supply
 * (tinyfix.twin.dispatcher attaches them with ffi.def_extern); cffi generates their C side.
 */

#define TINYFIX_LINK_MAX_FEATURES ...
#define TINYFIX_LINK_ERR_WIRE_MAX ...

struct tinyfix_link_ops {
	void (*write)(void *user, const uint8_t *data, size_t len);
	void (*info)(void *user, struct tinyfix_wire_info *info);
	int (*invoke)(void *user, const uint8_t *input, size_t len, const uint8_t **raw,
		      const int8_t **features, uint32_t *cycles);
	uint8_t *(*input_buffer)(void *user);
	int (*capture)(void *user, uint8_t dtype, void *values, size_t cap, uint16_t *n_values,
		       uint32_t *t_ms);
	int (*persist)(void *user, const uint8_t *blob, size_t len);
	uint32_t (*cycles)(void *user);
	uint32_t (*uptime_ms)(void *user);
	int (*reset_model)(void *user);
};

struct tinyfix_link_buffers {
	uint8_t *params;
	size_t params_size;
	uint8_t *recon;
	size_t recon_size;
	uint8_t *rx;
	size_t rx_size;
	uint8_t *tx;
	size_t tx_size;
	uint8_t *scratch;
	size_t scratch_size;
};

struct tinyfix_link {
	uint32_t inferences;
	uint32_t replays;
	...;
};

int tinyfix_link_init(struct tinyfix_link *link, struct tinyfix_ctx *ctx,
		      const struct tinyfix_link_ops *ops, void *user,
		      const struct tinyfix_link_buffers *bufs);
int tinyfix_link_feed(struct tinyfix_link *link, const uint8_t *data, size_t len);
void tinyfix_link_stats(const struct tinyfix_link *link, struct tinyfix_wire_stats *stats);
void tinyfix_link_forget(struct tinyfix_link *link);
void tinyfix_link_input_clobbered(struct tinyfix_link *link);
bool tinyfix_link_input_pending(const struct tinyfix_link *link);

extern "Python" void tinyfix_py_link_write(void *user, const uint8_t *data, size_t len);
extern "Python" void tinyfix_py_link_info(void *user, struct tinyfix_wire_info *info);
extern "Python" int tinyfix_py_link_invoke(void *user, const uint8_t *input, size_t len,
					   const uint8_t **raw, const int8_t **features,
					   uint32_t *cycles);
extern "Python" uint8_t *tinyfix_py_link_input_buffer(void *user);
extern "Python" int tinyfix_py_link_capture(void *user, uint8_t dtype, void *values, size_t cap,
					    uint16_t *n_values, uint32_t *t_ms);
extern "Python" int tinyfix_py_link_persist(void *user, const uint8_t *blob, size_t len);
extern "Python" uint32_t tinyfix_py_link_cycles(void *user);
extern "Python" uint32_t tinyfix_py_link_uptime_ms(void *user);
extern "Python" int tinyfix_py_link_reset_model(void *user);
