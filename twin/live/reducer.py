"""The live reducer: fold a batch of readings into the next immutable twin state, plus its events.

Groups the readings by site and asset, folds machines (``twin.live.machines``) and inventory items
(``twin.live.inventory``), sweeps staleness and evaluates the alarm rules; the rules are in ``twin.live``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter

from twin import alarms
from twin.alarms import RECENT_EVENTS
from twin.frozen import FrozenDict
from twin.live.ignored import IgnoredCounter, IgnoredReadings
from twin.live.inventory import fold_item, sweep_item
from twin.live.machines import MachineFold, any_stale, signal_index
from twin.readings import Reading
from twin.spec import FleetSpec, MachineId, MachineSpec, SignalSpec, SiteId, SiteSpec, Sku
from twin.state import Event, InventoryState, MachineState, SiteState, TwinState

__all__ = ["ApplyResult", "apply", "apply_detailed", "apply_site", "initial_site_state", "initial_state", "refresh"]

log = logging.getLogger("twin.live")  # the name the reducer has always logged under

_by_ts = attrgetter("ts")


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyResult:
    """What one application of a batch produced: the new state, its events, what was not applied.

    >>> from datetime import UTC
    >>> from twin.spec import FleetSpec
    >>> spec = FleetSpec(id="f", name="empty fleet", sites=(), templates=())
    >>> t = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    >>> r = apply_detailed(spec, initial_state(spec, t), [
    ...     Reading(ts=t, site="nowhere", asset="P1", signal="status", value=2)])
    >>> r.ignored_count, r.ignored[0].reason
    (1, 'unknown site')
    """

    state: TwinState
    events: tuple[Event, ...]
    ignored: tuple[IgnoredReadings, ...] = ()

    @property
    def ignored_count(self) -> int:
        return sum(i.count for i in self.ignored)


# ---------------------------------------------------------------------------------------------------
# Initial state


def initial_site_state(site_spec: SiteSpec, as_of: datetime) -> SiteState:
    """A site before any data: every machine UNKNOWN since ``as_of``, every item without stock data."""
    machines = FrozenDict({m.id: MachineState(id=m.id, status_since=as_of) for m in site_spec.machines})
    inventory = FrozenDict({i.sku: InventoryState(sku=i.sku) for i in site_spec.inventory})
    return SiteState(site=site_spec.id, as_of=as_of, machines=machines, inventory=inventory)


def initial_state(spec: FleetSpec, as_of: datetime) -> TwinState:
    """The fleet before any data: every machine and item present, status UNKNOWN, quality STALE.

    >>> from datetime import UTC
    >>> from twin.spec import FleetSpec
    >>> initial_state(FleetSpec(id="f", name="F", sites=(), templates=()),
    ...               datetime(2026, 1, 5, tzinfo=UTC)).fleet
    'f'
    """
    sites = FrozenDict({s.id: initial_site_state(s, as_of) for s in spec.sites})
    return TwinState(fleet=spec.id, as_of=as_of, sites=sites)

# ---------------------------------------------------------------------------------------------------
# Sites and fleet


def _by_asset(site_id: str, readings: Iterable[Reading], ignored: IgnoredCounter) -> dict[str, list[Reading]]:
    by_asset: dict[str, list[Reading]] = {}
    for r in readings:
        if r.site != site_id:
            ignored.add(r, "wrong site")
            continue
        group = by_asset.get(r.asset)
        if group is None:
            by_asset[r.asset] = [r]
        else:
            group.append(r)
    return by_asset


def _apply_site(
    spec: FleetSpec,
    site_spec: SiteSpec,
    site_state: SiteState,
    by_asset: dict[str, list[Reading]],
    now: datetime,
    ignored: IgnoredCounter,
) -> tuple[SiteState, tuple[Event, ...]]:
    """Fold the site's readings, grouped by asset in order of first appearance, into ``site_state``."""
    site_id = site_spec.id
    events: list[Event] = []
    changed: set[str] = set()
    old_machines = site_state.machines
    old_inventory = site_state.inventory
    new_machines: dict[MachineId, MachineState] = {}
    new_inventory: dict[Sku, InventoryState] = {}
    working: dict[MachineId, MachineFold] = {}

    machine_specs: dict[str, MachineSpec] = {m.id: m for m in site_spec.machines} if by_asset else {}
    template_signals: dict[str, dict[str, SignalSpec]] = {}
    for asset, group in by_asset.items():
        if len(group) > 1:
            group.sort(key=_by_ts)
        mspec = machine_specs.get(asset)
        if mspec is not None:
            found = old_machines.get(mspec.id)
            old_m = found or MachineState(id=mspec.id, status_since=site_state.as_of)
            w = MachineFold(mspec, old_m, site_id, events)
            template = mspec.template
            signals = template_signals.get(template.id)
            if signals is None:
                signals = template_signals[template.id] = signal_index(template)
            w.fold(group, ignored, signals)
            working[mspec.id] = w
            continue
        item = site_spec.item(asset)
        if item is not None:
            old_i = old_inventory.get(item.sku) or InventoryState(sku=item.sku)
            new_inventory[item.sku] = fold_item(item, old_i, group, site_id, events, ignored)
            changed.add(asset)
            continue
        for r in group:
            ignored.add(r, "unknown asset")

    stale_polls = spec.stale_after_polls
    cutoffs: dict[float, datetime] = {}
    for mspec in site_spec.machines:
        threshold_s = stale_polls * mspec.poll_interval_s
        cutoff = cutoffs.get(threshold_s)
        if cutoff is None:
            cutoff = cutoffs[threshold_s] = now - timedelta(seconds=threshold_s)
        w_or_none = working.get(mspec.id)
        if w_or_none is None:
            existing = old_machines.get(mspec.id)
            if existing is None:
                existing = MachineState(id=mspec.id, status_since=site_state.as_of)
                new_machines[mspec.id] = existing
            elif not any_stale(existing.signals, cutoff):
                continue  # untouched and still fresh: keep the very same object
            w_or_none = MachineFold(mspec, existing, site_id, events)
        w_or_none.sweep(cutoff, threshold_s)
        if w_or_none.changed:
            new_machines[mspec.id] = w_or_none.build()
            changed.add(mspec.id)
    for item in site_spec.inventory:
        current = new_inventory.get(item.sku) or old_inventory.get(item.sku)
        if current is None:
            current = new_inventory[item.sku] = InventoryState(sku=item.sku)
        swept = sweep_item(current, now, stale_polls * item.poll_interval_s)
        if swept is not None:
            new_inventory[item.sku] = swept
            changed.add(item.sku)

    machines = old_machines.merge(new_machines) if new_machines else old_machines
    inventory = old_inventory.merge(new_inventory) if new_inventory else old_inventory
    alarm_map, pending, alarm_events = alarms.evaluate_parts(
        spec, site_spec, machines, inventory, site_state.alarms, site_state.pending, now, changed=changed
    )
    recent = site_state.recent_events
    if alarm_events:
        events.extend(alarm_events)
    if events:
        events.sort(key=_by_ts)  # stable: the order within one instant is kept
        recent = recent + tuple(events)
        if len(recent) > RECENT_EVENTS:
            recent = recent[-RECENT_EVENTS:]
    state = SiteState(
        site=site_state.site,
        as_of=now,
        machines=machines,
        inventory=inventory,
        alarms=alarm_map,
        pending=pending,
        orders=site_state.orders,
        recent_events=recent,
    )
    return state, tuple(events)


