"""Errors a user can fix: printed as one line, never as a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (a flag, a path, a busy port): the message says what to do."""
