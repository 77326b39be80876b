"""The Shift page's service: a site's shifts, each shift's report, and the people's classifications and shelvings.

``ShiftService`` reads through the dashboard's ``QueryService`` (its historian, clock and recorder)
and builds a shift's report with a ``ShiftReports`` (``app.report.DashboardReports``: the same
numbers, HTML page and PDF as ``twin report``; the dashboard may not import ``app``, so the
composition root hands it in). A report is kept ``ttl_s`` seconds per (site, shift) and dropped when
someone records something. A classification or a shelving is checked here (role, reason of the
site's tree, a stop that needs a person, an alarm of the shift or active now, a duration within the
maximum) and recorded as an operator event through the collector's endpoint, like an
acknowledgement; the collector checks it again against the plant file. The Shift, Site and Machine
pages all record reasons through ``record_reasons`` (the operator role) and list today's stops that
need one with ``needing_reason``; ``authorise_shelving`` says who may make a shelving change
(ISA-18.2: the operator shelves, the engineer takes out of service).

Usage::

    shifts = ShiftService(queries=queries, reports=DashboardReports(queries.historian, queries.fleet))
    window = shifts.default_window("pod-lyon")
    rep = shifts.report("pod-lyon", window)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from dashboard.auth import CurrentUser, UserRole, require
from dashboard.queries import MAX_ACK_COMMENT_CHARS, QueryService
from twin import codec
from twin.alarm_shelving import MAX_SHELVE_S
from twin.downtime import Stop
from twin.errors import AlarmError, HistorianError
from twin.frozen import FrozenDict
from twin.shift import ShiftReport, ShiftWindow, shift_windows
from twin.spec import SiteId
from twin.state import Event, EventKind

__all__ = ["CHANGES", "CHANGE_ROLES", "SHIFTS_BACK", "SO_FAR_MARGIN", "NoReports", "ShiftReports", "ShiftService",
           "authorise_shelving", "shift_service", "stop_id"]

log = logging.getLogger(__name__)

SHIFTS_BACK = timedelta(days=7)  # the shifts offered: those that started in the last 7 days
SO_FAR_MARGIN = timedelta(milliseconds=1)  # the shift in progress ends just after now (see ``windows``)
CHANGES = {"shelved": "Shelve", "unshelved": "Unshelve", "out_of_service": "Take out of service",
           "in_service": "Return to service"}
# who may make each change (ISA-18.2 / EEMUA 191): the operator shelves (one-shot or timed) and unshelves;
# taking an alarm out of service, and back, is maintenance under management of change: the engineer's
CHANGE_ROLES = {"shelved": UserRole.OPERATOR, "unshelved": UserRole.OPERATOR, "out_of_service": UserRole.ENGINEER,
                "in_service": UserRole.ENGINEER}
_CHANGE_ACTIONS = {"shelved": "shelving alarms", "unshelved": "unshelving alarms",
                   "out_of_service": "taking alarms out of service", "in_service": "returning alarms to service"}


def authorise_shelving(user: CurrentUser | None, change: str | None) -> CurrentUser:
    """``user`` if its role allows ``change`` (``CHANGE_ROLES``; an unknown change needs the operator role)."""
    key = change if change in CHANGE_ROLES else "shelved"
    return require(user, CHANGE_ROLES[key], _CHANGE_ACTIONS[key])


def stop_id(machine: str, start: datetime, window: ShiftWindow | None = None) -> str:
    """A reason picker's ``stop``: ``MACHINE|START`` (the page's shift) or ``MACHINE|START|SHIFT_START``."""
    return f"{machine}|{start.isoformat()}" + (f"|{window.start.isoformat()}" if window is not None else "")


class ShiftReports(Protocol):
    """Builds and renders a shift's report (``app.report.DashboardReports``)."""

    def report(self, site: str, window: ShiftWindow) -> ShiftReport: ...

    def html(self, rep: ShiftReport) -> str: ...

    def pdf(self, rep: ShiftReport) -> bytes: ...  # raises TwinError when no PDF can be made here

    def pdf_problem(self) -> str: ...  # why no PDF can be made here ("" when it can)


