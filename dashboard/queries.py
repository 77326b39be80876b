"""The dashboard's read side: ``QueryService`` reads the historian, caches what it read, and serves view-models.

It reads the historian (a ``twin.historian.HistorianReader``: the dashboard never writes; an
acknowledgement goes to its ``EventRecorder``, the collector) and the static ``FleetSpec``, caches
what it read for a short time (so a ``dcc.Interval`` in every open tab costs one historian read per TTL, not
one per tab), keeps the fleet tiles and the site views someone looks at fresh on a refresher thread,
and hands the snapshots to the pure builders of ``dashboard.views``, which make the frozen
``dashboard.viewmodels`` that the pages draw.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from cachetools import TLRUCache

from dashboard.viewmodels import AlarmRow, MachineTile, MachineView, SiteTile, SiteView, TimelineSegment
from dashboard.views import (
    alarm_journal,
    alarm_row,
    filter_alarms,
    local_midnight,
    machine_tile,
    machine_view,
    newest_sample,
    signal_options,
    site_tile,
    site_view,
    timeline_segments,
)
from twin import live
from twin.errors import AlarmError
from twin.frozen import FrozenDict
from twin.historian import EventRecorder, HistorianReader, SeriesKey, SeriesResult, history_start
from twin.limits import MAX_COMMENT_CHARS
from twin.spec import FleetSpec, MachineStatus, SiteSpec
from twin.state import AlarmState, Event, EventKind, SiteState

__all__ = ["ACK_JOURNAL_H", "MAX_ACK_COMMENT_CHARS", "DerivedAlarms", "QueryService"]

log = logging.getLogger(__name__)
MAX_ACK_COMMENT_CHARS = MAX_COMMENT_CHARS  # an acknowledgement's comment (the pages' input has the same maxLength)
ACK_JOURNAL_H = 720  # an alarm may be acknowledged while in the journal of the last 30 days
T = TypeVar("T")

HISTORY_SEARCH = timedelta(days=400)  # how far back history_start looks for a site's first record
KNOWN_SINCE_LOOKBACK = timedelta(days=2)  # how far back a status is followed through data gaps
SETTLED = timedelta(minutes=1)  # a moment this far back is history: the collector has written it (one flush)


class DerivedAlarms(Protocol):
    """Alarms this process derives itself and never writes to the historian (``dashboard.trust``'s drift).

    A site's current instances are shown like the historian's; its cleared ones in the journal.
    """

    def current_alarms(self, site: str) -> list[AlarmState]: ...

    def past_alarms(self, site: str) -> list[AlarmRow]: ...


class _TtlCache:
    """``cachetools.TLRUCache`` behind a lock, each entry kept for its own TTL (from when it was asked for).

    The refresher thread and the request threads share one cache and cachetools' caches are not
    thread-safe: every access holds the lock, but a value is computed outside it (a slow historian
    read must not hold up every other request; two threads missing the same key both read it).
    Full, the cache drops what has expired first, then the least recently used.
    """

    def __init__(self, monotonic: Callable[[], float], max_entries: int = 4096) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._data: TLRUCache[Hashable, _Entry] = TLRUCache(
            maxsize=max_entries, ttu=lambda _key, entry, _now: entry.expires, timer=monotonic
        )

    def get(self, key: Hashable, ttl_s: float, compute: Callable[[], T]) -> T:
        asked = self._monotonic()  # the TTL runs from the request, not from when the slow read ended
        with self._lock:
            hit = self._data.get(key)
        if hit is not None:
            found: T = hit.value
            return found
        value = compute()
        with self._lock:
            self._data[key] = _Entry(expires=asked + ttl_s, value=value)
        return value

    def clear(self, keep: Callable[[Hashable], bool] | None = None) -> None:
        with self._lock:
            if keep is None:
                self._data.clear()
                return
            for key in [k for k in self._data if not keep(k)]:
                self._data.pop(key, None)


@dataclass(frozen=True, slots=True)
class _Entry:
    """A cached value and when it expires (monotonic seconds: ``_TtlCache``'s time-to-use reads it)."""

    expires: float
    value: Any


@dataclass(slots=True, kw_only=True)
class QueryService:
    """Read-side service of the dashboard over a historian, with a short TTL cache.

    ``clock`` gives the current UTC time (the live pages are the replay at ``clock()``); snapshots
    of the past (start of day, a week ago) are cached longer than the live one.

    ``start_refresher()`` starts a thread owned by this service that recomputes the fleet tiles
    every ``ttl_s``: the fleet page then only reads the latest tiles and never waits for the
    historian, however many sites there are. The same thread recomputes the site views of the sites
    someone looked at in the last ``hot_s`` seconds, so a site page's interval refresh only reads
    a finished view-model (the first view of a site computes it once, inline). ``stop_refresher()``
    (or ``close()``) ends the thread.
    """

    fleet: FleetSpec
    historian: HistorianReader
    clock: Callable[[], datetime]
    ttl_s: float = 2.0
    past_ttl_s: float = 300.0
    site_stale_s: float = 60.0
    hot_s: float = 30.0
    monotonic: Callable[[], float] = time.monotonic
    derived_alarms: DerivedAlarms | None = None  # alarms of this process added to every site's (not stored)
    recorder: EventRecorder | None = None  # where acknowledgements go: the collector's endpoint
    _cache: _TtlCache = field(init=False, repr=False)
    _tiles: tuple[float, list[SiteTile]] | None = field(init=False, repr=False, default=None)
    _views: dict[str, tuple[float, SiteView]] = field(init=False, repr=False, default_factory=dict)
    _hot: dict[str, float] = field(init=False, repr=False, default_factory=dict)
    _stop: threading.Event = field(init=False, repr=False)
    _refresher: threading.Thread | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self._cache = _TtlCache(self.monotonic)
        self._stop = threading.Event()

    # -- background refresh of the fleet tiles
    def start_refresher(self) -> None:
        """Recompute the fleet tiles every ``ttl_s`` on a daemon thread of this service (idempotent)."""
        if self._refresher is not None and self._refresher.is_alive():
            return
        self._stop.clear()
        self._refresh_tiles()  # the first view never waits on an empty cache
        self._refresher = threading.Thread(target=self._refresh_loop, name="dashboard-fleet-refresher", daemon=True)
        self._refresher.start()

    def stop_refresher(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join(timeout_s)
            self._refresher = None

    close = stop_refresher

    def _refresh_tiles(self) -> None:
        now = self.now()
        tiles = [self._site_tile(s, now) for s in self.fleet.sites]
        self._tiles = (self.monotonic(), tiles)
        since = self.monotonic() - self.hot_s
        for site_id in [k for k, seen in list(self._hot.items()) if seen >= since]:
            view = self._site_view(site_id)
            self._views[site_id] = (self.monotonic(), view)
        for site_id in [k for k, seen in list(self._hot.items()) if seen < since]:
            self._hot.pop(site_id, None)
            self._views.pop(site_id, None)

    def _recent(self, stamped: tuple[float, T] | None) -> T | None:
        """What the refresher made, if it is running and made it recently enough."""
        if stamped is None or self._refresher is None or self.monotonic() - stamped[0] > 3 * self.ttl_s + 1.0:
            return None
        return stamped[1]

    def _refresh_loop(self) -> None:
        last_error = ""
        while not self._stop.wait(self.ttl_s):
            try:
                self._refresh_tiles()
                last_error = ""
            except Exception as exc:  # keep refreshing; the tiles' age shows the data is old
                if str(exc) != last_error:
                    log.exception("refreshing the fleet tiles failed")
                last_error = str(exc)

    # -- raw reads, cached
    def now(self) -> datetime:
        return self.clock()

    def state_at(self, site: str, t: datetime, *, ttl_s: float | None = None) -> SiteState | None:
        return self._cache.get(("state", site, t), self.ttl_s if ttl_s is None else ttl_s,
                               lambda: self.historian.state_at(site, t))

    def _live_state(self, site: str, now: datetime) -> SiteState | None:
        # keyed by site only: every tab and every interval within the TTL shares one read
        return self._cache.get(("live", site), self.ttl_s, lambda: self.historian.state_at(site, now))

    def _snapshot(self, site: str, t: datetime, live_state: SiteState | None) -> SiteState | None:
        """The site at ``t`` in the past, kept ``past_ttl_s`` only once the history has reached ``t``.

        Until the live state holds a sample at or after ``t``, the store may still be filling in the
        time before ``t`` (``twin demo`` backfills while the dashboard runs; a collector writes behind
        by one flush): what it says about ``t`` then (nothing, or an older state brought forward) is
        not final and is kept only ``ttl_s``. Kept longer, it made today's output and OEE count the
        whole history for five minutes.
        """
        newest = newest_sample(live_state)
        final = newest is not None and newest >= t
        return self.state_at(site, t, ttl_s=self.past_ttl_s if final else self.ttl_s)

    def _window_start(self, site: str, t0: datetime, start: SiteState | None) -> SiteState | None:
        """The snapshot a KPI window begins with: ``start`` (at ``t0``), else the history's first moment.

        A window reaching back before the recorded history (a 7-day OEE over 2 days of data) counts
        its planned time from where the data begins, not days with no data as planned and not run.
        """
        if start is not None:
            return start
        first = self.history_start(site, before=t0)  # no state at t0: the history begins after it
        if first is None or first <= t0:
            return None
        return self.state_at(site, first, ttl_s=self.past_ttl_s)

    def _past_state(self, site: str, t: datetime, live_state: SiteState | None) -> SiteState | None:
        bucket = t.replace(second=0, microsecond=0, minute=t.minute - t.minute % 5)
        return self._snapshot(site, bucket, live_state)

    def _usage_base(self, site: str, now: datetime, live_state: SiteState | None) -> SiteState | None:
        """The snapshot consumption is averaged from: a week ago, else a day ago, else four hours ago."""
        for back in (timedelta(days=7), timedelta(days=1), timedelta(hours=4)):
            state = self._past_state(site, now - back, live_state)
            if state is not None:
                return state
        return None

    def events(self, site: str | None, t0: datetime, t1: datetime) -> list[Event]:
        return self._cache.get(("events", site, t0, t1), self.ttl_s, lambda: self.historian.events(site, t0, t1))

    def series(self, keys: Sequence[SeriesKey], t0: datetime, t1: datetime, max_points: int) -> list[SeriesResult]:
        return self._cache.get(("series", tuple(keys), t0, t1, max_points), self.ttl_s,
                               lambda: self.historian.series(keys, t0, t1, max_points))

    def invalidate(self, *, keep_past: bool = False) -> None:
        """Forget what is cached (after a write of our own); ``keep_past`` keeps snapshots of the past."""
        self._cache.clear((lambda k: isinstance(k, tuple) and k[0] == "state") if keep_past else None)

    # -- view-models
    def fleet_tiles(self) -> list[SiteTile]:
        """Every site's tile: the refresher's latest (when running and recent), else read now (TTL-cached)."""
        latest = self._tiles
        if latest is not None and self.monotonic() - latest[0] <= 3 * self.ttl_s + 1.0:
            return latest[1]
        now = self.now()
        return self._cache.get(
            ("fleet-tiles",), self.ttl_s, lambda: [self._site_tile(s, now) for s in self.fleet.sites]
        )

    def _current_alarms(self, site: str, live_state: SiteState | None, *, derived: bool = True) -> list[AlarmState]:
        """The site's current alarm states: the historian's and (``derived``) those this process derives."""
        current = list(live_state.alarms.values()) if live_state else []
        if derived and self.derived_alarms is not None:
            current += self.derived_alarms.current_alarms(site)
        return current

    def _site_tile(self, site: SiteSpec, now: datetime, alarms: Sequence[AlarmRow] | None = None, *,
                   state: SiteState | None = None, replay: bool = False) -> SiteTile:
        live_state = state if replay else self._live_state(site.id, now)
        if alarms is None and self.derived_alarms is not None:
            alarms = [alarm_row(a) for a in self._current_alarms(site.id, live_state)]
        midnight = local_midnight(now, site.timezone)
        start = self._window_start(site.id, midnight, self._snapshot(site.id, midnight, live_state))
        past = self._usage_base(site.id, now, live_state)
        return site_tile(site, self.fleet, live_state, start, past, now, site_stale_s=self.site_stale_s, alarms=alarms)

    def site_view(self, site_id: str) -> SiteView:
        """A site's view: the refresher's latest for a site looked at recently, else read now (TTL-cached).

        The same view object is returned until the next refresh, so a page may key its rendered
        components on it.
        """
        self.fleet.site(site_id)  # unknown sites raise before being remembered
        self._hot[site_id] = self.monotonic()
        latest = self._recent(self._views.get(site_id))
        if latest is not None:
            return latest
        return self._cache.get(("site-view", site_id), self.ttl_s, lambda: self._site_view(site_id))

    def site_view_at(self, site_id: str, at: datetime | None) -> SiteView:
        """The site page as it was at ``at`` (a replay's cursor, the header's moment); live for None or the future.

        The same builders as the live view, given the snapshots of ``at`` instead of now: "the live
        view is the replay at now". A moment older than ``SETTLED`` is history and kept ``past_ttl_s``.
        """
        self.fleet.site(site_id)
        now = self.now()
        if at is None or at >= now:
            return self.site_view(site_id)
        ttl = self.past_ttl_s if now - at > SETTLED else self.ttl_s
        return self._cache.get(("site-view-at", site_id, at), ttl, lambda: self._site_view(site_id, at))

    def _site_view(self, site_id: str, at: datetime | None = None) -> SiteView:
        now = self.now()
        replay = at is not None and at < now
        t = at if at is not None and replay else now
        site = self.fleet.site(site_id)
        live_state = (self.state_at(site.id, t, ttl_s=self.past_ttl_s if now - t > SETTLED else self.ttl_s)
                      if replay else self._live_state(site.id, now))
        alarms = self._site_alarms(site, live_state, t, derived=not replay)
        tile = self._site_tile(site, t, alarms, state=live_state, replay=replay)
        midnight = local_midnight(t, site.timezone)
        start = self._window_start(site.id, midnight, self._snapshot(site.id, midnight, live_state))
        past = self._usage_base(site.id, t, live_state)
        known = {m.id: self._known_since(site.id, m.id, live_state) for m in site.machines}
        return site_view(site, self.fleet, tile, live_state, start, past, alarms, known, t, live=not replay)

    def _known_since(self, site: str, machine: str, live_state: SiteState | None) -> datetime | None:
        """When a machine's current status began, through data gaps it came back from in the same status.

        Only a machine whose current status began by coming back from UNKNOWN (the site's recent
        events say so) is looked up: the STATUS_CHANGE events of up to ``KNOWN_SINCE_LOOKBACK``
        before, read once per outage (the answer does not change while the status lasts).
        """
        m = live_state.machines.get(machine) if live_state else None  # type: ignore[call-overload]
        if live_state is None or m is None or m.status_since is None or m.status is MachineStatus.UNKNOWN:
            return None
        since = m.status_since
        back = any(e.asset == machine and e.ts == since and e.kind is EventKind.STATUS_CHANGE
                   and e.data.get("from") == MachineStatus.UNKNOWN.value for e in live_state.recent_events)
        if not back:
            return None
        return self._cache.get(
            ("known-since", site, machine, since), self.past_ttl_s,
            lambda: live.status_known_since(self.events(site, since - KNOWN_SINCE_LOOKBACK, since), machine,
                                            m.status, since))

    def history_start(self, site: str, *, before: datetime | None = None) -> datetime | None:
        """The first moment of ``site``'s recorded history (to the minute), None without any.

        The historian has a state at ``t`` exactly from the first reading on (``state_at`` is None
        before): found by bisection over the last ``HISTORY_SEARCH``, kept ``past_ttl_s``. ``before``,
        a time the caller found no state at, bounds the search to after it: the fleet tiles' OEE
        window of a site whose history began today bisects its hours (about 12 reads), not 400 days
        (about 27 reads that replayed from the first checkpoint: 88 % of a cold fleet page).
        """
        def search() -> datetime | None:
            now = self.now()
            span = HISTORY_SEARCH if before is None else min(HISTORY_SEARCH, max(now - before, timedelta(0)))
            return history_start(self.historian, site, now, span)

        found = self._cache.get(("history-start", site), self.past_ttl_s, search)
        if found is None:  # no history yet: look again at the next refresh, not in five minutes
            self._cache.clear(lambda k: k != ("history-start", site))
        return found

    def _site_alarms(self, site: SiteSpec, live_state: SiteState | None, now: datetime, *,
                     derived: bool = True) -> list[AlarmRow]:
        current = self._current_alarms(site.id, live_state, derived=derived)
        if not current:
            return []
        t0 = min(a.raised_at for a in current)
        events = [e for e in self.events(site.id, t0, now) if e.kind is EventKind.ALARM_ACKNOWLEDGED]
        return alarm_journal(current, events)

    def machine_tiles_at(self, site_id: str, t: datetime) -> list[MachineTile]:
        """Machine tiles of a site as they were at ``t`` (replay)."""
        site = self.fleet.site(site_id)
        state = self._snapshot(site_id, t, self._live_state(site_id, self.now()))
        return [
            machine_tile(m, state.machines.get(m.id) if state else None, t, self.fleet.stale_after_polls)
            for m in site.machines
        ]

    def timeline(self, site_id: str, hours: float = 8.0, *, start: datetime | None = None,
                 end: datetime | None = None) -> list[TimelineSegment]:
        """Status segments of a site's machines over ``start``..``end`` (default: the last ``hours`` to now)."""
        now = self.now()
        t1 = min(end, now) if end is not None else now
        t0 = start if start is not None and start < t1 else t1 - timedelta(hours=hours)
        site = self.fleet.site(site_id)
        first = self._past_state(site_id, t0, self._live_state(site_id, now))
        return timeline_segments(site, first, self.events(site_id, first.as_of if first else t0, t1), t0, t1)

    def signal_options(self, site_id: str) -> list[tuple[str, str]]:
        """Numeric signals of a site's machines as (name, unit), in template order."""
        return signal_options(self.fleet.site(site_id))

    def site_trend(self, site_id: str, signal: str, hours: float, max_points: int = 300, *,
                   end: datetime | None = None) -> list[SeriesResult]:
        """One signal of every machine of a site over the ``hours`` before ``end`` (default now)."""
        t1 = min(end, self.now()) if end is not None else self.now()
        keys = [SeriesKey(site=site_id, asset=m.id, signal=signal)
                for m in self.fleet.site(site_id).machines if m.template.signal(signal) is not None]
        if not keys:
            return []
        return self.series(keys, t1 - timedelta(hours=hours), t1, max_points)

    def machine_view(
        self, site_id: str, machine_id: str, hours: float, signals: Sequence[str], max_points: int = 1000, *,
        start: datetime | None = None, end: datetime | None = None,
    ) -> MachineView:
        """A machine over ``start``..``end`` (default: the last ``hours`` to now), its tile as at ``end``."""
        real_now = self.now()
        now = min(end, real_now) if end is not None else real_now
        t0 = start if start is not None and start < now else now - timedelta(hours=hours)
        site = self.fleet.site(site_id)
        spec = site.machine(machine_id)
        if spec is None:
            raise KeyError(machine_id)
        live_state = (self._live_state(site_id, now) if now == real_now else
                      self.state_at(site_id, now, ttl_s=self.past_ttl_s if real_now - now > SETTLED else self.ttl_s))
        window_start = self._window_start(site_id, t0, self._past_state(site_id, t0, live_state))
        keys = [SeriesKey(site=site_id, asset=machine_id, signal=s) for s in signals if spec.template.signal(s)]
        series = self.series(keys, t0, now, max_points) if keys else []
        return machine_view(site, spec, self.fleet, live_state, window_start, series, self.events(site_id, t0, now),
                            self._known_since(site_id, machine_id, live_state), t0, now)

    def alarm_rows(
        self,
        *,
        sites: Sequence[str] | None,
        priorities: Sequence[int] | None,
        states: Sequence[str] | None,
        hours: float,
    ) -> list[AlarmRow]:
        """The alarm journal of the last ``hours``, filtered; ``states`` among active, cleared, acked, unacked."""
        now = self.now()
        t0 = now - timedelta(hours=hours)
        chosen = [s for s in self.fleet.sites if not sites or s.id in sites]
        rows: list[AlarmRow] = []
        for site in chosen:
            live_state = self._live_state(site.id, now)
            rows += alarm_journal(self._current_alarms(site.id, live_state), self.events(site.id, t0, now),
                                  initial=self.statuses_at(site.id, t0, live_state))
            if self.derived_alarms is not None:
                rows += self.derived_alarms.past_alarms(site.id)
        return filter_alarms(rows, t0, priorities, states)

    def statuses_at(self, site: str, t: datetime, live_state: SiteState | None) -> dict[tuple[str, str], MachineStatus]:
        """Each machine's status at ``t`` (``(site, machine)`` -> status), as the journal's window starts there.

        The snapshot of the 5 minutes before (``_past_state``: cached ``past_ttl_s`` once final), then the
        status changes from it to ``t``: what ``connectors.export`` reads as the history's state at ``t``.
        """
        first = self._past_state(site, t, live_state)
        if first is None:
            return {}
        status = {(site, str(m)): ms.status for m, ms in first.machines.items()}
        for e in self.events(site, first.as_of, t):
            if e.kind is EventKind.STATUS_CHANGE and e.ts <= t:
                try:
                    status[(site, str(e.asset))] = MachineStatus(e.data.get("to"))
                except ValueError:
                    status[(site, str(e.asset))] = MachineStatus.UNKNOWN
        return status

    def acknowledge(self, *, site: str, key: str, user: str, comment: str) -> Event:
        """Record that ``user`` acknowledged alarm ``key`` at ``site`` (an ALARM_ACKNOWLEDGED event).

        Checked here, where the acknowledgement is accepted (a client may send anything): the comment
        is at most ``MAX_ACK_COMMENT_CHARS`` long, and the alarm exists (active now, or in the journal of
        the last ``ACK_JOURNAL_H`` hours): ``AlarmError`` otherwise, and nothing is written. The event
        goes to ``recorder`` (the collector's endpoint) and comes back through the historian.
        """
        if len(comment) > MAX_ACK_COMMENT_CHARS:
            raise AlarmError(f"comment: at most {MAX_ACK_COMMENT_CHARS} characters (got {len(comment):,})")
        if site not in {s.id for s in self.fleet.sites}:
            raise AlarmError(f"site: no site {site[:100]!r} in the fleet: nothing acknowledged")
        now = self.now()
        rule, _, asset = key.partition(":")
        live_state = self._live_state(site, now)
        alarm = live_state.alarms.get(key) if live_state else None
        if alarm is None and not any(r.key == key for r in self.alarm_rows(
                sites=[site], priorities=None, states=None, hours=ACK_JOURNAL_H)):
            raise AlarmError(f"key: no alarm {key[:200]!r} at {site} (active or in the last "
                             f"{ACK_JOURNAL_H // 24} days): nothing acknowledged")
        event = Event(
            ts=now, site=self.fleet.site(site).id, asset=asset, kind=EventKind.ALARM_ACKNOWLEDGED,
            message=f"acknowledged by {user}" + (f": {comment}" if comment else ""),
            data=FrozenDict({"rule": rule, "key": key, "user": user, "comment": comment,
                             "priority": int(alarm.priority) if alarm else None}),
        )
        if self.recorder is None:
            raise AlarmError("acknowledging alarms needs the collector's endpoint ([feeds.http] in the plant "
                             "file): nothing acknowledged")
        self.recorder.record((event,))
        log.info("alarm %s at %s acknowledged by %s", key, site, user)
        self.invalidate()
        return event
