/* SPDX-License-Identifier: Apache-2.0 */
/* The test's one-record RAM settings back-end (settings_ram.c). */

#ifndef SETTINGS_RAM_H_
#define SETTINGS_RAM_H_

#include <stddef.h>
#include <stdint.h>

#define SETTINGS_RAM_MAX 1024

/** The stored value, writable so a test can corrupt it; NULL if nothing is stored. */
uint8_t *settings_ram_value(size_t *len);
/** The stored key, or NULL. */
const char *settings_ram_name(void);
/** Forget the record. */
void settings_ram_clear(void);

#endif /* SETTINGS_RAM_H_ */
