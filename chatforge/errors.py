"""Errors meant for people.

A `UserError` is a mistake the user can fix (bad input file, bad flag, missing
directory). The CLI prints it as one line, `chatforge: error: <message>`, and exits
with status 2, without a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input; printed as one line, exit status 2."""


class ConfigError(UserError):
    """An invalid configuration value; the message names the field (and file:line)."""


class DataError(UserError):
    """Bad input data; the message names the file and line."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None):
        self.file = file
        self.line = line
        self.reason = message
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        super().__init__(where + message)
