"""Alarm rules over a site's state: conditions held for a duration, lifecycle and acknowledgement.

``evaluate`` is called by the live reducer after each batch. One alarm instance exists per rule and
asset (key ``rule:asset``). Its lifecycle is ISA-18.2's: active/cleared × acknowledged/unacknowledged.
A condition must hold for the rule's ``for_s`` (its start is kept in ``SiteState.pending``) before the
alarm is raised; it clears as soon as the condition is false; an alarm both cleared and acknowledged
leaves ``SiteState.alarms`` (its events stay in the history).

Shelving (ISA-18.2, OPC UA Part 9) is a pure reducer of its own over ``Shelving``: ``shelve`` one-shot
(until the alarm returns to normal) or timed (at most ``MAX_SHELVE_S``), ``unshelve``, out of service
and back (``take_out_of_service``, ``return_to_service``), each with who and why; ``advance`` ends the
shelves that are due. Its journal of ``ShelveChange``s says when an alarm was not annunciated
(``hidden_intervals``), which ``twin.alarm_performance`` leaves out of its figures. The people's
changes reach the history as ALARM_SHELVING events (through the collector's endpoint);
``shelving_journal`` replays them with the alarms' own events into that journal.

Conditions:

* ABOVE / BELOW: a machine signal's value against ``rule.threshold``. Only GOOD numeric values count:
  a stale or bad value neither raises nor clears (nor restarts the pending timer).
* STOCK_BELOW_REORDER: an item's GOOD ``on_hand`` below the item's ``reorder_point``.
* MACHINE_DOWN: the machine's status is FAULT; UNKNOWN neither raises nor clears.

>>> from datetime import UTC, datetime
>>> from twin.spec import Priority
>>> from twin.state import AlarmState, SiteState
>>> t = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
>>> alarm = AlarmState(rule="hot", site="s1", asset="P1", priority=Priority.HIGH,
...                    message="nozzle too hot", active=True, raised_at=t)
>>> state = SiteState(site="s1", as_of=t, alarms=FrozenDict({alarm.key: alarm}))
>>> state, event = acknowledge(state, "hot:P1", user="ana", comment="cooling down", at=t)
>>> state.alarms["hot:P1"].acked_by, event.kind.value
('ana', 'alarm_acknowledged')
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from twin.errors import AlarmError
from twin.frozen import FrozenDict
from twin.readings import Quality, Value
from twin.spec import AlarmId, AlarmKind, AlarmRule, FleetSpec, MachineId, MachineStatus, Priority, SiteSpec, Sku
from twin.state import AlarmState, Event, EventKind, InventoryState, MachineState, SiteState

__all__ = [
    "MAX_SHELVE_S",
    "RECENT_EVENTS",
    "AlarmError",
    "JournalMark",
    "Shelf",
    "ShelveChange",
    "ShelveKind",
    "Shelving",
    "acknowledge",
    "advance",
    "alarm_marks",
    "condition",
    "evaluate",
    "evaluate_parts",
    "hidden_intervals",
    "return_to_service",
    "shelf_label",
    "shelve",
    "shelving_journal",
    "take_out_of_service",
    "unshelve",
]

log = logging.getLogger(__name__)

RECENT_EVENTS = 200  # how many events a SiteState keeps in ``recent_events``



def _numeric(value: Value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


_Machines = Mapping[MachineId, MachineState]
_Inventory = Mapping[Sku, InventoryState]


def _machine_condition(rule: AlarmRule, machines: _Machines, asset: str) -> tuple[bool | None, Value]:
    machine = machines.get(MachineId(asset))
    if machine is None:
        return None, None
    if rule.kind is AlarmKind.MACHINE_DOWN:
        if machine.status is MachineStatus.UNKNOWN:
            return None, machine.status.value
        return machine.status is MachineStatus.FAULT, machine.status.value
    if rule.signal is None or rule.threshold is None:
        return None, None
    sv = machine.signals.get(rule.signal)
    if sv is None or sv.quality is not Quality.GOOD:
        return None, None
    value = _numeric(sv.value)
    if value is None:
        return None, sv.value
    if rule.kind is AlarmKind.ABOVE:
        return value > rule.threshold, value
    return value < rule.threshold, value


def _stock_condition(inventory: _Inventory, sku: str, reorder_point: float) -> tuple[bool | None, Value]:
    inv = inventory.get(Sku(sku))
    if inv is None or inv.on_hand is None or inv.quality is not Quality.GOOD:
        return None, None
    return inv.on_hand < reorder_point, inv.on_hand


def condition(
    rule: AlarmRule, site_spec: SiteSpec, site_state: SiteState, asset: str
) -> tuple[bool | None, Value]:
    """Whether ``rule``'s condition holds for ``asset`` now (True, False, or None if unknown), and the value."""
    if rule.kind is AlarmKind.STOCK_BELOW_REORDER:
        item = site_spec.item(asset)
        if item is None:
            return None, None
        return _stock_condition(site_state.inventory, asset, item.reorder_point)
    return _machine_condition(rule, site_state.machines, asset)


