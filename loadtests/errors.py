"""Errors a user can fix, and the one place that turns them into an exit code.

Every command's ``main(argv) -> int`` runs through :func:`run_main`: a user's mistake (a flag, a path, a
file of another version, a child process that will not start, a full disk) is one ``error:`` line and exit 2,
never a traceback; Ctrl-C is exit 130.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

# Writes that fail because of where they go, not of what the harness does: one line and exit 2.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


class UserError(Exception):
    """Bad input from the user (a flag, a path, a busy port): the message says what to do."""


class ProcessStartError(RuntimeError):
    """A child process exited or never became ready; the message names it and its log file."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that fails with one line naming the command's --help, not a usage block."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see {self.prog} --help)")


def run_main(command: Callable[[list[str]], int], argv: Sequence[str]) -> int:
    """Run one command's ``main``: a user's mistake is one ``error:`` line and exit 2, never a traceback."""
    try:
        return command(list(argv))
    except (UserError, ProcessStartError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in DISK_ERRNOS:
            raise
        # A full disk is the machine's state, not a measured failure (1) nor a bug (a traceback).
        where = f" ({exc.filename})" if exc.filename else ""
        print(
            f"error: cannot write the results: {exc.strerror}{where}; free space on that disk or choose "
            "another --out, then run again",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... --help | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