@dataclass(kw_only=True)
class ShiftService:
    """A site's shifts and their reports over ``queries``; records people's operator events through its recorder."""

    queries: QueryService
    reports: ShiftReports
    ttl_s: float = 10.0
    monotonic: Callable[[], float] = time.monotonic
    _cache: dict[tuple[str, datetime, datetime], tuple[float, ShiftReport]] = field(default_factory=dict,
                                                                                  repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def windows(self, site: str) -> list[ShiftWindow]:
        """The site's shifts that started in the last ``SHIFTS_BACK``, newest first.

        The one in progress is shown so far: to now and a millisecond (what was recorded this instant,
        at ``now``, is in it; a report's window excludes its end).
        """
        spec = self.queries.fleet.site(site)
        now = self.queries.now()
        so_far = now + SO_FAR_MARGIN
        out = []
        for w in shift_windows(spec, now - SHIFTS_BACK, now):
            out.append(w if w.end <= now else ShiftWindow(name=w.name, start=w.start, end=min(w.end, so_far)))
        return sorted(out, key=lambda w: w.start, reverse=True)

    def default_window(self, site: str) -> ShiftWindow | None:
        """The current shift (up to now), else the last one."""
        shown = self.windows(site)
        return shown[0] if shown else None

    def window(self, site: str, start: str | None) -> ShiftWindow | None:
        """The shift of ``site`` starting at ``start`` (ISO 8601, as offered), else the default one."""
        shown = self.windows(site)
        for w in shown:
            if start is not None and w.start.isoformat() == start:
                return w
        return shown[0] if shown else None

    def report(self, site: str, window: ShiftWindow) -> ShiftReport:
        """The report of ``window`` at ``site`` (kept ``ttl_s`` seconds; the historian is read once per key)."""
        key = (site, window.start, window.end)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and self.monotonic() - hit[0] < self.ttl_s:
                return hit[1]
            rep = self.reports.report(site, window)
            self._cache = {k: v for k, v in self._cache.items() if self.monotonic() - v[0] < self.ttl_s}
            self._cache[key] = (self.monotonic(), rep)
            return rep

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()
        self.queries.invalidate()

    def _record(self, event: Event) -> Event:
        recorder = self.queries.recorder
        if recorder is None:
            raise AlarmError("recording needs the collector's endpoint ([feeds.http] in the plant file): "
                             "nothing recorded")
        recorder.record((event,))
        self.invalidate()
        return event

    def classify(self, *, site: str, window: ShiftWindow, machine: str, start: datetime, reason: str, user: str,
                 comment: str) -> Event:
        """Record that ``user`` gave the stop of ``machine`` starting at ``start`` the reason ``reason``.

        ``AlarmError`` (nothing recorded) when the reason is not in the site's tree, the stop is not one
        of the shift's that need a person, or the comment is too long.
        """
        spec = self.queries.fleet.site(site)
        if spec.downtime.reason(reason) is None:
            known = ", ".join(r.id for r in spec.downtime.reasons)
            raise AlarmError(f"reason: {reason[:100]!r} is not in the downtime tree of {site} ({known})")
        if len(comment) > MAX_ACK_COMMENT_CHARS:
            raise AlarmError(f"comment: at most {MAX_ACK_COMMENT_CHARS} characters (got {len(comment):,})")
        rep = self.report(site, window)
        if not any(s.machine == machine and s.start == start and s.planned and (s.reason is None or s.by)
                   for s in rep.stops):
            raise AlarmError(f"no stop of {machine[:100]} at {start.isoformat()} that needs a person in this shift")
        event = Event(ts=self.queries.now(), site=spec.id, asset=machine, kind=EventKind.STOP_CLASSIFIED,
                      message=f"stop of {machine} at {start.isoformat()} classified as {reason} by {user}"
                              + (f": {comment}" if comment else ""),
                      data=FrozenDict({"start": codec.dt_to_json(start), "reason": reason, "user": user,
                                       "comment": comment}))
        log.info("stop of %s at %s classified as %s by %s", machine, start.isoformat(), reason, user)
        return self._record(event)

    def shelve(self, *, site: str, window: ShiftWindow, key: str, change: str, user: str, comment: str,
               timed_min: float | None = None) -> Event:
        """Record a shelving change of alarm ``key``: ``change`` one of ``CHANGES``; ``timed_min`` for a timed shelve.

        A comment is required (ISA-18.2: why). ``AlarmError`` (nothing recorded) for an alarm neither in
        the shift's journal nor active now, an unknown change, or a duration over ``MAX_SHELVE_S``.
        """
        if change not in CHANGES:
            raise AlarmError(f"change: one of {', '.join(CHANGES)} (got {change[:40]!r})")
        comment = comment.strip()
        if not comment:
            raise AlarmError("comment: say why (ISA-18.2 records the reason of every shelving)")
        if len(comment) > MAX_ACK_COMMENT_CHARS:
            raise AlarmError(f"comment: at most {MAX_ACK_COMMENT_CHARS} characters (got {len(comment):,})")
        if key not in self.alarm_keys(site, window):
            raise AlarmError(f"no alarm {key[:200]!r} at {site} in this shift or active now: nothing recorded")
        rule, _, asset = key.partition(":")
        data: dict[str, str | float | None] = {"rule": rule, "key": key, "change": change, "user": user,
                                               "comment": comment}
        label = CHANGES[change].lower()
        if change == "shelved":
            if timed_min is None:
                data["shelve"] = "one_shot"
                label = "shelved until it returns to normal"
            else:
                seconds = float(timed_min) * 60.0
                if not 0 < seconds <= MAX_SHELVE_S:
                    raise AlarmError(f"duration: more than 0 and at most {MAX_SHELVE_S / 60:g} min "
                                     f"(got {timed_min:g})")
                data.update(shelve="timed", duration_s=seconds)
                label = f"shelved for {timed_min:g} min"
        event = Event(ts=self.queries.now(), site=SiteId(site), asset=asset, kind=EventKind.ALARM_SHELVING,
                      message=f"{key} {label} by {user}: {comment}", data=FrozenDict(data))
        log.info("alarm %s at %s: %s by %s", key, site, change, user)
        return self._record(event)

    def today(self, site: str) -> list[ShiftWindow]:
        """The site's shifts that started today (site time) or are in progress, newest first."""
        spec = self.queries.fleet.site(site)
        now = self.queries.now()
        midnight = now.astimezone(ZoneInfo(spec.timezone)).replace(hour=0, minute=0, second=0, microsecond=0)
        return [w for w in self.windows(site) if w.start >= midnight or w.end > now]

    def needing_reason(self, site: str, machine: str | None = None) -> list[tuple[ShiftWindow, Stop]]:
        """The stops of today's shifts (``today``) in planned time that no rule explains and nobody classified.

        Of one machine, or of all the site's; newest first.
        """
        out = [(w, s) for w in self.today(site) for s in self.report(site, w).stops
               if s.planned and s.reason is None and (machine is None or s.machine == machine)]
        return sorted(out, key=lambda ws: (-ws[1].start.timestamp(), ws[1].machine))

    def record_reasons(self, *, site: str | None, user: CurrentUser | None, picks: Sequence[tuple[str, object]],
                       comment: str | None, window: ShiftWindow | None = None) -> str:
        """Record the reasons picked (``(stop_id, reason)``, an empty reason skipped) as ``user``; what was done.

        The operator role (``Forbidden`` otherwise, nothing recorded). A picker's stop names its shift
        (``stop_id`` with a window), else it is of ``window``. A reason the stop has already is skipped;
        ``AlarmError`` for a shift that is not offered, or as ``classify``.
        """
        who = require(user, UserRole.OPERATOR, "classifying stops")
        if site is None:
            raise AlarmError("site: pick a site")
        done = 0
        for stop, value in picks:
            if not value:
                continue
            machine, at, shift_start = [*str(stop).split("|", 2), "", ""][:3]
            w = window if not shift_start else self.window(site, shift_start)
            if w is None or (shift_start and w.start.isoformat() != shift_start):
                raise AlarmError(f"no shift of {site} starts at {shift_start[:40]!r} in the last 7 days: "
                                 "nothing recorded for that stop")
            start = datetime.fromisoformat(at)
            given: dict[tuple[str, datetime], str | None] = {(s.machine, s.start): s.reason
                                                             for s in self.report(site, w).stops}
            if given.get((machine, start)) == value:
                continue
            self.classify(site=site, window=w, machine=machine, start=start, reason=str(value), user=who.name,
                          comment=(comment or "").strip())
            done += 1
        if not done:
            return "Choose a reason for at least one stop."
        return f"{done} stop(s) classified by {who.name}."

    def alarm_keys(self, site: str, window: ShiftWindow) -> list[str]:
        """The alarms one may shelve: those of the shift's journal and those active now, sorted."""
        rep = self.report(site, window)
        keys = {a.key for a in rep.alarms.journal}
        state = self.queries.historian.state_at(site, self.queries.now())
        if state is not None:
            keys.update(a.key for a in state.alarms.values())
        keys.update(c.key for c in rep.shelving)
        return sorted(keys)


class NoReports:
    """Where the app was built without the reports service (``twin dashboard`` gives it): says so."""

    _WHY = "the shift's stops need the shift reports (services.extra['shift']; twin dashboard sets it)"

    def report(self, site: str, window: ShiftWindow) -> ShiftReport:
        raise HistorianError(self._WHY)

    def html(self, rep: ShiftReport) -> str:
        raise HistorianError(self._WHY)

    def pdf(self, rep: ShiftReport) -> bytes:
        raise HistorianError(self._WHY)

    def pdf_problem(self) -> str:
        return self._WHY


def shift_service(queries: QueryService, given: object) -> ShiftService:
    """The app's ``ShiftService`` (``services.extra['shift']``), else one over ``queries`` without reports."""
    return given if isinstance(given, ShiftService) else ShiftService(queries=queries, reports=NoReports())
