"""Alarm rules over a site's state: conditions held for a duration, lifecycle and acknowledgement.

``evaluate`` is called by the live reducer after each batch. One alarm instance exists per rule and
asset (key ``rule:asset``). Its lifecycle is ISA-18.2's: active/cleared × acknowledged/unacknowledged.
A condition must hold for the rule's ``for_s`` (its start is kept in ``SiteState.pending``) before the
alarm is raised; it clears as soon as the condition is false; an alarm both cleared and acknowledged
leaves ``SiteState.alarms`` (its events stay in the history).

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

import logging
from collections.abc import Collection
from datetime import datetime, timedelta

from twin.errors import TwinError
from twin.frozen import FrozenDict
from twin.readings import Quality, Value
from twin.spec import AlarmKind, AlarmRule, FleetSpec, MachineId, MachineStatus, SiteSpec, Sku
from twin.state import AlarmState, Event, EventKind, SiteState

__all__ = ["RECENT_EVENTS", "AlarmError", "acknowledge", "condition", "evaluate"]

log = logging.getLogger(__name__)

RECENT_EVENTS = 200  # how many events a SiteState keeps in ``recent_events``


class AlarmError(TwinError):
    """An alarm operation is not possible (unknown alarm key, missing user, already acknowledged)."""


def _numeric(value: Value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _machine_condition(rule: AlarmRule, site_state: SiteState, asset: str) -> tuple[bool | None, Value]:
    machine = site_state.machines.get(MachineId(asset))
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


def _stock_condition(site_state: SiteState, sku: str, reorder_point: float) -> tuple[bool | None, Value]:
    inv = site_state.inventory.get(Sku(sku))
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
        return _stock_condition(site_state, asset, item.reorder_point)
    return _machine_condition(rule, site_state, asset)


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
    if not spec.alarms:
        return site_state, ()
    site = site_spec.id
    alarms_in = site_state.alarms
    pending_in = site_state.pending
    alarms_out: dict[str, AlarmState] | None = None
    pending_out: dict[str, datetime] | None = None
    events: list[Event] = []

    def check(rule: AlarmRule, asset: str, holds: bool | None, value: Value) -> None:
        nonlocal alarms_out, pending_out
        if holds is None:
            return  # unknown: neither raises nor clears
        key = f"{rule.id}:{asset}"
        pending = pending_out if pending_out is not None else pending_in
        alarms = alarms_out if alarms_out is not None else alarms_in
        current = alarms.get(key)
        if holds:
            if current is not None and current.active:
                return
            since = pending.get(key)
            if since is None:
                since = now
            if (now - since).total_seconds() >= rule.for_s:
                if alarms_out is None:
                    alarms_out = dict(alarms_in)
                raised = AlarmState(
                    rule=rule.id, site=site, asset=asset, priority=rule.priority, message=rule.message,
                    active=True, raised_at=now, value=value,
                )
                alarms_out[key] = raised
                if key in pending:
                    if pending_out is None:
                        pending_out = dict(pending_in)
                    del pending_out[key]
                events.append(_event(EventKind.ALARM_RAISED, raised, now, f"{asset}: {rule.message}"))
            elif key not in pending:
                if pending_out is None:
                    pending_out = dict(pending_in)
                pending_out[key] = since
            return
        if key in pending:
            if pending_out is None:
                pending_out = dict(pending_in)
            del pending_out[key]
        if current is not None and current.active:
            if alarms_out is None:
                alarms_out = dict(alarms_in)
            cleared = AlarmState(
                rule=current.rule, site=current.site, asset=current.asset, priority=current.priority,
                message=current.message, active=False, raised_at=current.raised_at, value=value,
                cleared_at=now, acknowledged=current.acknowledged, acked_by=current.acked_by,
                acked_at=current.acked_at, ack_comment=current.ack_comment,
            )
            if cleared.acknowledged:
                del alarms_out[key]
            else:
                alarms_out[key] = cleared
            events.append(_event(EventKind.ALARM_CLEARED, cleared, now, f"{asset}: cleared: {rule.message}"))

    def due(rule: AlarmRule, asset: str) -> bool:
        since = pending_in.get(f"{rule.id}:{asset}")
        return since is not None and now - since >= timedelta(seconds=rule.for_s)

    for rule in spec.alarms:
        if rule.sites and site not in rule.sites:
            continue
        if rule.kind is AlarmKind.STOCK_BELOW_REORDER:
            for item in site_spec.inventory:
                if not rule.applies_to_item(site, item):
                    continue
                if changed is not None and item.sku not in changed and not due(rule, item.sku):
                    continue
                holds, value = _stock_condition(site_state, item.sku, item.reorder_point)
                check(rule, item.sku, holds, value)
        else:
            for machine in site_spec.machines:
                if not rule.applies_to_machine(machine):
                    continue
                if changed is not None and machine.id not in changed and not due(rule, machine.id):
                    continue
                holds, value = _machine_condition(rule, site_state, machine.id)
                check(rule, machine.id, holds, value)

    if alarms_out is None and pending_out is None:
        return site_state, ()
    new_state = SiteState(
        site=site_state.site,
        as_of=site_state.as_of,
        machines=site_state.machines,
        inventory=site_state.inventory,
        alarms=alarms_in if alarms_out is None else FrozenDict(alarms_out),
        pending=pending_in if pending_out is None else FrozenDict(pending_out),
        orders=site_state.orders,
        recent_events=site_state.recent_events,
    )
    return new_state, tuple(events)


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
