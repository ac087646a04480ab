"""The package's exception root.

Every exception tracelang raises on purpose derives from `TracelangError`, so that the command line
can catch them in one place (one `error: ...` line on stderr, exit status 2, no traceback). A class
may keep a builtin base as well (``class ConfigError(UsageError, ValueError)``) where callers catch
it as that builtin, e.g. pydantic turns a ValueError from a validator into a validation error.
"""

from __future__ import annotations


class TracelangError(Exception):
    """A failure tracelang knows how to describe in one line."""


class UsageError(TracelangError):
    """A mistake by the user: a bad flag, input file, recipe or model path. The message says what
    was wrong and, where it helps, what to do instead."""