def apply_site(
    spec: FleetSpec,
    site_spec: SiteSpec,
    site_state: SiteState,
    readings: Iterable[Reading],
    now: datetime,
) -> tuple[SiteState, tuple[Event, ...]]:
    """Fold ``readings`` (all of ``site_spec``'s site) into ``site_state`` at ``now``.

    The per-site core of :func:`apply`, for a collector that owns one site. Readings that cannot be
    placed are skipped (use :func:`apply_detailed` to get them counted).
    """
    ignored = IgnoredCounter()
    return _apply_site(spec, site_spec, site_state, _by_asset(site_spec.id, readings, ignored), now, ignored)


def apply_detailed(
    spec: FleetSpec, state: TwinState, readings: Sequence[Reading], now: datetime | None = None
) -> ApplyResult:
    """Like :func:`apply`, and also report the readings that could not be applied (``ignored``).

    ``now`` defaults to the later of ``state.as_of`` and the newest reading; every site is brought
    to ``now`` (staleness, duration alarms), whether it had readings or not.
    """
    # one pass: the newest sample, and the readings grouped by site, then by asset (in order of appearance)
    latest = state.as_of
    by_site: dict[str, dict[str, list[Reading]]] = {}
    site: str | None = None
    assets: dict[str, list[Reading]] = {}
    for r in readings:
        ts = r.ts
        if ts > latest:
            latest = ts
        if r.site is not site:  # identity: a poller's readings share one site string (equality decides below)
            site = r.site
            found = by_site.get(site)
            if found is None:
                found = by_site[site] = {}
            assets = found
        group = assets.get(r.asset)
        if group is None:
            assets[r.asset] = [r]
        else:
            group.append(r)
    if now is None:
        now = latest
    ignored = IgnoredCounter()
    sites_by_id = {s.id: s for s in spec.sites}
    for site_id in by_site:
        if site_id not in sites_by_id:  # rare: count them site by site, each in the order they came
            for r in readings:
                if r.site == site_id:
                    ignored.add(r, "unknown site")
    new_sites: dict[SiteId, SiteState] = {}
    events: list[Event] = []
    for site_spec in spec.sites:
        old = state.sites.get(site_spec.id) or initial_site_state(site_spec, state.as_of)
        new, site_events = _apply_site(spec, site_spec, old, by_site.get(site_spec.id, {}), now, ignored)
        new_sites[site_spec.id] = new
        events.extend(site_events)
    result = ignored.result()
    if result:
        log.debug("%d readings not applied in %d groups", sum(i.count for i in result), len(result))
    return ApplyResult(
        state=TwinState(fleet=state.fleet, as_of=now, sites=state.sites.merge(new_sites)),
        events=tuple(events),
        ignored=result,
    )


