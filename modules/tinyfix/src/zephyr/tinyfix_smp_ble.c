/*
 * Copyright (c) 2026 TinyFix
 * SPDX-License-Identifier: Apache-2.0
 *
 * Makes the TinyFix MCUmgr group reachable over Bluetooth LE: enables Bluetooth and
 * advertises MCUmgr's SMP service, connectable, under CONFIG_BT_DEVICE_NAME, again after
 * every disconnection. MCUmgr's BT transport (CONFIG_MCUMGR_TRANSPORT_BT) serves the GATT
 * characteristic; it does not advertise by itself. nRF Connect Device Manager and
 * `tinyfix info --smp ble://NAME` find the device by that name.
 */

#include <zephyr/bluetooth/bluetooth.h>
#include <zephyr/bluetooth/conn.h>
#include <zephyr/bluetooth/hci.h>
#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <zephyr/mgmt/mcumgr/mgmt/handlers.h>
#include <zephyr/mgmt/mcumgr/transport/smp_bt.h>

LOG_MODULE_REGISTER(tinyfix_smp_ble, CONFIG_TINYFIX_LOG_LEVEL);

static const struct bt_data advert[] = {
	BT_DATA_BYTES(BT_DATA_FLAGS, (BT_LE_AD_GENERAL | BT_LE_AD_NO_BREDR)),
	BT_DATA_BYTES(BT_DATA_UUID128_ALL, SMP_BT_SVC_UUID_VAL),
};

static const struct bt_data scan_response[] = {
	BT_DATA(BT_DATA_NAME_COMPLETE, CONFIG_BT_DEVICE_NAME, sizeof(CONFIG_BT_DEVICE_NAME) - 1),
};

static struct k_work advertise_work;

static void advertise(struct k_work *work)
{
	int rc;

	ARG_UNUSED(work);
	rc = bt_le_adv_start(BT_LE_ADV_CONN_FAST_1, advert, ARRAY_SIZE(advert), scan_response,
			     ARRAY_SIZE(scan_response));
	if (rc != 0) {
		LOG_ERR("SMP/BLE advertising not started: %d", rc);
		return;
	}
	LOG_INF("SMP over BLE, advertising as \"%s\"", CONFIG_BT_DEVICE_NAME);
}

static void connected(struct bt_conn *conn, uint8_t err)
{
	ARG_UNUSED(conn);
	if (err != 0U) {
		LOG_WRN("SMP/BLE connection failed: 0x%02x", err);
		k_work_submit(&advertise_work);
	}
}

/* A connection's object is free again: advertise for the next client. */
static void recycled(void)
{
	k_work_submit(&advertise_work);
}

BT_CONN_CB_DEFINE(tinyfix_smp_ble_conn) = {
	.connected = connected,
	.recycled = recycled,
};

static void bluetooth_ready(int err)
{
	if (err != 0) {
		LOG_ERR("Bluetooth not enabled: %d", err);
		return;
	}
	k_work_submit(&advertise_work);
}

static void tinyfix_smp_ble_start(void)
{
	int rc;

	k_work_init(&advertise_work, advertise);
	rc = bt_enable(bluetooth_ready);
	if (rc == -EALREADY) {
		/* The application enabled Bluetooth first: no ready callback comes. */
		k_work_submit(&advertise_work);
	} else if (rc != 0) {
		LOG_ERR("Bluetooth not enabled: %d", rc);
	}
}

MCUMGR_HANDLER_DEFINE(tinyfix_smp_ble, tinyfix_smp_ble_start);
