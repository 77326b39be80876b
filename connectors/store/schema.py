"""The historian file's layout: its tables, how a reading is encoded in a row and decoded back.

Layout (chosen for ingest speed: no secondary index on the hot table)::

    series(id, site, asset, signal)                       one row per signal, small
    readings(series_id, ts_us, value, flags)              WITHOUT ROWID, key (series_id, ts_us)
    reasons(series_id, ts_us, reason)                     only readings that carry a reason (BAD/STALE)
    rollups(series_id, bucket, vmin, vmax, vsum, n)       per ``rollup_interval_s``, kept at write time
    checkpoints(site, ts_us, state JSON)                  SiteStates written by the collector
    events(id, ts_us, site, asset, kind, message, data)   indexed by (site, ts) and (ts)
    outbox(id, payload)                                   batches waiting to be forwarded (optional)
    meta(key, value)                                      schema version, raw horizon, forward cursor

``value`` keeps its SQLite type (integer, real, text, null); ``flags`` holds the quality (bits 0-1),
"was a bool" (bit 2) and "was NaN" (bit 3), so every reading reads back exactly as written. Keeping
``reason`` out of the hot table makes ingest ~1.5× faster: most readings have none. The file layout
is the one of schema "1": files of earlier builds open as they are.
"""

from __future__ import annotations

import math
import sqlite3
from datetime import UTC, datetime, timedelta

from twin.readings import Quality, Reading, Value

__all__ = [
    "BOOL",
    "EPOCH",
    "NAN",
    "NUMERIC",
    "ONE_US",
    "QUALITY_CODE",
    "QUALITY_OF",
    "SCHEMA",
    "SCHEMA_VERSION",
    "Row",
    "from_us",
    "series_id",
    "to_readings",
    "to_us",
]

SCHEMA_VERSION = "1"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
QUALITY_CODE = {Quality.GOOD: 0, Quality.STALE: 1, Quality.BAD: 2}
QUALITY_OF = {v: k for k, v in QUALITY_CODE.items()}
BOOL = 4
NAN = 8
# GOOD numeric rows of the raw table: flags 0 (int/real) or 4 (bool stored as 0/1)
NUMERIC = (
    "flags IN (0, 4) AND typeof(value) IN ('integer', 'real') "
    "AND value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308"  # finite
)

Row = tuple[int, int, Value, int]  # series id, ts (µs), value as stored, flags

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series(
    id INTEGER PRIMARY KEY, site TEXT NOT NULL, asset TEXT NOT NULL, signal TEXT NOT NULL,
    UNIQUE(site, asset, signal));
CREATE TABLE IF NOT EXISTS readings(
    series_id INTEGER NOT NULL, ts INTEGER NOT NULL, value, flags INTEGER NOT NULL,
    PRIMARY KEY(series_id, ts)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reasons(
    series_id INTEGER NOT NULL, ts INTEGER NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY(series_id, ts)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollups(
    series_id INTEGER NOT NULL, bucket INTEGER NOT NULL, vmin REAL, vmax REAL, vsum REAL, n INTEGER NOT NULL,
    PRIMARY KEY(series_id, bucket)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints(
    site TEXT NOT NULL, ts INTEGER NOT NULL, state TEXT NOT NULL, PRIMARY KEY(site, ts)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events(
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, site TEXT NOT NULL, asset TEXT NOT NULL,
    kind TEXT NOT NULL, message TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_site_ts ON events(site, ts);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL);
"""


def to_us(ts: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (exact integer arithmetic)."""
    return (ts - EPOCH) // ONE_US


def from_us(us: int) -> datetime:
    """The aware UTC datetime of ``us`` microseconds since the epoch."""
    return EPOCH + timedelta(microseconds=us)


def series_id(db: sqlite3.Connection, key: tuple[str, str, str], ids: dict[tuple[str, str, str], int]) -> int:
    """The id of series ``key`` (site, asset, signal), created when new; remembered in ``ids``."""
    row = db.execute("SELECT id FROM series WHERE site = ? AND asset = ? AND signal = ?", key).fetchone()
    if row is None:
        cur = db.execute("INSERT INTO series(site, asset, signal) VALUES (?, ?, ?)", key)
        sid = cur.lastrowid
        assert sid is not None
    else:
        sid = row[0]
    ids[key] = sid
    return int(sid)


def to_readings(
    site: str, names: dict[int, tuple[str, str]], rows: list[Row], reasons: dict[tuple[int, int], str]
) -> list[Reading]:
    """Stored rows back into readings, exactly as written."""
    out: list[Reading] = []
    append = out.append
    quality_of = QUALITY_OF
    last_ts, when = None, EPOCH
    for sid, ts, value, flags in rows:
        if ts != last_ts:  # rows come in time order; one poll shares one timestamp
            last_ts, when = ts, EPOCH + timedelta(microseconds=ts)
        if flags > 3:
            value = bool(value) if flags & BOOL else math.nan
        asset, signal = names[sid]
        append(Reading(ts=when, site=site, asset=asset, signal=signal, value=value,
                       quality=quality_of[flags & 3], reason=reasons.get((sid, ts), "") if reasons else ""))
    return out