def apply(
    spec: FleetSpec, state: TwinState, readings: Sequence[Reading], now: datetime | None = None
) -> tuple[TwinState, tuple[Event, ...]]:
    """Fold a batch of readings into ``state``; returns the new state and what happened.

    >>> from datetime import UTC, time
    >>> from twin.spec import (MachineSpec, MachineStatus, MachineTemplate, Role, ShiftCalendar, SignalKind,
    ...                        SignalSpec, SiteKind, SiteSpec)
    >>> tpl = MachineTemplate(id="cnc", role=Role.MACHINE, ideal_cycle_time_s=60.0,
    ...     status_codes=FrozenDict({1: MachineStatus.IDLE, 2: MachineStatus.RUNNING}),
    ...     signals=(SignalSpec(name="status", kind=SignalKind.STATUS),))
    >>> site = SiteSpec(id="s1", name="Site 1", kind=SiteKind.POINT_OF_DEMAND, timezone="UTC",
    ...     calendar=ShiftCalendar(shifts=()), machines=(MachineSpec(id="M1", site="s1", template=tpl),))
    >>> spec = FleetSpec(id="f", name="F", sites=(site,), templates=(tpl,))
    >>> t = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    >>> state, events = apply(spec, initial_state(spec, t),
    ...                       [Reading(ts=t, site="s1", asset="M1", signal="status", value=2)])
    >>> state.sites["s1"].machines["M1"].status.value, events[0].data["to"]
    ('running', 'running')
    """
    result = apply_detailed(spec, state, readings, now)
    return result.state, result.events


def refresh(spec: FleetSpec, state: TwinState, now: datetime) -> tuple[TwinState, tuple[Event, ...]]:
    """Bring ``state`` to ``now`` without new readings: staleness and duration alarms."""
    return apply(spec, state, (), now)
