"""``[feeds]``: where open orders and inbound shipments enter the twin (file drop, HTTP endpoint).

::

    [feeds]
    drop_dir = "../var/feeds/in"     # watched folder (relative to the configuration file)
    poll_s = 5                       # how often the folder is listed
    ledger = "../var/feeds.db"       # default: feeds.db beside the historian file
    rejects_log = "../var/feeds/in-rejects.jsonl"   # default: DROP_DIR-rejects.jsonl beside the folder
    quarantine_dir = "../var/feeds/quarantine"      # default: DROP_DIR/quarantine
    max_file_mb = 64                 # a larger file is quarantined unread (1..4096)
    max_line_kb = 64                 # a longer line is rejected by itself (1..1024)

    [feeds.http]
    listen = "127.0.0.1:8081"
    token_env = "TWIN_FEEDS_TOKEN"   # or token_file = "secrets/feeds.token"; never the token itself
    max_body_kb = 1024

At least one of ``drop_dir`` and ``[feeds.http]`` must be given. Paths are resolved against the
configuration file's folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

from connectors.config.secrets import SecretProblem, SecretUnavailable, read_secret
from twin.errors import ConfigError, Problem
from twin.spec import FleetSpec

__all__ = ["FeedsConfig", "FeedsHttpConfig", "FeedsHttpModel", "FeedsModel", "convert_feeds", "read_token"]

_MAX_TOKEN_FILE = 64 * 1024  # a token is one line
_Positive = Annotated[float, Strict(), Field(gt=0, le=86400, allow_inf_nan=False)]


class FeedsHttpModel(BaseModel):
    """``[feeds.http]`` as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    listen: str = "127.0.0.1:8081"
    token_env: str | None = Field(default=None, min_length=1)
    token_file: str | None = Field(default=None, min_length=1)
    max_body_kb: Annotated[int, Strict(), Field(ge=1, le=100 * 1024)] = 1024
    token: str | None = Field(default=None, description="refused: tokens never come from the config")

    @model_validator(mode="after")
    def _check_token(self) -> Self:
        if self.token is not None:
            raise ValueError("token: the feed token is never read from the configuration file; "
                             "name an environment variable with token_env or a file with token_file")
        if not (self.token_env or self.token_file):
            raise ValueError("needs token_env or token_file (where the bearer token is read from)")
        if self.token_env and self.token_file:
            raise ValueError("give token_env or token_file, not both")
        return self


class FeedsModel(BaseModel):
    """``[feeds]`` as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    drop_dir: str | None = Field(default=None, min_length=1)
    poll_s: _Positive = 5.0
    ledger: str | None = Field(default=None, min_length=1)
    rejects_log: str | None = Field(default=None, min_length=1)
    quarantine_dir: str | None = Field(default=None, min_length=1)
    max_file_mb: Annotated[int, Strict(), Field(ge=1, le=4096)] = 64
    max_line_kb: Annotated[int, Strict(), Field(ge=1, le=1024)] = 64
    http: FeedsHttpModel | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedsHttpConfig:
    """The validated ``[feeds.http]``: where the endpoint listens and where its token is read from."""

    host: str
    port: int
    max_body_bytes: int
    token_env: str | None = None
    token_file: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedsConfig:
    """The validated ``[feeds]`` section; paths resolved against the configuration file's folder.

    ``ledger`` None means ``feeds.db`` beside the historian file (see :meth:`ledger_path`).
    """

    drop_dir: Path | None = None
    poll_s: float = 5.0
    ledger: Path | None = None
    rejects_log: Path | None = None
    quarantine_dir: Path | None = None  # None: DROP_DIR/quarantine
    max_file_bytes: int = 64 * 1024 * 1024
    max_line_bytes: int = 64 * 1024
    http: FeedsHttpConfig | None = None

    def ledger_path(self, historian_path: Path) -> Path:
        return self.ledger if self.ledger is not None else historian_path.parent / "feeds.db"


def _listen(text: str, path: str, problems: list[Problem]) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        problems.append(Problem(path=path,
                                message="expected HOST:PORT with a port 1..65535, e.g. 127.0.0.1:8081",
                                got=text))
        return "127.0.0.1", 0
    return host, int(port_text)


def convert_feeds(model: FeedsModel | None, src: Path, fleet: FleetSpec,
                  problems: list[Problem]) -> FeedsConfig | None:
    """Check ``[feeds]`` and resolve its paths; problems go to ``problems``.

    The records themselves (sites, products, SKUs) are checked against ``fleet`` when they arrive.
    """
    del fleet
    if model is None:
        return None
    base = src.parent if src.name != "<string>" else Path.cwd()

    def resolve(p: str | None) -> Path | None:
        return Path(os.path.normpath(base / p)) if p else None

    if model.drop_dir is None and model.http is None:
        problems.append(Problem(path="feeds",
                                message="give drop_dir, [feeds.http] or both (nothing to receive)",
                                has_got=False))
    http = None
    if model.http is not None:
        host, port = _listen(model.http.listen, "feeds.http.listen", problems)
        http = FeedsHttpConfig(host=host, port=port, max_body_bytes=model.http.max_body_kb * 1024,
                               token_env=model.http.token_env, token_file=resolve(model.http.token_file))
    drop_dir = resolve(model.drop_dir)
    ledger = resolve(model.ledger)
    if drop_dir is not None and ledger is not None and ledger.parent == drop_dir:
        problems.append(Problem(path="feeds.ledger",
                                message="the ledger cannot live inside the watched drop_dir",
                                got=model.ledger))
    quarantine = resolve(model.quarantine_dir)
    if drop_dir is not None and quarantine is not None and quarantine == drop_dir:
        problems.append(Problem(path="feeds.quarantine_dir",
                                message="the quarantine cannot be the watched drop_dir itself",
                                got=model.quarantine_dir))
    return FeedsConfig(drop_dir=drop_dir, poll_s=model.poll_s, ledger=ledger,
                       rejects_log=resolve(model.rejects_log), quarantine_dir=quarantine,
                       max_file_bytes=model.max_file_mb * 1024 * 1024, max_line_bytes=model.max_line_kb * 1024,
                       http=http)


def read_token(http: FeedsHttpConfig, source: str) -> str:
    """The endpoint's bearer token, from the environment variable or file the config names.

    Raises ``ConfigError`` (naming the key, never showing the token) when it is missing or empty.
    """
    try:
        return read_secret(http.token_env, http.token_file, max_bytes=_MAX_TOKEN_FILE)
    except SecretUnavailable as exc:
        if http.token_env:
            problem = Problem(path="feeds.http.token_env", message="environment variable is not set or empty",
                              got=http.token_env)
        else:
            message = {SecretProblem.TOO_LARGE: f"over {_MAX_TOKEN_FILE // 1024} KiB: not a token file",
                       SecretProblem.UNREADABLE: f"cannot read: {exc.strerror}",
                       SecretProblem.NOT_TEXT: "not UTF-8 text",
                       SecretProblem.MISSING: "file is empty"}[exc.problem]
            problem = Problem(path="feeds.http.token_file", message=message, got=str(http.token_file))
        raise ConfigError(source, [problem]) from (exc if exc.problem is SecretProblem.UNREADABLE else None)
