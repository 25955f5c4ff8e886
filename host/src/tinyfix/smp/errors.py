# SPDX-License-Identifier: Apache-2.0
"""Errors of the SMP client: the device refused (a group code) or could not be reached."""

from __future__ import annotations

from tinyfix.errors import TinyfixError

# enum tinyfix_smp_rc (modules/tinyfix/include/tinyfix/smp.h).
GROUP_RC = {
    1: "unknown error",
    2: "bad request (a field missing or of the wrong type)",
    3: "too large for the device",
    4: "another upload in progress: start again at offset 0",
    5: "no capture was started",
    6: "not supported by this build",
    7: "offset past the end",
}
RC_CORE = 16
# TINYFIX_ERR_* (modules/tinyfix/include/tinyfix/tinyfix.h), for a set the core refused.
CORE_ERRORS = {
    1: "bad argument", 2: "parameter format version not supported",
    3: "parameter set's own CRC does not match", 4: "fitted for another model (model CRC)",
    5: "class, channel or feature count differs from the model",
    6: "a parameter outside its documented range", 7: "larger than this build's capacity",
    9: "parameter blob truncated or malformed", 10: "a stage this build does not have",
}


def describe_rc(rc: int) -> str:
    """What a TinyFix group return code means."""
    if rc >= RC_CORE:
        return f"refused by the core: {CORE_ERRORS.get(rc - RC_CORE, f'error -{rc - RC_CORE}')}"
    return GROUP_RC.get(rc, f"group error {rc}")


class SmpError(TinyfixError):
    """Any failure of an SMP exchange."""


class SmpTransportError(SmpError):
    """The device could not be reached, or did not answer in time."""


class SmpGroupError(SmpError):
    """The device answered with an error: a TinyFix group code, or MCUmgr's own (group None)."""

    def __init__(self, rc: int, text: str, group: int | None = None) -> None:
        self.rc = rc
        self.group = group
        self.text = text
        super().__init__(f"device refused: {text} (rc {rc})")
