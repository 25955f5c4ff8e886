# SPDX-License-Identifier: Apache-2.0
"""The TinyFix MCUmgr group from the host: SMP through smpclient (serial, UDP, BLE).

`group` defines the group's messages for smpclient, `client` a blocking device handle over
them, `url` the `--smp` addresses. The device side is modules/tinyfix/src/smp/tinyfix_smp.c;
the commands are in docs/smp-group.md.
"""
