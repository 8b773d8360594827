"""Errors a user can fix: printed as one line, never as a traceback."""

from __future__ import annotations

import argparse
from typing import NoReturn


class UserError(Exception):
    """Bad input from the user (a flag, a path, a busy port): the message says what to do."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that fails with one line naming the command's --help, not a usage block."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see {self.prog} --help)")
