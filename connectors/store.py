"""The embedded historian: one SQLite file in WAL mode, written by the collector, read by anyone.

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
"was a bool" (bit 2) and "was NaN" (bit 3), so every reading reads back exactly as written. Two
readings of one signal with the same timestamp are one point: the later write wins (a reason of the
earlier one stays if the later has none). Keeping ``reason`` out of the hot table makes ingest ~1.5×
faster: most readings have none.

``write`` commits one transaction (``synchronous=FULL``) before it returns: that is the
acknowledgement. Other processes read the file at the same time (``readonly=True`` opens it
read-only). Only GOOD numeric values (bools as 0/1) enter series and rollups; ``series`` uses raw
rows when a bucket would be shorter than one rollup interval and the range is still within the raw
retention, rollups otherwise (rollup buckets at the edges may include data just outside the range).

>>> import tempfile, pathlib
>>> from datetime import UTC, datetime
>>> from twin.spec import FleetSpec
>>> with tempfile.TemporaryDirectory() as d:
...     h = SqliteHistorian(pathlib.Path(d) / "h.sqlite", FleetSpec(id="f", name="F", sites=(), templates=()))
...     t = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
...     h.write([Reading(ts=t, site="s1", asset="P1", signal="temp_c", value=21.5)])
...     [p.value for p in h.series([SeriesKey(site="s1", asset="P1", signal="temp_c")], t, t, 10)[0].points]
...     h.close()
[21.5]
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from twin.codec import event_from_dict, event_to_dict, site_state_from_dict, site_state_to_dict
from twin.errors import HistorianError
from twin.historian import SeriesKey, SeriesPoint, SeriesResult, fold_readings, replay_site
from twin.limits import Limits, check_series_request
from twin.readings import Quality, Reading, Value
from twin.spec import FleetSpec, SiteId
from twin.state import Event, SiteState

__all__ = ["SqliteHistorian", "from_us", "to_us"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
_QUALITY_CODE = {Quality.GOOD: 0, Quality.STALE: 1, Quality.BAD: 2}
_QUALITY_OF = {v: k for k, v in _QUALITY_CODE.items()}
_BOOL = 4
_NAN = 8
# GOOD numeric rows of the raw table: flags 0 (int/real) or 4 (bool stored as 0/1)
_NUMERIC = (
    "flags IN (0, 4) AND typeof(value) IN ('integer', 'real') "
    "AND value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308"  # finite
)

OutboxBuilder = Callable[[Sequence[Reading], Sequence[SiteState], Sequence[Event]], str]

_SCHEMA = """
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


