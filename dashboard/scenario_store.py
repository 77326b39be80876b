"""The what-if page's server-side folders: saved scenarios (name, author, time) and finished runs.

One job: the dashboard's own user content on disk, beside the history (never in it). A saved
scenario is the same TOML file "Save TOML" exports (``dashboard.scenarios.scenario_to_toml``, so
``twin whatif CONFIG --scenario FILE`` runs a file of the folder as it is), with two ``#% `` comment
lines for who saved it and when (the engine and the page's loader ignore them). A finished run is
one JSON file (``WhatIfResult.to_dict`` with its request), linked as ``/whatif?result=ID``.

Both are bounded: names validated (no path characters), files at most ``max_bytes``, at most
``max_count`` of them (runs also at most ``max_age_s`` old: the oldest go first). Every write goes to
a temporary file in the same folder and is renamed over the old one (atomic: a reader sees the old
file or the new one, never half of one).

    >>> store = ScenarioStore(Path("var/scenarios"))                      # doctest: +SKIP
    >>> store.save("P3 maintenance", toml_text, author="alice", at=now)   # doctest: +SKIP
    >>> [s.name for s in store.list()]                                    # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from twin.errors import ConfigError, Problem
from twin.tomltext import loads_toml

__all__ = ["ResultStore", "SavedScenario", "ScenarioStore", "check_name", "whatif_folder"]

META_PREFIX = "#% "
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.,()+=-]{0,79}")
RESULT_ID = re.compile(r"[0-9a-f]{16}")


def whatif_folder(historian: object, extra: dict[str, Any] | None = None) -> Path:
    """Where the what-if page keeps its files: ``extra['whatif_dir']``, else ``whatif/`` beside the history file.

    A historian without a file (InfluxDB) gets a folder in the temporary directory (lost at reboot).
    """
    given = (extra or {}).get("whatif_dir")
    if given:
        return Path(given)
    path = getattr(historian, "path", None)
    if isinstance(path, Path):
        return path.parent / "whatif"
    return Path(tempfile.gettempdir()) / "twin-whatif"


def check_name(name: str) -> str:
    """``name`` if it can name a saved scenario, else ``ConfigError`` saying what a name may be.

    Letters, digits, spaces and ``_.,()+=-``, at most 80, starting with a letter or digit, no ``..``:
    no path characters, so a name is always one file in the folder.
    """
    name = (name or "").strip()
    if not NAME.fullmatch(name) or ".." in name:
        raise ConfigError("scenario name", [Problem(
            path="name", got=name, message="must be 1 to 80 letters, digits, spaces or _.,()+=- starting with a "
                                           "letter or digit (no / \\ or ..)")])
    return name


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _too_big(what: str, size: int, limit: int) -> ConfigError:
    return ConfigError(what, [Problem(path="size", got=size, message=f"is over the limit of {limit} bytes")])


@dataclass(frozen=True, slots=True, kw_only=True)
class SavedScenario:
    """One saved scenario: its name, who saved it and when, and its TOML text."""

    name: str
    author: str
    saved: datetime
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioStore:
    """Saved scenarios in ``folder`` (``NAME.toml``), newest first (see the module docstring)."""

    folder: Path
    max_bytes: int = 64 * 1024
    max_count: int = 200

    def _path(self, name: str) -> Path:
        return self.folder / f"{check_name(name)}.toml"

    def save(self, name: str, text: str, *, author: str, at: datetime) -> SavedScenario:
        """Save (or replace) ``name``; refused over ``max_bytes`` or when the folder holds ``max_count`` others."""
        path = self._path(name)
        meta = f"{META_PREFIX}author = {json.dumps(author)}\n{META_PREFIX}saved = {json.dumps(at.isoformat())}\n"
        body = meta + text
        size = len(body.encode("utf-8"))
        if size > self.max_bytes:
            raise _too_big(f"scenario {name!r}", size, self.max_bytes)
        if not path.exists() and len(list(self.folder.glob("*.toml"))) >= self.max_count:
            raise ConfigError("scenarios", [Problem(path="count", got=self.max_count,
                                                    message="the folder is full: delete a saved scenario first")])
        _write_atomic(path, body)
        return SavedScenario(name=check_name(name), author=author, saved=at, text=text)

    def load(self, name: str) -> SavedScenario:
        """The saved scenario ``name`` (``ConfigError`` when unknown or over the size limit)."""
        path = self._path(name)
        if not path.is_file():
            raise ConfigError("scenarios", [Problem(path="name", got=name, message="no saved scenario of that name")])
        return self._read(path)

    def _read(self, path: Path, *, head_only: bool = False) -> SavedScenario:
        size = path.stat().st_size
        if size > self.max_bytes:
            raise _too_big(f"scenario file {path.name}", size, self.max_bytes)
        if head_only:  # the list needs the two metadata lines on top, not the whole file
            with path.open("r", encoding="utf-8") as f:
                body = "".join(f.readline(1024) for _ in range(2))
        else:
            body = path.read_text(encoding="utf-8")
        meta_lines = [line[len(META_PREFIX):] for line in body.splitlines() if line.startswith(META_PREFIX)]
        text = "" if head_only else "".join(
            line for line in body.splitlines(keepends=True) if not line.startswith(META_PREFIX))
        try:
            meta = loads_toml("\n".join(meta_lines), path.name) if meta_lines else {}
            saved = datetime.fromisoformat(str(meta["saved"]))
        except (ConfigError, KeyError, ValueError):
            meta, saved = {}, datetime.fromtimestamp(path.stat().st_mtime).astimezone()
        return SavedScenario(name=path.stem, author=str(meta.get("author", "")), saved=saved, text=text)

    def list(self) -> list[SavedScenario]:
        """Every saved scenario within the size limit, newest first (names, authors and times: ``text`` empty)."""
        out = []
        for path in sorted(self.folder.glob("*.toml"))[: self.max_count]:
            if not NAME.fullmatch(path.stem):
                continue
            try:
                out.append(self._read(path, head_only=True))
            except (ConfigError, OSError, UnicodeDecodeError):
                continue
        return sorted(out, key=lambda s: s.saved, reverse=True)

    def delete(self, name: str) -> None:
        """Delete ``name`` (nothing when it is not there)."""
        self._path(name).unlink(missing_ok=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultStore:
    """Finished what-if runs in ``folder`` (``ID.json``), at most ``max_count`` and ``max_age_s`` old."""

    folder: Path
    max_bytes: int = 4 * 1024 * 1024
    max_count: int = 100
    max_age_s: float = 14 * 24 * 3600.0

    def put(self, record: dict[str, Any], *, now: datetime) -> str:
        """Store a run (a JSON-friendly dict); returns its new id. The oldest beyond the bounds are removed."""
        rid = secrets.token_hex(8)
        text = json.dumps({**record, "id": rid, "stored": now.isoformat()}, separators=(",", ":"))
        if len(text.encode("utf-8")) > self.max_bytes:
            raise _too_big("what-if result", len(text.encode("utf-8")), self.max_bytes)
        _write_atomic(self.folder / f"{rid}.json", text)
        self.prune(now)
        return rid

    def get(self, rid: str) -> dict[str, Any] | None:
        """The stored run ``rid``; None when the id is malformed, unknown, expired or too large."""
        if not RESULT_ID.fullmatch(rid or ""):
            return None
        path = self.folder / f"{rid}.json"
        try:
            if path.stat().st_size > self.max_bytes:
                return None
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data

    def prune(self, now: datetime) -> None:
        """Remove runs older than ``max_age_s`` and all but the newest ``max_count``."""
        try:
            files = sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        except OSError:
            return
        oldest = (now - timedelta(seconds=self.max_age_s)).timestamp()
        for k, path in enumerate(files):
            try:
                if k >= self.max_count or path.stat().st_mtime < oldest:
                    path.unlink(missing_ok=True)
            except OSError:
                continue
