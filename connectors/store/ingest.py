"""The write path of readings: raw rows and reasons in, the rollups of the buckets they touch kept up to date.

Two readings of one signal with the same timestamp are one point: the later write wins (a reason
of the earlier one stays if the later has none). Only GOOD finite numbers (bools as 0/1) enter the
rollups.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from connectors.store import rollups
from connectors.store.schema import BOOL, EPOCH, NAN, ONE_US, QUALITY_CODE, Row, series_id
from twin.readings import Quality, Reading

__all__ = ["write_readings"]


def write_readings(db: sqlite3.Connection, readings: Sequence[Reading], ids: dict[tuple[str, str, str], int],
                   rollup_us: int) -> None:
    """Insert the raw rows and bring the rollups of the buckets they touch up to date.

    One pass over the readings builds the rows and, per series and rollup bucket, the list of
    GOOD finite numbers. The rows go in with a plain ``INSERT`` first: when no (series, time)
    of the batch is stored yet or repeated within it (a collector writing forward in time), the
    rollups are folded in from those lists (min, max, sum, count; one upsert per bucket,
    combined with what is stored). Otherwise the ``INSERT`` fails on the primary key, is undone
    to a savepoint, and the batch goes in with ``INSERT OR REPLACE`` (the later write wins) and
    the touched buckets of its series are recomputed from the raw rows, so a rewritten reading
    is never counted twice. ``ids`` caches series ids by (site, asset, signal).
    """
    good = Quality.GOOD
    qcode = QUALITY_CODE
    rows: list[Row] = []
    append = rows.append
    reasons: list[tuple[int, int, str]] = []
    groups: dict[int, list[float | int]] = {}  # key: bucket << 32 | series id
    group = groups.get
    when: dict[datetime, tuple[int, int]] = {}  # readings of one poll share their timestamp
    for r in readings:
        key = (r.site, r.asset, r.signal)
        sid = ids.get(key)
        if sid is None:
            sid = series_id(db, key, ids)
        t = r.ts
        tb = when.get(t)
        if tb is None:
            us = (t - EPOCH) // ONE_US
            tb = when[t] = (us, (us // rollup_us) << 32)
        ts = tb[0]
        v = r.value
        vt = type(v)
        if r.reason:
            reasons.append((sid, ts, r.reason))
        if r.quality is not good:
            flags = qcode[r.quality]
            if vt is bool:
                flags |= BOOL
            elif vt is float and v != v:
                flags |= NAN
                v = None
            append((sid, ts, v, flags))
            continue
        if vt is float:
            if v - v != 0.0:  # type: ignore[operator]  # not finite: NaN as NULL with a flag, inf as is
                append((sid, ts, None, NAN) if v != v else (sid, ts, v, 0))
                continue
            append((sid, ts, v, 0))
        elif vt is int:
            append((sid, ts, v, 0))
        elif vt is bool:
            append((sid, ts, v, BOOL))
            v = int(v)  # type: ignore[arg-type]
        else:
            append((sid, ts, v, 0))  # text, or None: not a number
            continue
        k = tb[1] | sid
        g = group(k)
        if g is None:
            groups[k] = [v]  # type: ignore[list-item]
        else:
            g.append(v)  # type: ignore[arg-type]
    db.execute("SAVEPOINT readings")
    try:
        db.executemany("INSERT INTO readings VALUES (?, ?, ?, ?)", rows)
        appended = True
    except sqlite3.IntegrityError:  # a (series, time) stored already or twice in the batch
        db.execute("ROLLBACK TO readings")
        db.executemany("INSERT OR REPLACE INTO readings VALUES (?, ?, ?, ?)", rows)
        appended = False
    db.execute("RELEASE readings")
    if reasons:
        db.executemany("INSERT OR REPLACE INTO reasons VALUES (?, ?, ?)", reasons)
    if appended:
        rollups.add(db, groups)
    else:
        rollups.recompute(db, rows, rollup_us)