class SqliteHistorian:
    """The embedded historian (see the module docstring for layout and guarantees).

    ``fleet`` is needed to rebuild states (``state_at`` replays readings through the live reducer).
    ``outbox``, when given, turns each written batch into a payload stored in the same transaction
    for a forwarder (``connectors.forward``) to send on. ``limits``, when given (a historian serving
    users, e.g. the dashboard's), makes ``series`` refuse requests over ``twin.limits`` with a
    ``HistorianError``; without it (the collector, calibration, export) requests are unbounded.
    """

    def __init__(
        self,
        path: str | Path,
        fleet: FleetSpec,
        *,
        readonly: bool = False,
        rollup_interval_s: int = 60,
        retention_raw_days: float | None = None,
        outbox: OutboxBuilder | None = None,
        timeout_s: float = 10.0,
        replay_margin_s: float = 10.0,
        limits: Limits | None = None,
    ) -> None:
        if rollup_interval_s < 1:
            raise HistorianError(f"rollup_interval_s must be at least 1 (got {rollup_interval_s!r})")
        self.path = Path(path)
        self.fleet = fleet
        self.readonly = readonly
        self.limits = limits
        self.rollup_us = int(rollup_interval_s) * 1_000_000
        self.retention_raw_days = retention_raw_days
        self._outbox = outbox
        self._lock = threading.RLock()
        self._ids: dict[tuple[str, str, str], int] = {}
        # per site: (checkpoint ts, folded up to ts, state) of the last replay, see state_at
        self._replays: dict[str, tuple[int | None, int, SiteState]] = {}
        self.replay_margin_us = int(replay_margin_s * 1_000_000)
        try:
            if readonly:
                if not self.path.exists():
                    raise HistorianError(f"historian file {self.path} does not exist")
                uri = self.path.resolve().as_uri() + "?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, timeout=timeout_s, isolation_level=None,
                                           check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None,
                                           check_same_thread=False)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(_SCHEMA)
                self._init_meta()
            stored_rollup = self._meta("rollup_interval_s")
        except sqlite3.Error as exc:
            raise HistorianError(f"cannot open historian {self.path}: {exc}") from exc
        if stored_rollup is not None and int(stored_rollup) * 1_000_000 != self.rollup_us:
            log.warning("%s keeps %s s rollups; using those", self.path, stored_rollup)
            self.rollup_us = int(stored_rollup) * 1_000_000

    def __repr__(self) -> str:
        return f"SqliteHistorian({str(self.path)!r}, readonly={self.readonly})"

    @property
    def has_outbox(self) -> bool:
        """Whether written batches are queued for a forwarder."""
        return self._outbox is not None

    # --- plumbing ---------------------------------------------------------------------------------

    def _init_meta(self) -> None:
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        self._db.execute(
            "INSERT OR IGNORE INTO meta VALUES ('rollup_interval_s', ?)", (str(self.rollup_us // 1_000_000),)
        )
        schema = self._meta("schema")
        if schema != SCHEMA_VERSION:
            raise HistorianError(f"{self.path} has schema {schema!r}, this version reads {SCHEMA_VERSION!r}")

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """One consistent read snapshot; sqlite errors become HistorianError."""
        with self._lock:
            try:
                self._db.execute("BEGIN")
                try:
                    yield self._db
                finally:
                    self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise HistorianError(f"historian {self.path}: read failed: {exc}") from exc

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed on success and rolled back on any error."""
        if self.readonly:
            raise HistorianError(f"historian {self.path} was opened read-only")
        with self._lock:
            ids_before = dict(self._ids)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    self._ids = ids_before  # ids created in the rolled-back transaction are gone
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._ids = ids_before
                if self._db.in_transaction:
                    self._db.rollback()
                raise HistorianError(f"historian {self.path}: write failed: {exc}") from exc

    def _series_id(self, db: sqlite3.Connection, key: tuple[str, str, str]) -> int:
        row = db.execute("SELECT id FROM series WHERE site = ? AND asset = ? AND signal = ?", key).fetchone()
        if row is None:
            cur = db.execute("INSERT INTO series(site, asset, signal) VALUES (?, ?, ?)", key)
            sid = cur.lastrowid
            assert sid is not None
        else:
            sid = row[0]
        self._ids[key] = sid
        return int(sid)

    # --- write --------------------------------------------------------------------------------------

    def write(
        self,
        readings: Sequence[Reading],
        states: Sequence[SiteState] = (),
        events: Sequence[Event] = (),
    ) -> None:
        """Store everything in one transaction; returns once it is committed (the acknowledgement)."""
        if not readings and not states and not events:
            return
        rollup_us = self.rollup_us
        qcode = _QUALITY_CODE
        good = Quality.GOOD
        with self._writing() as db:
            ids = self._ids
            rows: list[tuple[int, int, Value, int]] = []
            append = rows.append
            reasons: list[tuple[int, int, str]] = []
            spans: dict[int, list[int]] = {}
            us_of: dict[datetime, int] = {}  # readings of one poll share their timestamp
            for r in readings:
                key = (r.site, r.asset, r.signal)
                sid = ids.get(key)
                if sid is None:
                    sid = self._series_id(db, key)
                t = r.ts
                ts = us_of.get(t)
                if ts is None:
                    ts = us_of[t] = (t - EPOCH) // ONE_US
                v = r.value
                q = r.quality
                flags = 0 if q is good else qcode[q]
                vt = type(v)
                if vt is bool:
                    flags |= _BOOL
                elif vt is float and v != v:
                    flags |= _NAN
                    v = None
                append((sid, ts, v, flags))
                if r.reason:
                    reasons.append((sid, ts, r.reason))
                span = spans.get(sid)
                if span is None:
                    spans[sid] = [ts, ts]
                elif ts > span[1]:
                    span[1] = ts
                elif ts < span[0]:
                    span[0] = ts
            if rows:
                db.executemany("INSERT OR REPLACE INTO readings VALUES (?, ?, ?, ?)", rows)
                if reasons:
                    db.executemany("INSERT OR REPLACE INTO reasons VALUES (?, ?, ?)", reasons)
                # rollups of every bucket this batch touched, recomputed from the raw rows: exact,
                # and a rewritten reading is not counted twice
                db.executemany(
                    "INSERT OR REPLACE INTO rollups SELECT series_id, ts / ?1, min(value), max(value), "
                    f"sum(value), count(*) FROM readings WHERE series_id = ?2 AND ts >= ?3 AND ts < ?4 "
                    f"AND {_NUMERIC} GROUP BY ts / ?1",
                    [(rollup_us, sid, lo - lo % rollup_us, hi - hi % rollup_us + rollup_us)
                     for sid, (lo, hi) in spans.items()],
                )
            if states:
                db.executemany(
                    "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)",
                    [(s.site, to_us(s.as_of), json.dumps(site_state_to_dict(s))) for s in states],
                )
            if events:
                db.executemany(
                    "INSERT INTO events(ts, site, asset, kind, message, data) VALUES (?, ?, ?, ?, ?, ?)",
                    [(to_us(e.ts), e.site, e.asset, e.kind.value, e.message,
                      json.dumps(event_to_dict(e)["data"])) for e in events],
                )
            if self._outbox is not None:
                db.execute("INSERT INTO outbox(payload) VALUES (?)", (self._outbox(readings, states, events),))

    # --- read ---------------------------------------------------------------------------------------

    def signals(self, site: str | None = None) -> list[SeriesKey]:
        """Every series stored (of ``site``), sorted."""
        with self._reading() as db:
            if site is None:
                rows = db.execute("SELECT site, asset, signal FROM series ORDER BY site, asset, signal").fetchall()
            else:
                rows = db.execute(
                    "SELECT site, asset, signal FROM series WHERE site = ? ORDER BY asset, signal", (site,)
                ).fetchall()
        return [SeriesKey(site=s, asset=a, signal=g) for s, a, g in rows]

    def series(
        self, keys: Sequence[SeriesKey], t0: datetime, t1: datetime, max_points: int
    ) -> list[SeriesResult]:
        """GOOD numeric values of each series in [t0, t1], at most ``max_points`` (min/mean/max buckets)."""
        check_series_request(len(keys), t0, t1, max_points, self.limits)  # one rule for both historians
        a, b = to_us(t0), to_us(t1)
        out: list[SeriesResult] = []
        with self._reading() as db:
            horizon = self._meta("raw_horizon_us")
            use_rollups_for_age = horizon is not None and a < int(horizon)
            for key in keys:
                row = db.execute(
                    "SELECT id FROM series WHERE site = ? AND asset = ? AND signal = ?",
                    (key.site, key.asset, key.signal),
                ).fetchone()
                if row is None or b < a:
                    out.append(SeriesResult(key=key, points=(), downsampled=False))
                    continue
                sid = int(row[0])
                width = -(-(b - a + 1) // max_points)
                if use_rollups_for_age or width >= self.rollup_us:
                    out.append(SeriesResult(key=key, points=self._from_rollups(db, sid, a, b, max_points),
                                            downsampled=True))
                    continue
                raw = db.execute(
                    f"SELECT ts, value FROM readings WHERE series_id = ? AND ts BETWEEN ? AND ? AND {_NUMERIC} "
                    "ORDER BY ts LIMIT ?",
                    (sid, a, b, max_points + 1),
                ).fetchall()
                if len(raw) <= max_points:
                    pts = tuple(SeriesPoint(ts=from_us(ts), value=float(v), min=float(v), max=float(v))
                                for ts, v in raw)
                    out.append(SeriesResult(key=key, points=pts, downsampled=False))
                    continue
                grouped = db.execute(
                    "SELECT (ts - ?) / ? AS b, avg(value), min(value), max(value), count(*) FROM readings "
                    f"WHERE series_id = ? AND ts BETWEEN ? AND ? AND {_NUMERIC} GROUP BY b ORDER BY b",
                    (a, width, sid, a, b),
                ).fetchall()
                pts = tuple(SeriesPoint(ts=from_us(a + k * width), value=float(mean), min=float(lo), max=float(hi),
                                        count=int(n)) for k, mean, lo, hi, n in grouped)
                out.append(SeriesResult(key=key, points=pts, downsampled=True))
        return out

    def _from_rollups(
        self, db: sqlite3.Connection, sid: int, a: int, b: int, max_points: int
    ) -> tuple[SeriesPoint, ...]:
        r = self.rollup_us
        b0, b1 = a // r, b // r
        group = -(-(b1 - b0 + 1) // max_points)
        rows = db.execute(
            "SELECT (bucket - ?) / ? AS g, min(vmin), max(vmax), sum(vsum), sum(n) FROM rollups "
            "WHERE series_id = ? AND bucket BETWEEN ? AND ? GROUP BY g ORDER BY g",
            (b0, group, sid, b0, b1),
        ).fetchall()
        return tuple(
            SeriesPoint(ts=from_us((b0 + g * group) * r), value=s / n, min=float(lo), max=float(hi), count=int(n))
            for g, lo, hi, s, n in rows
        )

    def checkpoint_at(self, site: str, t: datetime) -> SiteState | None:
        """The latest stored checkpoint of ``site`` at or before ``t``, as written."""
        with self._reading() as db:
            row = db.execute(
                "SELECT state FROM checkpoints WHERE site = ? AND ts <= ? ORDER BY ts DESC LIMIT 1", (site, to_us(t))
            ).fetchone()
        return None if row is None else site_state_from_dict(json.loads(row[0]))

    def readings(self, site: str, after: datetime | None, until: datetime) -> list[Reading]:
        """Every reading of ``site`` with ``after < ts <= until``, in time order, exactly as written."""
        with self._reading() as db:
            return self._site_readings(db, site, None if after is None else to_us(after), to_us(until))

    def _site_readings(self, db: sqlite3.Connection, site: str, after: int | None, until: int) -> list[Reading]:
        names = {
            sid: (asset, signal)
            for sid, asset, signal in db.execute("SELECT id, asset, signal FROM series WHERE site = ?", (site,))
        }
        if not names:
            return []
        marks = ",".join("?" * len(names))
        low = -(2**63) if after is None else after
        rows = db.execute(
            "SELECT r.series_id, r.ts, r.value, r.flags, x.reason FROM readings r LEFT JOIN reasons x "
            f"ON x.series_id = r.series_id AND x.ts = r.ts WHERE r.series_id IN ({marks}) "
            "AND r.ts > ? AND r.ts <= ? ORDER BY r.ts, r.series_id",
            (*names, low, until),
        ).fetchall()
        out: list[Reading] = []
        append = out.append
        quality_of = _QUALITY_OF
        last_ts, when = None, EPOCH
        for sid, ts, value, flags, reason in rows:
            if ts != last_ts:  # rows come in time order; one poll shares one timestamp
                last_ts, when = ts, EPOCH + timedelta(microseconds=ts)
            if flags > 3:
                value = bool(value) if flags & _BOOL else math.nan
            asset, signal = names[sid]
            append(Reading(ts=when, site=site, asset=asset, signal=signal, value=value,
                           quality=quality_of[flags & 3], reason=reason or ""))
        return out

    def state_at(self, site: str, t: datetime) -> SiteState | None:
        """The site as it was at ``t``: the latest checkpoint, then the readings after it replayed.

        A replay is remembered per site up to ``t - replay_margin_s``; a later call with the same
        checkpoint continues from there (the live view asks for "now" again and again). Readings
        written later than ``replay_margin_s`` behind the newest ones would be missed by such a
        continuation; the collector writes in time order, so that does not happen.
        """
        try:
            self.fleet.site(site)
        except KeyError:
            raise HistorianError(f"unknown site {site!r}") from None
        tu = to_us(t)
        with self._reading() as db:
            row = db.execute(
                "SELECT ts FROM checkpoints WHERE site = ? AND ts <= ? ORDER BY ts DESC LIMIT 1", (site, tu)
            ).fetchone()
            cp_ts = None if row is None else int(row[0])
            cached = self._replays.get(site)
            if cached is not None and cached[0] == cp_ts and cached[1] <= tu:
                base: SiteState | None = cached[2]
                after: int | None = cached[1]
            else:
                base = None
                if cp_ts is not None:
                    (text,) = db.execute("SELECT state FROM checkpoints WHERE site = ? AND ts = ?",
                                         (site, cp_ts)).fetchone()
                    base = site_state_from_dict(json.loads(text))
                after = cp_ts
            readings = self._site_readings(db, site, after, tu)
        if base is None:
            return replay_site(self.fleet, site, None, readings, t)
        keep = tu - self.replay_margin_us
        older = [r for r in readings if to_us(r.ts) <= keep]
        mid = fold_readings(self.fleet, site, base, older)
        if after is None or keep > after:
            self._replays[site] = (cp_ts, keep, mid)
        return replay_site(self.fleet, site, mid, readings[len(older):], t)

    def events(self, site: str | None, t0: datetime, t1: datetime) -> list[Event]:
        """Events in [t0, t1] (of ``site``), in time order (write order within one instant)."""
        q = "SELECT ts, site, asset, kind, message, data FROM events WHERE ts BETWEEN ? AND ?"
        args: tuple[Any, ...] = (to_us(t0), to_us(t1))
        if site is not None:
            q += " AND site = ?"
            args = (*args, site)
        with self._reading() as db:
            rows = db.execute(q + " ORDER BY ts, id", args).fetchall()
        return [
            event_from_dict({"ts": from_us(ts).isoformat(), "site": s, "asset": a, "kind": k, "message": m,
                             "data": json.loads(d)})
            for ts, s, a, k, m, d in rows
        ]

    def latest_states(self) -> dict[SiteId, SiteState]:
        """The latest checkpoint of every site that has one."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT c.state FROM checkpoints c JOIN (SELECT site, max(ts) AS ts FROM checkpoints GROUP BY site) l "
                "ON c.site = l.site AND c.ts = l.ts"
            ).fetchall()
        states = [site_state_from_dict(json.loads(r[0])) for r in rows]
        return {s.site: s for s in states}

    # --- retention and forwarding ----------------------------------------------------------------

    def apply_retention(self, now: datetime) -> int:
        """Delete raw readings older than the raw retention (rollups, checkpoints, events stay).

        Returns how many readings were deleted. ``series`` serves ranges before the horizon from
        rollups from then on.
        """
        if self.retention_raw_days is None:
            return 0
        horizon = to_us(now - timedelta(days=self.retention_raw_days))
        deleted = 0
        with self._writing() as db:
            for (sid,) in db.execute("SELECT id FROM series").fetchall():
                deleted += db.execute("DELETE FROM readings WHERE series_id = ? AND ts < ?", (sid, horizon)).rowcount
                db.execute("DELETE FROM reasons WHERE series_id = ? AND ts < ?", (sid, horizon))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('raw_horizon_us', ?)", (str(horizon),))
        log.info("retention: %d raw readings before %s deleted from %s", deleted, from_us(horizon), self.path)
        return deleted

    def outbox_pending(self, limit: int) -> list[tuple[int, str]]:
        """Up to ``limit`` outbox batches after the forward cursor, oldest first."""
        with self._reading() as db:
            cursor = int(self._meta("forward_cursor") or 0)
            rows = db.execute(
                "SELECT id, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (cursor, limit)
            ).fetchall()
        return [(int(i), str(p)) for i, p in rows]

    def outbox_done(self, last_id: int) -> None:
        """Move the durable forward cursor to ``last_id`` and drop the batches it passed."""
        with self._writing() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('forward_cursor', ?)", (str(last_id),))
            db.execute("DELETE FROM outbox WHERE id <= ?", (last_id,))

    def outbox_backlog(self) -> int:
        """How many batches wait to be forwarded."""
        with self._reading() as db:
            cursor = int(self._meta("forward_cursor") or 0)
            return int(db.execute("SELECT count(*) FROM outbox WHERE id > ?", (cursor,)).fetchone()[0])

    def integrity_check(self) -> str:
        """SQLite's own verdict on the file (``'ok'`` when sound)."""
        with self._reading() as db:
            return str(db.execute("PRAGMA integrity_check").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error as exc:  # pragma: no cover - close of a healthy connection
                raise HistorianError(f"closing {self.path}: {exc}") from exc

