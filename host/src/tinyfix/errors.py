# SPDX-License-Identifier: Apache-2.0
"""The one exception family the command line turns into a single `error:` line."""


class TinyfixError(Exception):
    """Base of every error TinyFix reports to a user; `exit_code` is the process exit status."""

    exit_code = 1


class CoreError(TinyfixError):
    """The C core refused something; `code` is its stable TINYFIX_ERR_* value."""

    def __init__(self, code: int, what: str, text: str) -> None:
        super().__init__(f"{what}: {text} ({code})")
        self.code = code
