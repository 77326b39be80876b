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
read-only). Only GOOD finite numbers (bools as 0/1) enter series and rollups; ``series`` uses raw
rows when a bucket would be shorter than one rollup interval and the range is still within the raw
retention, rollups otherwise (rollup buckets at the edges may include data just outside the range).

Rollups are kept at write time without reading the raw table back: a batch that only adds points
(the collector's case) adds its per-bucket min/max/sum/count to the stored ones with one upsert
per bucket; a batch that rewrites stored points has its buckets recomputed from the raw rows.

``state_at`` replays the readings after the latest checkpoint, but folds only the rows that can
change the result (``_ReplayPlan``: the latest value of plain signals, the ends of monotone counter
runs; status, watched and inventory signals whole), so a replay costs what the status changes cost,
not what the polls cost. The result is exactly the full replay's. Retention thins old checkpoints
(``apply_retention``). The file layout is the one of schema "1": files of earlier builds open as
they are.

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
from bisect import bisect_right
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
from twin.spec import FleetSpec, SignalKind, SiteId, SiteSpec
from twin.state import Event, SiteState

__all__ = ["SqliteHistorian", "from_us", "to_us"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
CHECKPOINT_KEEP_S = 3600  # before the raw horizon, one checkpoint per site and this many seconds is kept
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
        self._plans: dict[str, _ReplayPlan] = {}
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
        with self._writing() as db:
            if readings:
                self._write_readings(db, readings)
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

    def _write_readings(self, db: sqlite3.Connection, readings: Sequence[Reading]) -> None:
        """Insert the raw rows and bring the rollups of the buckets they touch up to date.

        One pass over the readings builds the rows and, per series and rollup bucket, the list of
        GOOD finite numbers. The rows go in with a plain ``INSERT`` first: when no (series, time)
        of the batch is stored yet or repeated within it (a collector writing forward in time), the
        rollups are folded in from those lists (min, max, sum, count; one upsert per bucket,
        combined with what is stored). Otherwise the ``INSERT`` fails on the primary key, is undone
        to a savepoint, and the batch goes in with ``INSERT OR REPLACE`` (the later write wins) and
        the touched buckets of its series are recomputed from the raw rows, so a rewritten reading
        is never counted twice.
        """
        rollup_us = self.rollup_us
        good = Quality.GOOD
        qcode = _QUALITY_CODE
        ids = self._ids
        rows: list[tuple[int, int, Value, int]] = []
        append = rows.append
        reasons: list[tuple[int, int, str]] = []
        groups: dict[int, list[float | int]] = {}  # key: bucket << 32 | series id
        group = groups.get
        when: dict[datetime, tuple[int, int]] = {}  # readings of one poll share their timestamp
        for r in readings:
            key = (r.site, r.asset, r.signal)
            sid = ids.get(key)
            if sid is None:
                sid = self._series_id(db, key)
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
                    flags |= _BOOL
                elif vt is float and v != v:
                    flags |= _NAN
                    v = None
                append((sid, ts, v, flags))
                continue
            if vt is float:
                if v - v != 0.0:  # type: ignore[operator]  # not finite: NaN as NULL with a flag, inf as is
                    append((sid, ts, None, _NAN) if v != v else (sid, ts, v, 0))
                    continue
                append((sid, ts, v, 0))
            elif vt is int:
                append((sid, ts, v, 0))
            elif vt is bool:
                append((sid, ts, v, _BOOL))
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
            db.executemany(
                "INSERT INTO rollups VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(series_id, bucket) DO UPDATE SET "
                "vmin = min(vmin, excluded.vmin), vmax = max(vmax, excluded.vmax), "
                "vsum = vsum + excluded.vsum, n = n + excluded.n",
                [(k & 0xFFFFFFFF, k >> 32, min(g), max(g), sum(g), len(g)) for k, g in groups.items()],
            )
        else:
            self._recompute_rollups(db, rows)

    def _recompute_rollups(self, db: sqlite3.Connection, rows: list[tuple[int, int, Value, int]]) -> None:
        """Recompute every rollup bucket the batch touched from the raw rows (exact after rewrites)."""
        rollup_us = self.rollup_us
        spans: dict[int, list[int]] = {}
        for sid, ts, _, _ in rows:
            span = spans.get(sid)
            if span is None:
                spans[sid] = [ts, ts]
            elif ts < span[0]:
                span[0] = ts
            elif ts > span[1]:
                span[1] = ts
        bounds = [(sid, lo // rollup_us, hi // rollup_us + 1) for sid, (lo, hi) in spans.items()]
        db.executemany("DELETE FROM rollups WHERE series_id = ? AND bucket >= ? AND bucket < ?", bounds)
        db.executemany(
            "INSERT INTO rollups SELECT series_id, ts / ?1, min(value), max(value), sum(value), count(*) "
            f"FROM readings WHERE series_id = ?2 AND ts >= ?3 * ?1 AND ts < ?4 * ?1 AND {_NUMERIC} "
            "GROUP BY ts / ?1",
            [(rollup_us, sid, b0, b1) for sid, b0, b1 in bounds],
        )

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
            low = None if after is None else to_us(after)
            names, rows, reasons = self._site_rows(db, site, low, to_us(until))
        return _to_readings(site, names, rows, reasons)

    def _site_rows(
        self, db: sqlite3.Connection, site: str, after: int | None, until: int
    ) -> tuple[dict[int, tuple[str, str]], list[_Row], dict[tuple[int, int], str]]:
        """(series id -> (asset, signal), raw rows in (time, series id) order, reasons by (series, time))."""
        names = {
            sid: (asset, signal)
            for sid, asset, signal in db.execute("SELECT id, asset, signal FROM series WHERE site = ?", (site,))
        }
        if not names:
            return names, [], {}
        marks = ",".join("?" * len(names))
        low = -(2**63) if after is None else after
        rows = db.execute(
            f"SELECT series_id, ts, value, flags FROM readings WHERE series_id IN ({marks}) "
            "AND ts > ? AND ts <= ? ORDER BY ts, series_id",
            (*names, low, until),
        ).fetchall()
        reasons = {
            (sid, ts): reason
            for sid, ts, reason in db.execute(
                f"SELECT series_id, ts, reason FROM reasons WHERE series_id IN ({marks}) "
                "AND ts > ? AND ts <= ?",
                (*names, low, until),
            )
        }
        return names, rows, reasons

    def state_at(self, site: str, t: datetime) -> SiteState | None:
        """The site as it was at ``t``: the latest checkpoint, then the readings after it replayed.

        The replay folds only the readings that can change the result (see ``_replay_rows``): the
        state at ``t`` is exactly the one a full replay gives. A replay is remembered per site up to
        ``t - replay_margin_s``; a later call with the same checkpoint continues from there (the
        live view asks for "now" again and again). Readings written later than ``replay_margin_s``
        behind the newest ones would be missed by such a continuation; the collector writes in time
        order, so that does not happen.
        """
        try:
            site_spec = self.fleet.site(site)
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
            names, rows, reasons = self._site_rows(db, site, after, tu)
        plan = self._plans.get(site)
        if plan is None or plan.names != names:  # the site's series change rarely: keep its plan
            plan = self._plans[site] = _ReplayPlan(self.fleet, site_spec, names)
        if base is None:
            everything = _to_readings(site, names, plan.reduce(rows), reasons)
            return replay_site(self.fleet, site, None, everything, t)
        keep = tu - self.replay_margin_us
        split = bisect_right(rows, keep, key=_row_ts)
        older, newer = rows[:split], rows[split:]
        mid = fold_readings(self.fleet, site, base, _to_readings(site, names, plan.reduce(older), reasons))
        if after is None or keep > after:
            self._replays[site] = (cp_ts, keep, mid)
        return replay_site(self.fleet, site, mid, _to_readings(site, names, plan.reduce(newer), reasons), t)

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
        """Delete raw readings older than the raw retention and thin the checkpoints there.

        Returns how many readings were deleted. ``series`` serves ranges before the horizon from
        rollups from then on (rollups and events stay). Before the horizon ``state_at`` has no
        readings left to replay, only checkpoints, so keeping one every few minutes there buys
        nothing but file size (a checkpoint is a whole site state, kilobytes; at one per minute a
        site piles up half a million a year): per site, the first checkpoint of each UTC hour
        (``CHECKPOINT_KEEP_S``) stays, and so does the last one before the horizon, which a replay
        just after the horizon starts from. Checkpoints after the horizon are not touched.
        """
        if self.retention_raw_days is None:
            return 0
        horizon = to_us(now - timedelta(days=self.retention_raw_days))
        deleted = 0
        with self._writing() as db:
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
        self._replays.clear()
        log.info("retention: %d raw readings and %d checkpoints before %s deleted from %s", deleted, thinned,
                 from_us(horizon), self.path)
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


_Row = tuple[int, int, Value, int]  # series id, ts (µs), value as stored, flags
_FULL, _LATEST, _COUNTER = 0, 1, 2


def _row_ts(row: _Row) -> int:
    return row[1]


def _to_readings(
    site: str, names: dict[int, tuple[str, str]], rows: list[_Row], reasons: dict[tuple[int, int], str]
) -> list[Reading]:
    """Stored rows back into readings, exactly as written."""
    out: list[Reading] = []
    append = out.append
    quality_of = _QUALITY_OF
    last_ts, when = None, EPOCH
    for sid, ts, value, flags in rows:
        if ts != last_ts:  # rows come in time order; one poll shares one timestamp
            last_ts, when = ts, EPOCH + timedelta(microseconds=ts)
        if flags > 3:
            value = bool(value) if flags & _BOOL else math.nan
        asset, signal = names[sid]
        append(Reading(ts=when, site=site, asset=asset, signal=signal, value=value,
                       quality=quality_of[flags & 3], reason=reasons.get((sid, ts), "") if reasons else ""))
    return out


class _ReplayPlan:
    """Which stored rows a replay must fold so that its final state is exactly the full replay's.

    ``twin.live`` folds every sample time as one batch. The state at the end depends on the whole
    sequence only for some signals; the others matter only through their last value. Per series:

    * **full** (kept): status signals, signals an alarm rule watches, everything of inventory items
      and unknown assets.
    * **latest**: other machine signals only set their ``SignalValue``; a row may go when a later
      row of the series follows in the window (the last one is kept; when it is a BAD/STALE row
      without a value, which carries the previous value, the whole series is kept).
    * **counter** (GOOD/SCRAP counters, not watched by an alarm): a GOOD in-range row may go when
      the previous and next such rows of the series bracket it (previous <= it <= next): the
      increases then add up to the same total; decreases (wraps, resets) and their neighbours stay.

    Whatever goes, three things are kept so the fold is the same at every sample time: the first
    and last row of each series; the first row of each asset at each sample time (the reducer
    groups a batch by asset in order of appearance and marks those assets changed for the alarm
    evaluation); and enough rows that no value looks stale at a sample time where its machine has
    no row unless it also was stale in the full replay (staleness marks a machine changed). Every
    sample time keeps at least one row, so the fold visits the same times.
    """

    def __init__(self, fleet: FleetSpec, site_spec: SiteSpec, names: dict[int, tuple[str, str]]) -> None:
        watched = {(r.signal, m.id) for r in fleet.alarms if r.signal is not None
                   for m in site_spec.machines if r.applies_to_machine(m)}
        one_us = ONE_US
        # series id -> (kind, machine id, stale threshold in µs, counter bits)
        self.series: dict[int, tuple[int, str, int, int]] = {}
        for sid, (asset, signal) in names.items():
            machine = site_spec.machine(asset)
            if machine is None:
                self.series[sid] = (_FULL, asset, 0, 0)
                continue
            thr_us = timedelta(seconds=fleet.stale_after_polls * machine.poll_interval_s) // one_us
            sig = machine.template.signal(signal)
            if sig is not None and (sig.kind is SignalKind.STATUS or (sig.name, machine.id) in watched):
                kind = _FULL
            elif sig is not None and sig.kind in (SignalKind.GOOD_COUNT, SignalKind.SCRAP_COUNT):
                kind = _COUNTER
            else:
                kind = _LATEST
            self.series[sid] = (kind, asset, thr_us, sig.counter_bits if sig is not None else 0)
        self.asset_of = {sid: asset for sid, (asset, _) in names.items()}
        self.names = names

    def reduce(self, rows: list[_Row]) -> list[_Row]:
        """The rows to fold (a subsequence of ``rows``, which are in (time, series id) order)."""
        if not rows:
            return rows
        series = self.series
        n = len(rows)
        keep = [False] * n
        # rows of each series that may be thinned, by index; None: a series folded whole
        lists: dict[int, list[int] | None] = {sid: (None if kind == _FULL else []) for sid, (kind, _, _, _)
                                              in series.items()}
        asset_of = self.asset_of
        seen: set[tuple[int, str]] = set()  # (time, asset) with a row kept
        for i, row in enumerate(rows):
            sid = row[0]
            key = (row[1], asset_of[sid])
            if key not in seen:  # the asset's first row at this time
                seen.add(key)
                keep[i] = True
            idx = lists[sid]
            if idx is None:
                keep[i] = True
            else:
                idx.append(i)
        own: dict[str, set[int]] = {}  # asset -> its sample times
        for ts, asset in seen:
            own.setdefault(asset, set()).add(ts)
        times = sorted({ts for ts, _ in seen})
        by_series = {sid: idx for sid, idx in lists.items() if idx}
        foreign: dict[str, list[int]] = {}
        for sid, idx in by_series.items():
            kind, asset, thr_us, bits = series[sid]
            last = rows[idx[-1]]
            if kind == _LATEST and last[2] is None and last[3] & 3 and not last[3] & _NAN:
                for i in idx:  # the last row carries an earlier value: keep the series whole
                    keep[i] = True
                continue
            keep[idx[0]] = keep[idx[-1]] = True
            if len(idx) < 3:
                continue
            fm = foreign.get(asset)
            if fm is None:
                mine = own.get(asset, set())
                fm = foreign[asset] = [t for t in times if t not in mine]
            droppable = self._counter_droppable(rows, idx, bits) if kind == _COUNTER else None
            kept_ts = rows[idx[0]][1]
            for j in range(1, len(idx) - 1):
                i = idx[j]
                if not keep[i]:
                    if droppable is None or droppable[j]:
                        # no sample time without this machine after the last kept row's value turns
                        # stale and before the next row of the series: dropping this row shows nothing
                        k = bisect_right(fm, kept_ts + thr_us)
                        if k == len(fm) or fm[k] >= rows[idx[j + 1]][1]:
                            continue
                    keep[i] = True
                kept_ts = rows[i][1]
        return [row for row, k in zip(rows, keep, strict=True) if k]

    @staticmethod
    def _counter_droppable(rows: list[_Row], idx: list[int], bits: int) -> list[bool]:
        """Per row of one counter series: whether it may go (previous valid <= it <= next valid).

        Valid: what ``twin.live`` takes as a counter value, a GOOD unsigned ``bits``-wide integer
        (an integral float too; bools are stored with a flag and are not).
        """
        top = 1 << bits
        vals: list[int | float | None] = []
        for i in idx:
            _, _, v, f = rows[i]
            vt = type(v)
            ok = (f == 0 and (vt is int or (vt is float and v.is_integer()))  # type: ignore[union-attr]
                  and 0 <= v < top)  # type: ignore[operator]
            vals.append(v if ok else None)  # type: ignore[arg-type]
        out = [False] * len(idx)
        nxt: int | float | None = None
        after: list[int | float | None] = [None] * len(idx)
        for j in range(len(idx) - 1, -1, -1):
            after[j] = nxt
            if vals[j] is not None:
                nxt = vals[j]
        prev: int | float | None = None
        for j, v in enumerate(vals):
            if v is not None:
                a = after[j]
                out[j] = prev is not None and a is not None and prev <= v <= a
                prev = v
        return out
