/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test-only power cut of the settings store on native_sim (CONFIG_APP_TEST_POWER_CUT):
 * see power_cut.c.
 */

#ifndef APP_POWER_CUT_H_
#define APP_POWER_CUT_H_

/*
 * Puts the counting flash device in front of the settings store's NVS. Call after the
 * boot's settings load; the steps (and --power_cut_at=N) count from here.
 */
int power_cut_arm(void);

#endif /* APP_POWER_CUT_H_ */
