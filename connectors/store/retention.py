"""Retention: raw readings older than the raw horizon go; checkpoints there are thinned to one an hour.

``series`` serves ranges before the horizon from rollups from then on (rollups and events stay).
Before the horizon ``state_at`` has no readings left to replay, only checkpoints, so keeping one
every few minutes there buys nothing but file size (a checkpoint is a whole site state, kilobytes;
at one per minute a site piles up half a million a year): per site, the first checkpoint of each
UTC hour (``CHECKPOINT_KEEP_S``) stays, and so does the last one before the horizon, which a replay
just after the horizon starts from. Checkpoints after the horizon are not touched.
"""

from __future__ import annotations

import sqlite3

__all__ = ["CHECKPOINT_KEEP_S", "delete_before"]

CHECKPOINT_KEEP_S = 3600  # before the raw horizon, one checkpoint per site and this many seconds is kept


def delete_before(db: sqlite3.Connection, horizon: int) -> tuple[int, int]:
    """Delete raw readings before ``horizon`` (µs), thin the checkpoints there, record the horizon.

    Returns (readings deleted, checkpoints deleted); runs inside the caller's write transaction.
    """
    deleted = 0
    for (sid,) in db.execute("SELECT id FROM series").fetchall():
        deleted += db.execute("DELETE FROM readings WHERE series_id = ? AND ts < ?", (sid, horizon)).rowcount
        db.execute("DELETE FROM reasons WHERE series_id = ? AND ts < ?", (sid, horizon))
    thinned = db.execute(
        "DELETE FROM checkpoints WHERE ts < ?1 AND (site, ts) NOT IN ("
        "SELECT site, min(ts) FROM checkpoints WHERE ts < ?1 GROUP BY site, ts / ?2 "
        "UNION ALL SELECT site, max(ts) FROM checkpoints WHERE ts < ?1 GROUP BY site)",
        (horizon, CHECKPOINT_KEEP_S * 1_000_000),
    ).rowcount
    db.execute("INSERT OR REPLACE INTO meta VALUES ('raw_horizon_us', ?)", (str(horizon),))
    return deleted, thinned
