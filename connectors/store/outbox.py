"""The outbox: batches a forwarder sends on, stored in the write's own transaction, and its durable cursor.

``SqliteHistorian(outbox=builder)`` turns each written batch into a payload (``OutboxBuilder``) stored
with the batch; a forwarder (``connectors.forward``) reads what lies after the cursor, sends it and
moves the cursor on, which drops the batches it passed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from twin.readings import Reading
from twin.state import Event, SiteState

__all__ = ["OutboxBuilder", "backlog", "done", "pending", "put"]

OutboxBuilder = Callable[[Sequence[Reading], Sequence[SiteState], Sequence[Event]], str]


def _cursor(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM meta WHERE key = 'forward_cursor'").fetchone()
    return int(row[0]) if row is not None and row[0] else 0


def put(db: sqlite3.Connection, payload: str) -> None:
    """Queue one batch's payload (inside the batch's write transaction)."""
    db.execute("INSERT INTO outbox(payload) VALUES (?)", (payload,))


def pending(db: sqlite3.Connection, limit: int) -> list[tuple[int, str]]:
    """Up to ``limit`` batches after the forward cursor, oldest first."""
    rows = db.execute(
        "SELECT id, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (_cursor(db), limit)
    ).fetchall()
    return [(int(i), str(p)) for i, p in rows]


def done(db: sqlite3.Connection, last_id: int) -> None:
    """Move the forward cursor to ``last_id`` and drop the batches it passed (inside a write transaction)."""
    db.execute("INSERT OR REPLACE INTO meta VALUES ('forward_cursor', ?)", (str(last_id),))
    db.execute("DELETE FROM outbox WHERE id <= ?", (last_id,))


def backlog(db: sqlite3.Connection) -> int:
    """How many batches wait to be forwarded."""
    return int(db.execute("SELECT count(*) FROM outbox WHERE id > ?", (_cursor(db),)).fetchone()[0])
