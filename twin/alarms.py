"""Alarm rules over a site's state: conditions held for a duration, lifecycle and acknowledgement.

``evaluate`` is called by the live reducer after each batch. One alarm instance exists per rule and
asset (key ``rule:asset``). Its lifecycle is ISA-18.2's: active/cleared × acknowledged/unacknowledged.
A condition must hold for the rule's ``for_s`` (its start is kept in ``SiteState.pending``) before the
alarm is raised; it clears as soon as the condition is false; an alarm both cleared and acknowledged
leaves ``SiteState.alarms`` (its events stay in the history).

Shelving and out of service (ISA-18.2, OPC UA Part 9) are ``twin.alarm_shelving``.

Conditions:

* ABOVE / BELOW: a machine signal's value against ``rule.threshold``. Only GOOD numeric values count:
  a stale or bad value neither raises nor clears (nor restarts the pending timer).
* STOCK_BELOW_REORDER: an item's GOOD ``on_hand`` below the item's ``reorder_point``.
* MACHINE_DOWN: the machine's status is FAULT; UNKNOWN neither raises nor clears.
* FAILURE_RISK, STOCKOUT_RISK, LATE_ORDER_RISK (predictive): not evaluated here but by the
  forecaster (``twin.forecast``), through :func:`step`, the same lifecycle with a probability.

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

import logging
from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from twin.errors import AlarmError
from twin.frozen import FrozenDict
from twin.readings import Quality, Value
from twin.spec import AlarmKind, AlarmRule, FleetSpec, MachineId, MachineStatus, SiteId, SiteSpec, Sku
from twin.state import AlarmState, Event, EventKind, InventoryState, MachineState, SiteState

__all__ = [
    "RECENT_EVENTS",
    "AlarmError",
    "acknowledge",
    "condition",
    "evaluate",
    "evaluate_parts",
    "step",
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
    if rule.kind.predictive:
        return None, None  # the forecaster's (twin.forecast)
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
            if (rule.sites and site not in rule.sites) or rule.kind.predictive:
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
            if (rule.sites and site not in rule.sites) or rule.kind.predictive:
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


def step(
    rule: AlarmRule,
    site: SiteId,
    asset: str,
    holds: bool | None,
    value: Value,
    alarms: dict[str, AlarmState],
    pending: dict[str, datetime],
    now: datetime,
    *,
    detail: str = "",
    data: Mapping[str, Value] | None = None,
) -> Event | None:
    """One instance's lifecycle at ``now`` given whether its condition ``holds`` (None: unknown).

    The same transitions as :func:`evaluate_parts` (``for_s`` pending, raise, clear, a cleared and
    acknowledged alarm leaves), on mutable ``alarms``/``pending`` dicts, for conditions computed
    elsewhere (the forecaster's probabilities). ``detail`` is appended to the rule's message (e.g.
    "42 % chance of failure within 8 h") and ``data`` to the event's data. Returns the event, if any.
    """
    if holds is None:
        return None
    key = f"{rule.id}:{asset}"
    current = alarms.get(key)
    message = f"{rule.message}: {detail}" if detail else rule.message
    extra = dict(data or {})
    if holds:
        if current is not None and current.active:
            return None
        since = pending.get(key, now)
        if (now - since).total_seconds() < rule.for_s:
            pending[key] = since
            return None
        pending.pop(key, None)
        raised = AlarmState(rule=rule.id, site=site, asset=asset, priority=rule.priority, message=message,
                            active=True, raised_at=now, value=value)
        alarms[key] = raised
        return _event(EventKind.ALARM_RAISED, raised, now, f"{asset}: {message}", **extra)
    pending.pop(key, None)
    if current is None or not current.active:
        return None
    cleared = replace(current, active=False, cleared_at=now, value=value)
    if cleared.acknowledged:
        del alarms[key]
    else:
        alarms[key] = cleared
    return _event(EventKind.ALARM_CLEARED, cleared, now, f"{asset}: cleared: {message}", **extra)


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
