"""Shelving and out of service of alarms (ISA-18.2, OPC UA Part 9's ShelvedStateMachine), a pure reducer.

``Shelving`` is a site's shelves and out-of-service alarms. ``shelve`` one-shot (until the alarm
returns to normal) or timed (at most ``MAX_SHELVE_S``), ``unshelve``, out of service and back
(``take_out_of_service``, ``return_to_service``), each with who and why; ``advance`` ends the shelves
that are due. Its journal of ``ShelveChange``s says when an alarm was not annunciated
(``hidden_intervals``), which ``twin.alarm_performance`` leaves out of its figures. The people's
changes reach the history as ALARM_SHELVING events (through the collector's endpoint);
``shelving_journal`` replays them with the alarms' own events into that journal, and
``alarm_marks`` says per journal row whether it was shelved or suppressed by design (raised while its
machine was OFF or in maintenance).

The alarm lifecycle itself (raise, clear, acknowledge) is ``twin.alarms``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from twin.errors import AlarmError
from twin.frozen import FrozenDict
from twin.spec import AlarmId, MachineStatus, Priority
from twin.state import AlarmState, Event, EventKind

__all__ = [
    "MAX_SHELVE_S",
    "JournalMark",
    "Shelf",
    "ShelveChange",
    "ShelveKind",
    "Shelving",
    "advance",
    "alarm_marks",
    "hidden_intervals",
    "return_to_service",
    "shelf_label",
    "shelve",
    "shelving_journal",
    "take_out_of_service",
    "unshelve",
]

MAX_SHELVE_S = 8 * 3600.0  # the longest a timed shelve may last (OPC UA's MaxTimeShelved), unless a site says else


class ShelveKind(enum.Enum):
    """How an alarm is shelved: until it returns to normal (one-shot), or for a time (timed)."""

    ONE_SHOT = "one_shot"
    TIMED = "timed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Shelf:
    """An alarm (``rule:asset``) shelved by ``by`` at ``at`` with a comment; ``until`` ends a timed shelve."""

    key: str
    kind: ShelveKind
    by: str
    comment: str
    at: datetime
    until: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ShelveChange:
    """One change of an alarm's shelving or service state, with who made it and why.

    ``change``: ``shelved``, ``unshelved`` (by a person), ``expired`` (a timed shelve's end),
    ``returned_to_normal`` (a one-shot shelve ends when its alarm clears), ``out_of_service``,
    ``in_service``. The system's own changes carry ``by = "system"``.
    """

    ts: datetime
    key: str
    change: str
    by: str
    why: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Shelving:
    """The shelved and out-of-service alarms of a site, and every change so far (the journal keeps them all)."""

    shelves: FrozenDict[str, Shelf] = field(default_factory=FrozenDict)
    out_of_service: FrozenDict[str, ShelveChange] = field(default_factory=FrozenDict)
    journal: tuple[ShelveChange, ...] = ()

    def hidden(self, key: str) -> str:
        """Why alarm ``key`` is not annunciated now: ``shelved``, ``out_of_service``, or "" (it is)."""
        if key in self.out_of_service:
            return "out_of_service"
        return "shelved" if key in self.shelves else ""


def _who(by: str, why: str, what: str, key: str) -> None:
    if not by.strip():
        raise AlarmError(f"{what} {key!r} needs a user (got {by!r})")
    if not why.strip():
        raise AlarmError(f"{what} {key!r} needs a comment saying why (got {why!r})")


def _with(s: Shelving, change: ShelveChange, *, shelves: dict[str, Shelf] | None = None,
          oos: dict[str, ShelveChange] | None = None) -> tuple[Shelving, ShelveChange]:
    return Shelving(shelves=FrozenDict(shelves) if shelves is not None else s.shelves,
                    out_of_service=FrozenDict(oos) if oos is not None else s.out_of_service,
                    journal=(*s.journal, change)), change


def shelve(s: Shelving, key: str, *, kind: ShelveKind, by: str, comment: str, at: datetime,
           duration_s: float | None = None, max_shelve_s: float = MAX_SHELVE_S) -> tuple[Shelving, ShelveChange]:
    """Shelve alarm ``key``: one-shot (until it returns to normal) or timed (``duration_s``, at most ``max_shelve_s``).

    Raises :class:`AlarmError` without a user or a comment, for a timed shelve without a duration or
    over the maximum, a duration given to a one-shot shelve, or an alarm already shelved.

    >>> from datetime import UTC
    >>> t = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    >>> s, c = shelve(Shelving(), "hot:P1", kind=ShelveKind.TIMED, by="ana", comment="sensor swap", at=t,
    ...               duration_s=1800)
    >>> s.hidden("hot:P1"), s.shelves["hot:P1"].until.isoformat()
    ('shelved', '2026-01-05T08:30:00+00:00')
    >>> s, changes = advance(s, {}, t + timedelta(minutes=30))
    >>> [(c.change, c.by) for c in changes], s.hidden("hot:P1")
    ([('expired', 'system')], '')
    """
    _who(by, comment, "shelving", key)
    if key in s.shelves:
        raise AlarmError(f"alarm {key!r} already shelved by {s.shelves[key].by!r}")
    until: datetime | None = None
    if kind is ShelveKind.TIMED:
        if duration_s is None or not 0 < duration_s <= max_shelve_s:
            raise AlarmError(f"a timed shelve of {key!r} needs a duration of more than 0 and at most "
                             f"{max_shelve_s:g} s (got {duration_s!r})")
        until = at + timedelta(seconds=duration_s)
    elif duration_s is not None:
        raise AlarmError(f"a one-shot shelve of {key!r} lasts until the alarm returns to normal: no duration "
                         f"(got {duration_s!r})")
    shelf = Shelf(key=key, kind=kind, by=by, comment=comment, at=at, until=until)
    why = comment if until is None else f"{comment} (until {until.isoformat()})"
    return _with(s, ShelveChange(ts=at, key=key, change="shelved", by=by, why=why),
                 shelves={**s.shelves, key: shelf})


def unshelve(s: Shelving, key: str, *, by: str, comment: str, at: datetime) -> tuple[Shelving, ShelveChange]:
    """Unshelve alarm ``key`` by hand; :class:`AlarmError` if it is not shelved or without user or comment."""
    _who(by, comment, "unshelving", key)
    if key not in s.shelves:
        raise AlarmError(f"alarm {key!r} is not shelved")
    return _with(s, ShelveChange(ts=at, key=key, change="unshelved", by=by, why=comment),
                 shelves={k: v for k, v in s.shelves.items() if k != key})


def take_out_of_service(s: Shelving, key: str, *, by: str, comment: str, at: datetime,
                        ) -> tuple[Shelving, ShelveChange]:
    """Take alarm ``key`` out of service (e.g. a sensor under repair) until it is returned to service."""
    _who(by, comment, "taking out of service", key)
    if key in s.out_of_service:
        raise AlarmError(f"alarm {key!r} already out of service")
    change = ShelveChange(ts=at, key=key, change="out_of_service", by=by, why=comment)
    return _with(s, change, oos={**s.out_of_service, key: change})


def return_to_service(s: Shelving, key: str, *, by: str, comment: str, at: datetime,
                      ) -> tuple[Shelving, ShelveChange]:
    """Return alarm ``key`` to service; :class:`AlarmError` if it is in service."""
    _who(by, comment, "returning to service", key)
    if key not in s.out_of_service:
        raise AlarmError(f"alarm {key!r} is in service")
    return _with(s, ShelveChange(ts=at, key=key, change="in_service", by=by, why=comment),
                 oos={k: v for k, v in s.out_of_service.items() if k != key})


def advance(s: Shelving, alarms: Mapping[str, AlarmState], at: datetime) -> tuple[Shelving, tuple[ShelveChange, ...]]:
    """End the shelves due at ``at``: a timed one at its end, a one-shot one once its alarm is no longer active.

    ``alarms`` is the site's alarms now (``SiteState.alarms``): a one-shot shelve ends when its alarm
    is absent or cleared (it returned to normal).
    """
    ended: list[ShelveChange] = []
    for key, shelf in s.shelves.items():
        if shelf.until is not None and at >= shelf.until:
            ended.append(ShelveChange(ts=at, key=key, change="expired", by="system",
                                      why=f"timed shelve by {shelf.by} ended"))
        elif shelf.kind is ShelveKind.ONE_SHOT and not (key in alarms and alarms[key].active):
            ended.append(ShelveChange(ts=at, key=key, change="returned_to_normal", by="system",
                                      why=f"one-shot shelve by {shelf.by} ends: the alarm returned to normal"))
    if not ended:
        return s, ()
    gone = {c.key for c in ended}
    return Shelving(shelves=FrozenDict({k: v for k, v in s.shelves.items() if k not in gone}),
                    out_of_service=s.out_of_service, journal=(*s.journal, *ended)), tuple(ended)


def hidden_intervals(journal: Sequence[ShelveChange], t1: datetime) -> dict[str, list[tuple[datetime, datetime]]]:
    """Per alarm key, when it was shelved or out of service (up to ``t1`` when still so): not annunciated then."""
    opened: dict[tuple[str, str], datetime] = {}
    out: dict[str, list[tuple[datetime, datetime]]] = {}
    ends = {"unshelved": "shelf", "expired": "shelf", "returned_to_normal": "shelf", "in_service": "oos"}
    for c in sorted(journal, key=lambda c: c.ts):
        if c.change in ("shelved", "out_of_service"):
            opened.setdefault((c.key, "shelf" if c.change == "shelved" else "oos"), c.ts)
        elif c.change in ends:
            start = opened.pop((c.key, ends[c.change]), None)
            if start is not None and c.ts > start:
                out.setdefault(c.key, []).append((start, c.ts))
    for (key, _), start in opened.items():
        if t1 > start:
            out.setdefault(key, []).append((start, t1))
    return out


def shelving_journal(events: Sequence[Event], t1: datetime) -> tuple[Shelving, tuple[tuple[Event, str], ...]]:
    """The shelving of a site replayed from its history up to ``t1``: the state then, and the changes refused.

    ``events`` are the site's events in time order or not: ALARM_SHELVING (a person's change, data
    ``key``, ``change``, ``shelve``, ``duration_s``, ``user``, ``comment``) and ALARM_RAISED /
    ALARM_CLEARED (so a one-shot shelve ends when its alarm returns to normal, and a timed one at its
    end, each a ``system`` change of the journal). A change the lifecycle does not allow (unshelving
    an alarm not shelved, say) is refused with the reason and leaves the journal as it was.

    >>> from datetime import UTC
    >>> t = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    >>> ev = lambda m, kind, **d: Event(ts=t + timedelta(minutes=m), site="s1", asset="P1", kind=kind, message="",
    ...                                 data=FrozenDict({"key": "hot:P1", **d}))
    >>> s, refused = shelving_journal([ev(0, EventKind.ALARM_RAISED),
    ...     ev(5, EventKind.ALARM_SHELVING, change="shelved", shelve="one_shot", user="ana", comment="known"),
    ...     ev(20, EventKind.ALARM_CLEARED),
    ...     ev(25, EventKind.ALARM_SHELVING, change="unshelved", user="ben", comment="oops")], t + timedelta(hours=1))
    >>> [(c.ts.minute, c.change, c.by) for c in s.journal], refused[0][1]
    ([(5, 'shelved', 'ana'), (20, 'returned_to_normal', 'system')], "alarm 'hot:P1' is not shelved")
    """
    kinds = (EventKind.ALARM_SHELVING, EventKind.ALARM_RAISED, EventKind.ALARM_CLEARED)
    shelving = Shelving()
    refused: list[tuple[Event, str]] = []
    active: dict[str, AlarmState] = {}

    def due(until: datetime) -> Shelving:
        # timed shelves that end by ``until``, each at its own end, in order
        s = shelving
        while True:
            ends = [sh.until for sh in s.shelves.values() if sh.until is not None and sh.until <= until]
            if not ends:
                return s
            s, _ = advance(s, active, min(ends))

    for e in sorted((e for e in events if e.kind in kinds and e.ts <= t1), key=lambda e: e.ts):
        key = str(e.data.get("key") or f"{e.data.get('rule', '')}:{e.asset}")
        shelving = due(e.ts)
        if e.kind is EventKind.ALARM_RAISED:
            active[key] = AlarmState(rule=AlarmId(str(e.data.get("rule", ""))), site=e.site, asset=e.asset,
                                     priority=Priority.LOW, message=e.message, active=True, raised_at=e.ts)
            continue
        if e.kind is EventKind.ALARM_CLEARED:
            active.pop(key, None)
            shelving, _ = advance(shelving, active, e.ts)
            continue
        by, comment, change = str(e.data.get("user", "")), str(e.data.get("comment", "")), e.data.get("change")
        try:
            if change == "shelved":
                duration = e.data.get("duration_s")
                kind = ShelveKind(str(e.data.get("shelve", "")))
                shelving, _ = shelve(shelving, key, kind=kind, by=by, comment=comment, at=e.ts,
                                     duration_s=float(duration) if isinstance(duration, int | float) else None)
            elif change == "unshelved":
                shelving, _ = unshelve(shelving, key, by=by, comment=comment, at=e.ts)
            elif change == "out_of_service":
                shelving, _ = take_out_of_service(shelving, key, by=by, comment=comment, at=e.ts)
            elif change == "in_service":
                shelving, _ = return_to_service(shelving, key, by=by, comment=comment, at=e.ts)
            else:
                refused.append((e, f"unknown shelving change {change!r}"))
        except (AlarmError, ValueError) as exc:
            refused.append((e, str(exc)))
    shelving = due(t1)
    return shelving, tuple(refused)


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalMark:
    """How one alarm instance of the journal was handled: shelved (and how, by whom, why) or suppressed.

    ``shelf``: ``one-shot``, ``timed`` (``until`` its end), ``out of service`` or ``""`` (not shelved);
    ``suppressed``: raised while its machine was OFF or in MAINTENANCE (suppression by design).
    """

    shelf: str = ""
    until: datetime | None = None
    by: str = ""
    why: str = ""
    suppressed: bool = False


def shelf_label(mark: JournalMark | None, until_text: str | None = None) -> str:
    """The journal's ``shelved`` cell: ``one-shot``, ``timed until T``, ``out of service`` or ``no``.

    ``until_text`` is how T is written (UTC ISO-8601 when None).
    """
    if mark is None or not mark.shelf:
        return "no"
    if mark.shelf == "timed" and mark.until is not None:
        return f"timed until {until_text or mark.until.isoformat()}"
    return mark.shelf


_SHELF_ENDS = {"unshelved": "shelf", "expired": "shelf", "returned_to_normal": "shelf", "in_service": "oos"}
_SUPPRESSING = (MachineStatus.OFF, MachineStatus.MAINTENANCE)


def alarm_marks(events: Sequence[Event], t1: datetime, *,
                initial: Mapping[tuple[str, str], MachineStatus] | None = None,
                current: Sequence[AlarmState] = (),
                ) -> dict[tuple[str, str, datetime], JournalMark]:
    """Per alarm instance ``(site, key, raised_at)`` of ``events``: its shelving and suppression by design.

    The shelving is ``shelving_journal`` replayed per site up to ``t1`` (a change the lifecycle refused
    marks nothing); an instance, active from its raise to its clearing (or ``t1``), is marked with the
    latest shelve or out-of-service whose span overlaps its own, with who and why (the person's comment).
    It is suppressed when its asset's status, from the STATUS_CHANGE events (``initial`` before the
    first: ``(site, asset)`` -> status), was OFF or MAINTENANCE when it was raised. ``current`` are
    alarms raised before ``events`` begin (a site's alarms at their start): instances too, active
    until their clearing, suppressed when ``initial`` says their machine was OFF or in maintenance.
    """
    out: dict[tuple[str, str, datetime], JournalMark] = {}
    for site in sorted({str(e.site) for e in events} | {str(a.site) for a in current}):
        mine = sorted((e for e in events if str(e.site) == site and e.ts <= t1), key=lambda e: e.ts)
        out.update(_site_marks(site, mine, t1, initial or {}, [a for a in current if str(a.site) == site]))
    return out


def _site_marks(site: str, events: Sequence[Event], t1: datetime, initial: Mapping[tuple[str, str], MachineStatus],
                current: Sequence[AlarmState]) -> dict[tuple[str, str, datetime], JournalMark]:
    def key_of(e: Event) -> str:
        return str(e.data.get("key") or f"{e.data.get('rule', '')}:{e.asset}")

    shelving, _ = shelving_journal(events, t1)
    asked = {(e.ts, key_of(e), e.data.get("change")): e for e in events if e.kind is EventKind.ALARM_SHELVING}
    # spans per key: (start, end or None while still so, the mark)
    spans: dict[str, list[tuple[datetime, datetime | None, JournalMark]]] = {}
    opened: dict[tuple[str, str], int] = {}
    for c in shelving.journal:
        if c.change in ("shelved", "out_of_service"):
            e = asked.get((c.ts, c.key, c.change))
            comment = str(e.data.get("comment", "")) if e is not None else c.why
            if c.change == "out_of_service":
                mark = JournalMark(shelf="out of service", by=c.by, why=comment)
            else:
                timed = e is not None and e.data.get("shelve") == ShelveKind.TIMED.value
                duration = e.data.get("duration_s") if e is not None else None
                until = (c.ts + timedelta(seconds=float(duration))
                         if timed and isinstance(duration, int | float) else None)
                mark = JournalMark(shelf="timed" if timed else "one-shot", until=until, by=c.by, why=comment)
            opened[(c.key, "shelf" if c.change == "shelved" else "oos")] = len(spans.setdefault(c.key, []))
            spans[c.key].append((c.ts, None, mark))
        elif c.change in _SHELF_ENDS:
            i = opened.pop((c.key, _SHELF_ENDS[c.change]), None)
            if i is not None:
                start, _, mark = spans[c.key][i]
                spans[c.key][i] = (start, c.ts, mark)
    status = dict(initial)
    raised: dict[str, tuple[datetime, bool]] = {}
    lives: list[tuple[str, datetime, datetime, bool]] = []
    for a in current:
        hidden = status.get((site, a.asset)) in _SUPPRESSING
        if a.active or a.cleared_at is None:
            raised[a.key] = (a.raised_at, hidden)
        else:
            lives.append((a.key, a.raised_at, a.cleared_at, hidden))
    for e in events:
        if e.kind is EventKind.STATUS_CHANGE:
            try:
                status[(site, e.asset)] = MachineStatus(e.data.get("to"))
            except ValueError:
                status[(site, e.asset)] = MachineStatus.UNKNOWN
        elif e.kind is EventKind.ALARM_RAISED:
            k = key_of(e)
            if k in raised:  # raised again without a clearing: the earlier instance ends here
                before, hidden = raised[k]
                lives.append((k, before, e.ts, hidden))
            raised[k] = (e.ts, status.get((site, e.asset)) in _SUPPRESSING)
        elif e.kind is EventKind.ALARM_CLEARED and key_of(e) in raised:
            k = key_of(e)
            at, suppressed = raised.pop(k)
            lives.append((k, at, e.ts, suppressed))
    lives += [(k, at, t1, suppressed) for k, (at, suppressed) in raised.items()]
    out: dict[tuple[str, str, datetime], JournalMark] = {}
    for k, at, end, suppressed in lives:
        over = [m for start, stop, m in spans.get(k, ()) if start <= end and (stop is None or stop > at)]
        mark = replace(over[-1], suppressed=suppressed) if over else JournalMark(suppressed=suppressed)
        out[(site, k, at)] = mark
    return out
