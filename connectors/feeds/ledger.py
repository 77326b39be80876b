"""The feeds ledger: a small SQLite file remembering the highest version applied of every order and shipment.

Per (kind, id) it keeps the version and the record itself (canonical JSON). ``commit(records)``
decides each record in one transaction, in order:

* a higher version than the ledger holds (or a new id): **accepted**, stored;
* the same version with the same content: **duplicate**, not applied again;
* a lower version: **late** ("version 3 < 5 already applied"), ignored;
* the same version with a different content: **conflict**, rejected;
* a version outside 0..2^63-1 (SQLite's integers) or a value SQLite cannot bind: **invalid**,
  rejected by itself (the parser already refuses these; the ledger never lets one record fail the
  whole transaction).

``commit`` returns only after the transaction is durable (WAL, ``synchronous=FULL``): callers
acknowledge a record (HTTP 200, file moved to ``processed/``) only then. On start the collector
re-applies :meth:`Ledger.latest` to its resumed state, so a crash between this commit and the
next checkpoint of the historian loses nothing (the reducer ignores what the state already has).

A shipment record without ``planned_eta`` is stored with the first ETA the ledger saw for its id,
so the delay survives a restart even when the twin's state is rebuilt from the ledger alone.

Usage::

    ledger = Ledger(Path("var/feeds.db"))
    outcomes = ledger.commit(records)
    ledger.close()
"""

from __future__ import annotations

import enum
import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from connectors.feeds.parse import MAX_VERSION, record_from_json, record_to_json
from twin.business import BusinessRecord, ShipmentRecord
from twin.errors import HistorianError

__all__ = ["Decision", "Ledger", "Outcome"]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feed_records (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
"""


class Outcome(enum.Enum):
    """What the ledger decided about one record."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    LATE = "late"
    CONFLICT = "conflict"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The ledger's decision on one record; ``record`` is what was stored (planned ETA filled in)."""

    outcome: Outcome
    record: BusinessRecord
    reason: str = ""


class Ledger:
    """The highest version of every (kind, id), in a SQLite file. Thread-safe (one lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise HistorianError(f"cannot open the feeds ledger {path}: {exc}") from exc

    def commit(self, records: Sequence[BusinessRecord]) -> list[Decision]:
        """Decide every record (see the module docstring) and store the accepted ones, in one transaction."""
        decisions: list[Decision] = []
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for r in records:
                        try:
                            decisions.append(self._decide(r))
                        except (ValueError, OverflowError) as exc:  # a value SQLite cannot bind: this record only
                            log.warning("feeds ledger: %s %r cannot be stored: %s", r.kind.value, r.id[:40], exc)
                            decisions.append(Decision(outcome=Outcome.INVALID, record=r,
                                                      reason=f"cannot be stored: {type(exc).__name__}"))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise HistorianError(f"feeds ledger {self.path}: {exc}") from exc
        return decisions

    def _decide(self, r: BusinessRecord) -> Decision:
        if not isinstance(r.version, int) or not 0 <= r.version <= MAX_VERSION:
            return Decision(outcome=Outcome.INVALID, record=r, reason=f"version must be within 0..2^63-1 "
                                                                     f"(got {str(r.version)[:30]})")
        row = self._db.execute("SELECT version, body FROM feed_records WHERE kind = ? AND id = ?",
                               (r.kind.value, r.id)).fetchone()
        if isinstance(r, ShipmentRecord) and r.planned_eta is None:
            first = r.eta
            if row is not None:
                prev = record_from_json(row[1])
                if isinstance(prev, ShipmentRecord) and prev.planned_eta is not None:
                    first = prev.planned_eta
            r = replace(r, planned_eta=first)
        body = record_to_json(r)
        if row is not None:
            version, stored = int(row[0]), str(row[1])
            if r.version < version:
                return Decision(outcome=Outcome.LATE, record=r,
                                reason=f"version {r.version} < {version} already applied")
            if r.version == version:
                if body == stored:
                    return Decision(outcome=Outcome.DUPLICATE, record=r)
                return Decision(outcome=Outcome.CONFLICT, record=r,
                                reason=f"version {version} was already applied with different content")
        self._db.execute("INSERT OR REPLACE INTO feed_records (kind, id, version, body) VALUES (?, ?, ?, ?)",
                         (r.kind.value, r.id, r.version, body))
        return Decision(outcome=Outcome.ACCEPTED, record=r)

    def latest(self) -> list[BusinessRecord]:
        """The latest version of every record the ledger holds (re-applied when the collector starts)."""
        with self._lock:
            try:
                rows = self._db.execute("SELECT body FROM feed_records ORDER BY kind, id").fetchall()
            except sqlite3.Error as exc:
                raise HistorianError(f"feeds ledger {self.path}: {exc}") from exc
        return [record_from_json(str(body)) for (body,) in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
