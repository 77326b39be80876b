"""The one secret reader: a token or password from the environment variable or file the configuration names.

Secrets never come from the configuration file itself, only their whereabouts (``token_env``,
``token_file``, ``password_env``, ``password_file``). ``read_secret`` tries the variable, then the
file, and strips the value; when it finds nothing it raises ``SecretUnavailable`` saying what went
wrong (never quoting a file's content: it may be the secret). Its callers say it in their own
words: the historian and the feed as ``HistorianError``/``SourceError`` text, the feeds endpoint as
a ``ConfigError`` naming the key.

Secrets are read when the connection that needs them is opened, not when the configuration is
loaded: a configuration naming an unset variable loads (``twin check``, the dashboard reading a
SQLite store), and only the command that connects fails, with the reason.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path

__all__ = ["SecretProblem", "SecretUnavailable", "read_secret"]


class SecretProblem(enum.Enum):
    """Why no secret was found."""

    MISSING = "missing"  # the variable is unset or empty and the file (if any) is empty
    UNREADABLE = "unreadable"  # the file cannot be opened or read
    NOT_TEXT = "not text"  # the file is not UTF-8
    TOO_LARGE = "too large"  # the file is over max_bytes


class SecretUnavailable(Exception):
    """No secret found: ``problem`` says why; ``strerror`` is the OS's reason for ``UNREADABLE``."""

    def __init__(self, problem: SecretProblem, strerror: str = "") -> None:
        super().__init__(problem.value)
        self.problem, self.strerror = problem, strerror


def read_secret(env: str | None, file: str | Path | None, *, max_bytes: int | None = None) -> str:
    """The secret in the environment variable ``env`` or else in ``file``, stripped; ``SecretUnavailable`` if none."""
    if env:
        value = os.environ.get(env, "").strip()
        if value:
            return value
    if file:
        try:
            with Path(file).open("rb") as f:
                data = f.read() if max_bytes is None else f.read(max_bytes + 1)
        except OSError as exc:
            raise SecretUnavailable(SecretProblem.UNREADABLE, str(exc.strerror)) from exc
        if max_bytes is not None and len(data) > max_bytes:
            raise SecretUnavailable(SecretProblem.TOO_LARGE)
        try:
            value = data.decode("utf-8").strip()
        except UnicodeDecodeError:  # never quote the content: it may be a secret
            raise SecretUnavailable(SecretProblem.NOT_TEXT) from None
        if value:
            return value
    raise SecretUnavailable(SecretProblem.MISSING)
