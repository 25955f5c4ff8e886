# SPDX-License-Identifier: Apache-2.0
"""The one exception family the command line turns into a single `error:` line."""

import sys
from collections.abc import Callable


class TinyfixError(Exception):
    """Base of every error TinyFix reports to a user; `exit_code` is the process exit status."""

    exit_code = 1


class CoreError(TinyfixError):
    """The C core refused something; `code` is its stable TINYFIX_ERR_* value."""

    def __init__(self, code: int, what: str, text: str) -> None:
        super().__init__(f"{what}: {text} ({code})")
        self.code = code


def run_command(command: Callable[[], int], debug: bool) -> int:
    """Run a command-line entry point: a TinyfixError becomes one `error:` line and its exit
    code (a traceback only with `debug`), Ctrl-C exits 130, a closed pipe exits 1."""
    try:
        return int(command())
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except TinyfixError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        return 1