def _event(kind: EventKind, alarm: AlarmState, at: datetime, message: str, **extra: Value) -> Event:
    data: dict[str, Value] = {"rule": str(alarm.rule), "priority": int(alarm.priority), "value": alarm.value}
    data.update(extra)
    return Event(ts=at, site=alarm.site, asset=alarm.asset, kind=kind, message=message, data=FrozenDict(data))


def evaluate(
    spec: FleetSpec,
    site_spec: SiteSpec,
    site_state: SiteState,
    now: datetime,
    *,
    changed: Collection[str] | None = None,
) -> tuple[SiteState, tuple[Event, ...]]:
    """Evaluate every alarm rule of ``spec`` that applies to ``site_spec`` at ``now``.

    ``changed`` (optional) names the assets whose state changed since the last evaluation; the
    others are only checked for pending conditions whose duration has elapsed. ``None`` checks all.
    Returns the site state with updated ``alarms`` and ``pending`` (the same object if nothing
    changed) and the ALARM_RAISED / ALARM_CLEARED events.
    """
    alarms, pending, events = evaluate_parts(
        spec, site_spec, site_state.machines, site_state.inventory, site_state.alarms, site_state.pending,
        now, changed=changed,
    )
    if alarms is site_state.alarms and pending is site_state.pending:
        return site_state, events
    return replace(site_state, alarms=alarms, pending=pending), events


def _targets(
    spec: FleetSpec,
    site_spec: SiteSpec,
    pending: Mapping[str, datetime],
    now: datetime,
    changed: Collection[str] | None,
) -> list[tuple[AlarmRule, str, float | None]]:
    """The (rule, asset, reorder point) pairs to evaluate: all, or the changed and the due ones."""
    site = site_spec.id
    out: list[tuple[AlarmRule, str, float | None]] = []
    if changed is None:
        for rule in spec.alarms:
            if rule.sites and site not in rule.sites:
                continue
            if rule.kind is AlarmKind.STOCK_BELOW_REORDER:
                out.extend((rule, i.sku, i.reorder_point) for i in site_spec.inventory
                           if rule.applies_to_item(site, i))
            else:
                out.extend((rule, m.id, None) for m in site_spec.machines if rule.applies_to_machine(m))
        return out
    seen: set[str] = set()
    assets = list(changed)
    for key, since in pending.items():
        for rule in spec.alarms:
            prefix = f"{rule.id}:"
            if key.startswith(prefix) and now - since >= timedelta(seconds=rule.for_s):
                assets.append(key[len(prefix):])
    for asset in assets:
        if asset in seen:
            continue
        seen.add(asset)
        machine = site_spec.machine(asset)
        item = site_spec.item(asset) if machine is None else None
        for rule in spec.alarms:
            if rule.sites and site not in rule.sites:
                continue
            if machine is not None and rule.applies_to_machine(machine):
                out.append((rule, asset, None))
            elif item is not None and rule.applies_to_item(site, item):
                out.append((rule, asset, item.reorder_point))
    return out


