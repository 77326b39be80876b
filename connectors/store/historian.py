"""The embedded historian: one SQLite file in WAL mode, written by the collector, read by anyone.

The file's layout is ``connectors.store.schema``. ``write`` commits one transaction
(``synchronous=FULL``) before it returns: that is the acknowledgement (the write path is
``connectors.store.ingest``). Other processes read the file at the same time (``readonly=True``
opens it read-only). Only GOOD finite numbers (bools as 0/1) enter series and rollups; ``series``
uses raw rows when a bucket would be shorter than one rollup interval and the range is still
within the raw retention, rollups otherwise (``connectors.store.rollups``; rollup buckets at the
edges may include data just outside the range).

``state_at`` replays the readings after the latest checkpoint, but folds only the rows that can
change the result (``connectors.store.replay``), so a replay costs what the status changes cost,
not what the polls cost. The result is exactly the full replay's. Retention thins old checkpoints
(``apply_retention``, ``connectors.store.retention``); batches for a forwarder wait in the outbox
(``connectors.store.outbox``).

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
import sqlite3
import threading
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.store import outbox as outbox_table
from connectors.store import retention, rollups
from connectors.store.ingest import write_readings
from connectors.store.outbox import OutboxBuilder
from connectors.store.replay import ReplayPlan, row_ts
from connectors.store.schema import NUMERIC, SCHEMA, SCHEMA_VERSION, Row, from_us, to_readings, to_us
from twin.codec import event_from_dict, event_to_dict, site_state_from_dict, site_state_to_dict
from twin.errors import HistorianError
from twin.historian import SeriesKey, SeriesPoint, SeriesResult, fold_readings, replay_site
from twin.limits import Limits, check_series_request
from twin.readings import Reading
from twin.spec import FleetSpec, SiteId
from twin.state import Event, SiteState

__all__ = ["SqliteHistorian"]

log = logging.getLogger("connectors.store")  # the name the historian has always logged under


class SqliteHistorian:
    """The embedded historian (see the module docstring for guarantees).

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
        self._plans: dict[str, ReplayPlan] = {}
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
                self._db.executescript(SCHEMA)
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
                write_readings(db, readings, self._ids, self.rollup_us)
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
                outbox_table.put(db, self._outbox(readings, states, events))

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
                    out.append(SeriesResult(key=key, points=rollups.read(db, sid, a, b, max_points, self.rollup_us),
                                            downsampled=True))
                    continue
                raw = db.execute(
                    f"SELECT ts, value FROM readings WHERE series_id = ? AND ts BETWEEN ? AND ? AND {NUMERIC} "
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
                    f"WHERE series_id = ? AND ts BETWEEN ? AND ? AND {NUMERIC} GROUP BY b ORDER BY b",
                    (a, width, sid, a, b),
                ).fetchall()
                pts = tuple(SeriesPoint(ts=from_us(a + k * width), value=float(mean), min=float(lo), max=float(hi),
                                        count=int(n)) for k, mean, lo, hi, n in grouped)
                out.append(SeriesResult(key=key, points=pts, downsampled=True))
        return out

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
        return to_readings(site, names, rows, reasons)

    def _site_rows(
        self, db: sqlite3.Connection, site: str, after: int | None, until: int
    ) -> tuple[dict[int, tuple[str, str]], list[Row], dict[tuple[int, int], str]]:
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

        The replay folds only the readings that can change the result (``connectors.store.replay``): the
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
            plan = self._plans[site] = ReplayPlan(self.fleet, site_spec, names)
        if base is None:
            everything = to_readings(site, names, plan.reduce(rows), reasons)
            return replay_site(self.fleet, site, None, everything, t)
        keep = tu - self.replay_margin_us
        split = bisect_right(rows, keep, key=row_ts)
        older, newer = rows[:split], rows[split:]
        mid = fold_readings(self.fleet, site, base, to_readings(site, names, plan.reduce(older), reasons))
        if after is None or keep > after:
            self._replays[site] = (cp_ts, keep, mid)
        return replay_site(self.fleet, site, mid, to_readings(site, names, plan.reduce(newer), reasons), t)

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

        Returns how many readings were deleted; see ``connectors.store.retention`` for what stays.
        """
        if self.retention_raw_days is None:
            return 0
        horizon = to_us(now - timedelta(days=self.retention_raw_days))
        with self._writing() as db:
            deleted, thinned = retention.delete_before(db, horizon)
        self._replays.clear()
        log.info("retention: %d raw readings and %d checkpoints before %s deleted from %s", deleted, thinned,
                 from_us(horizon), self.path)
        return deleted

    def outbox_pending(self, limit: int) -> list[tuple[int, str]]:
        """Up to ``limit`` outbox batches after the forward cursor, oldest first."""
        with self._reading() as db:
            return outbox_table.pending(db, limit)

    def outbox_done(self, last_id: int) -> None:
        """Move the durable forward cursor to ``last_id`` and drop the batches it passed."""
        with self._writing() as db:
            outbox_table.done(db, last_id)

    def outbox_backlog(self) -> int:
        """How many batches wait to be forwarded."""
        with self._reading() as db:
            return outbox_table.backlog(db)

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