def evaluate_parts(
    spec: FleetSpec,
    site_spec: SiteSpec,
    machines: Mapping[MachineId, MachineState],
    inventory: Mapping[Sku, InventoryState],
    alarms: FrozenDict[str, AlarmState],
    pending: FrozenDict[str, datetime],
    now: datetime,
    *,
    changed: Collection[str] | None = None,
) -> tuple[FrozenDict[str, AlarmState], FrozenDict[str, datetime], tuple[Event, ...]]:
    """:func:`evaluate` on the parts of a site state (the live reducer builds the state once).

    Returns the new ``alarms`` and ``pending`` (the very same objects when unchanged) and the events.
    """
    if not spec.alarms:
        return alarms, pending, ()
    site = site_spec.id
    alarms_out: dict[str, AlarmState] | None = None
    pending_out: dict[str, datetime] | None = None
    events: list[Event] = []

    for rule, asset, reorder_point in _targets(spec, site_spec, pending, now, changed):
        if reorder_point is not None:
            holds, value = _stock_condition(inventory, asset, reorder_point)
        else:
            holds, value = _machine_condition(rule, machines, asset)
        if holds is None:
            continue  # unknown: neither raises nor clears
        key = f"{rule.id}:{asset}"
        pend = pending_out if pending_out is not None else pending
        current = (alarms_out if alarms_out is not None else alarms).get(key)
        if holds:
            if current is not None and current.active:
                continue
            since = pend.get(key, now)
            if (now - since).total_seconds() >= rule.for_s:
                if alarms_out is None:
                    alarms_out = dict(alarms)
                raised = AlarmState(
                    rule=rule.id, site=site, asset=asset, priority=rule.priority, message=rule.message,
                    active=True, raised_at=now, value=value,
                )
                alarms_out[key] = raised
                if key in pend:
                    if pending_out is None:
                        pending_out = dict(pending)
                    del pending_out[key]
                events.append(_event(EventKind.ALARM_RAISED, raised, now, f"{asset}: {rule.message}"))
            elif key not in pend:
                if pending_out is None:
                    pending_out = dict(pending)
                pending_out[key] = since
            continue
        if key in pend:
            if pending_out is None:
                pending_out = dict(pending)
            del pending_out[key]
        if current is not None and current.active:
            if alarms_out is None:
                alarms_out = dict(alarms)
            cleared = replace(current, active=False, cleared_at=now, value=value)
            if cleared.acknowledged:
                del alarms_out[key]
            else:
                alarms_out[key] = cleared
            events.append(_event(EventKind.ALARM_CLEARED, cleared, now, f"{asset}: cleared: {rule.message}"))

    return (
        alarms if alarms_out is None else FrozenDict(alarms_out),
        pending if pending_out is None else FrozenDict(pending_out),
        tuple(events),
    )


def acknowledge(
    site_state: SiteState, key: str, user: str, comment: str, at: datetime
) -> tuple[SiteState, Event]:
    """Acknowledge alarm ``key`` (``rule:asset``) as ``user``; a cleared alarm then leaves the list.

    Raises :class:`AlarmError` for an unknown key, an empty user or an alarm already acknowledged.
    """
    if not user.strip():
        raise AlarmError(f"acknowledging {key!r} needs a user (got {user!r})")
    alarm = site_state.alarms.get(key)
    if alarm is None:
        raise AlarmError(f"no alarm {key!r} at site {site_state.site!r}")
    if alarm.acknowledged:
        raise AlarmError(f"alarm {key!r} already acknowledged by {alarm.acked_by!r}")
    acked = AlarmState(
        rule=alarm.rule, site=alarm.site, asset=alarm.asset, priority=alarm.priority, message=alarm.message,
        active=alarm.active, raised_at=alarm.raised_at, value=alarm.value, cleared_at=alarm.cleared_at,
        acknowledged=True, acked_by=user, acked_at=at, ack_comment=comment,
    )
    alarms = dict(site_state.alarms)
    if acked.active:
        alarms[key] = acked
    else:
        del alarms[key]
    event = _event(
        EventKind.ALARM_ACKNOWLEDGED, acked, at, f"{alarm.asset}: acknowledged by {user}: {alarm.message}",
        user=user, comment=comment,
    )
    new_state = SiteState(
        site=site_state.site,
        as_of=site_state.as_of,
        machines=site_state.machines,
        inventory=site_state.inventory,
        alarms=FrozenDict(alarms),
        pending=site_state.pending,
        orders=site_state.orders,
        recent_events=(*site_state.recent_events, event)[-RECENT_EVENTS:],
    )
    return new_state, event


# --- Shelving and out of service (ISA-18.2, OPC UA Part 9 ShelvedStateMachine) -------------------------------

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
