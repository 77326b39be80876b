"""Pure builders of the dashboard's view-models from snapshots, events and series: no I/O, no clock.

Every function takes the states, events and times it needs as arguments (``now`` included) and
returns ``dashboard.viewmodels`` values, so each is tested without any store;
``dashboard.queries.QueryService`` reads the historian and calls them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dashboard.viewmodels import (
    AlarmRow,
    MachineKpis,
    MachineTile,
    MachineView,
    OeeView,
    OrderRow,
    ShipmentRow,
    SiteTile,
    SiteView,
    StockRow,
    TimelineSegment,
)
from twin import kpi, live
from twin.alarm_shelving import alarm_marks
from twin.calendar import in_shift
from twin.frozen import FrozenDict
from twin.historian import SeriesResult
from twin.readings import Quality
from twin.spec import FleetSpec, MachineId, MachineSpec, MachineStatus, Priority, SignalKind, SiteSpec
from twin.state import AlarmState, Event, EventKind, InventoryState, MachineState, SiteState

__all__ = [
    "ALARM_KINDS",
    "IDLE_ATTENTION_S",
    "NUMERIC_KINDS",
    "alarm_journal",
    "alarm_row",
    "filter_alarms",
    "local_midnight",
    "machine_kpis",
    "machine_tile",
    "machine_view",
    "newest_sample",
    "oee_between",
    "order_rows",
    "projection_horizon_d",
    "shipment_rows",
    "signal_options",
    "site_tile",
    "site_view",
    "stock_rows",
    "timeline_segments",
]


NUMERIC_KINDS = frozenset(
    {
        SignalKind.TEMPERATURE,
        SignalKind.POWER,
        SignalKind.VIBRATION,
        SignalKind.CYCLE_TIME,
        SignalKind.LEVEL,
        SignalKind.OTHER,
        SignalKind.GOOD_COUNT,
        SignalKind.SCRAP_COUNT,
    }
)
IDLE_ATTENTION_S = 900.0  # idle in shift for longer than this needs a look (theme.Thresholds.idle_attention_s)
ALARM_KINDS = frozenset({EventKind.ALARM_RAISED, EventKind.ALARM_CLEARED, EventKind.ALARM_ACKNOWLEDGED})


def oee_between(site: SiteSpec, machines: Sequence[MachineSpec], start: SiteState | None, end: SiteState,
                t0: datetime) -> OeeView:
    """OEE of ``machines`` of ``site`` between two snapshots (``twin.kpi.site_oee``).

    ``start`` None (no history before ``t0``) counts from an empty state at ``t0``: everything the
    twin recorded since it began.
    """
    before = start if start is not None else live.initial_site_state(site, t0)
    sub = replace(site, machines=tuple(machines))
    return OeeView.of(kpi.site_oee(sub, before, end))


def _status_signal(spec: MachineSpec) -> str | None:
    sig = spec.template.signal_of_kind(SignalKind.STATUS)
    return sig.name if sig else None


def machine_tile(spec: MachineSpec, m: MachineState | None, now: datetime, stale_after_polls: float,
                 known_since: datetime | None = None, *, in_shift: bool = False,
                 alarms: Sequence[AlarmRow] = (), idle_attention_s: float = IDLE_ATTENTION_S) -> MachineTile:
    """The tile of one machine at ``now``: UNKNOWN unless its status sample is GOOD and recent enough.

    ``known_since`` is when the current status really began when that is before ``status_since``
    (``twin.live.status_known_since``: a data gap in which the status stayed the same does not restart it).
    Idle is normal (waiting for work) unless it lasts over ``idle_attention_s`` while the site is
    ``in_shift``; the machine's active ``alarms`` of MEDIUM priority or above also need a look.
    """
    base: dict[str, Any] = {
        "site": spec.site, "machine": spec.id, "role": spec.role.value, "template": spec.template.id
    }
    if m is None:
        return MachineTile(**base, shown=MachineStatus.UNKNOWN, reported=MachineStatus.UNKNOWN,
                           quality=Quality.STALE, age_s=None, reason="no data yet")
    name = _status_signal(spec)
    sample = m.signals.get(name) if name else None  # type: ignore[call-overload]
    ts = sample.ts if sample is not None else m.status_since
    age = (now - ts).total_seconds() if ts is not None else None
    quality = m.status_quality
    reason = m.status_reason
    limit = stale_after_polls * spec.poll_interval_s
    if quality is Quality.GOOD and (age is None or age > limit):
        quality, reason = Quality.STALE, "not refreshed"
    since = m.status_since
    if known_since is not None and since is not None and known_since < since and m.status is not MachineStatus.UNKNOWN:
        since = known_since
    in_status = (now - since).total_seconds() if since is not None else None
    if quality is not Quality.GOOD and m.status is MachineStatus.UNKNOWN and in_status is not None:
        # a stale/bad sample is fresh itself: the data's age is how long the status has been unknown
        age = max(age or 0.0, in_status)
    shown = m.status if quality is Quality.GOOD else MachineStatus.UNKNOWN
    idle_long = (shown is MachineStatus.IDLE and in_shift and in_status is not None
                 and in_status > idle_attention_s)
    mine = [a for a in alarms if a.active and a.asset == spec.id and a.priority >= Priority.MEDIUM]
    top = max(mine, key=lambda a: (a.priority, a.raised_at), default=None)
    return MachineTile(**base, shown=shown, reported=m.status, quality=quality, age_s=age, reason=reason,
                       in_status_s=in_status, good_total=m.good_total, scrap_total=m.scrap_total,
                       idle_too_long=idle_long, alarm=top)


def projection_horizon_d(site: SiteSpec) -> float:
    """How far ahead stock is projected: 1.25 × the longest lead time, at least 7 and at most 60 days."""
    longest = max((i.lead_time_d for i in site.inventory), default=0.0)
    return min(60.0, max(7.0, 1.25 * longest))


def stock_rows(site: SiteSpec, now_state: SiteState | None, past: SiteState | None, now: datetime) -> list[StockRow]:
    """Stock against reorder points, projected forward by the shipments under way.

    Use per day is the consumption between ``past`` and now (``twin.kpi.consumption_per_day``);
    days of cover without arrivals is the classic KPI, ``cover_with_arrivals_d`` counts the
    shipments at their ETAs (``twin.kpi.project_stock``) and decides ``cover_short``.
    """
    rows = []
    end = now + timedelta(days=projection_horizon_d(site))
    for item in site.inventory:
        inv: InventoryState | None = now_state.inventory.get(item.sku) if now_state else None
        on_hand = inv.on_hand if inv is not None and inv.quality is Quality.GOOD else None
        quality = inv.quality if inv is not None else Quality.STALE
        daily_use: float | None = None
        cover: float | None = None
        if inv is not None and past is not None and now_state is not None:
            days = (now_state.as_of - past.as_of).total_seconds() / 86400.0
            daily_use = kpi.consumption_per_day(past.inventory.get(item.sku), inv, days)
            if daily_use is not None:
                cover = kpi.days_of_cover(on_hand, daily_use * days, days)
        in_transit = inv.inbound if inv is not None else ()
        etas = [s.eta for s in in_transit]
        projection = kpi.project_stock(on_hand, daily_use, in_transit, now, end) if on_hand is not None else None
        ahead = projection.cover_d if projection is not None else None
        rows.append(
            StockRow(
                sku=item.sku, name=item.name, unit=item.unit, on_hand=on_hand, quality=quality,
                reorder_point=item.reorder_point, lead_time_d=item.lead_time_d, daily_use=daily_use,
                days_of_cover=cover, in_transit=sum(s.qty for s in in_transit),
                next_eta=min(etas) if etas else None,
                below_reorder=on_hand is not None and on_hand <= item.reorder_point,
                cover_short=ahead is not None and ahead < item.lead_time_d,
                cover_with_arrivals_d=ahead,
                stockout_at=projection.stockout_at if projection is not None else None,
                projection=projection,
                overdue_in_transit=sum(s.qty for s in in_transit if s.eta < now),
            )
        )
    return rows


def shipment_rows(site: SiteSpec, now_state: SiteState | None, now: datetime) -> list[ShipmentRow]:
    """Inbound shipments of a site, soonest first, with their delay against the planned ETA."""
    if now_state is None:
        return []
    rows = []
    for sku, inv in now_state.inventory.items():
        item = site.item(sku)
        for s in inv.inbound:
            late = kpi.shipment_lateness(s, now)
            rows.append(ShipmentRow(site=site.id, sku=sku, name=item.name if item else sku, qty=s.qty,
                                    unit=item.unit if item else "", eta=s.eta,
                                    eta_in_s=(s.eta - now).total_seconds(), id=s.id, origin=s.origin,
                                    planned_eta=s.planned_eta, delay_s=late.delay_s, overdue=late.overdue))
    return sorted(rows, key=lambda r: r.eta)


def order_rows(site: SiteSpec, now_state: SiteState | None, now: datetime) -> list[OrderRow]:
    """A site's open orders, the most urgent (least slack) first."""
    if now_state is None:
        return []
    rows = [OrderRow(site=site.id, id=o.id, product=o.product, qty=o.qty, done_qty=o.done_qty,
                     remaining=kpi.remaining_units(o), created=o.created, due=o.due,
                     slack_s=kpi.order_slack_s(o, now))
            for o in now_state.orders]
    return sorted(rows, key=lambda r: (r.slack_s, r.id))


def _priority(value: Any, default: Priority = Priority.MEDIUM) -> Priority:
    if isinstance(value, Priority):
        return value
    if isinstance(value, int | float) and int(value) in {p.value for p in Priority}:
        return Priority(int(value))
    if isinstance(value, str) and value.upper() in Priority.__members__:
        return Priority[value.upper()]
    return default


def alarm_row(a: AlarmState) -> AlarmRow:
    return AlarmRow(site=a.site, key=a.key, rule=a.rule, asset=a.asset, priority=a.priority, message=a.message,
                    active=a.active, raised_at=a.raised_at, acknowledged=a.acknowledged,
                    cleared_at=a.cleared_at, acked_by=a.acked_by, acked_at=a.acked_at,
                    ack_comment=a.ack_comment)


def _event_key(e: Event) -> str:
    key = e.data.get("key")
    if isinstance(key, str) and key:
        return key
    return f"{e.data.get('rule', '')}:{e.asset}"


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _predicted(e: Event) -> dict[str, Any]:
    """A predictive alarm's raised event's ``probability``, ``horizon_h`` and ``predicted_at`` (None: absent)."""
    at = e.data.get("predicted_at")
    when: datetime | None = None
    if isinstance(at, str) and at:
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(at)
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return {"probability": _number(e.data.get("probability")), "horizon_h": _number(e.data.get("horizon_h")),
            "predicted_at": when}


def alarm_journal(current: Iterable[AlarmState], events: Iterable[Event], *,
                  initial: Mapping[tuple[str, str], MachineStatus] | None = None) -> list[AlarmRow]:
    """Alarm instances from current alarm states and the alarm events of a window, newest first.

    Each ALARM_RAISED event opens an instance; CLEARED and ACKNOWLEDGED events update the latest
    instance of the same ``site``/``rule:asset``; current states not seen in the events are added as they
    are (raised before the window), and acknowledgements in the events are applied to them. The
    ALARM_SHELVING and STATUS_CHANGE events among ``events`` mark each instance shelved (how, who, why)
    or suppressed by design (``twin.alarm_shelving.alarm_marks``, replayed up to the newest event);
    ``initial`` is each machine's status where ``events`` begin (``(site, machine)`` -> status), as the
    CSV export (``connectors.export``) gives it: an alarm raised before the window's first status change
    of a machine in maintenance since before the window is suppressed on both.
    """
    events = sorted(events, key=lambda e: e.ts)
    latest: dict[tuple[str, str], AlarmRow] = {}
    done: list[AlarmRow] = []
    current = list(current)
    for a in current:
        latest[(a.site, a.key)] = alarm_row(a)
    for e in sorted((e for e in events if e.kind in ALARM_KINDS), key=lambda e: e.ts):
        k = (e.site, _event_key(e))
        row = latest.get(k)
        if e.kind is EventKind.ALARM_RAISED:
            if row is not None and row.raised_at == e.ts:  # the current state describes this instance
                latest[k] = replace(row, **_predicted(e))  # but not what it predicted
                continue
            if row is not None and row.raised_at < e.ts:
                done.append(row)
            rule = str(e.data.get("rule", k[1].split(":", 1)[0]))
            latest[k] = AlarmRow(site=e.site, key=k[1], rule=rule, asset=e.asset,
                                 priority=_priority(e.data.get("priority")), message=e.message, active=True,
                                 raised_at=e.ts, **_predicted(e))
        elif row is None:
            continue
        elif e.kind is EventKind.ALARM_CLEARED and row.raised_at <= e.ts:
            latest[k] = replace(row, active=False, cleared_at=e.ts)
        elif e.kind is EventKind.ALARM_ACKNOWLEDGED and row.raised_at <= e.ts and not row.acknowledged:
            latest[k] = replace(row, acknowledged=True, acked_by=str(e.data.get("user", "")),
                                acked_at=e.ts, ack_comment=str(e.data.get("comment", "")))
    rows = done + list(latest.values())
    seen = {(str(e.site), _event_key(e), e.ts) for e in events if e.kind is EventKind.ALARM_RAISED}
    before = [a for a in current if (str(a.site), a.key, a.raised_at) not in seen]
    end = max([e.ts for e in events] + [a.raised_at for a in before], default=None)
    marks = alarm_marks(events, end, current=before, initial=initial) if end is not None else {}
    for i, r in enumerate(rows):
        m = marks.get((r.site, r.key, r.raised_at))
        if m is not None:
            rows[i] = replace(r, shelf=m.shelf, shelved_until=m.until, shelved_by=m.by, shelved_why=m.why,
                              suppressed=m.suppressed)
    return sorted(rows, key=lambda r: (r.raised_at, r.priority), reverse=True)


def newest_sample(state: SiteState | None) -> datetime | None:
    """The time of the site's newest GOOD sample: a STALE or BAD reading is fresh, but it is no data.

    (A poller keeps reporting an unreachable PLC's points, STALE then BAD, stamped with the time it
    tried: counted, a lost PLC's site said "updated 5 s ago".)
    """
    if state is None:
        return None
    good = Quality.GOOD
    stamps = [sv.ts for m in state.machines.values() for sv in m.signals.values() if sv.quality is good]
    # a machine whose status went UNKNOWN (its samples replaced by STALE/BAD ones) had data until then
    stamps += [m.status_since for m in state.machines.values()
               if m.status is MachineStatus.UNKNOWN and m.status_quality is not good and m.status_since is not None]
    stamps += [i.ts for i in state.inventory.values() if i.ts is not None and i.quality is good]
    return max(stamps) if stamps else None


def local_midnight(now: datetime, timezone: str) -> datetime:
    tz = ZoneInfo(timezone)
    local: date = now.astimezone(tz).date()
    return datetime.combine(local, datetime.min.time(), tz)


def site_tile(
    site: SiteSpec,
    fleet: FleetSpec,
    now_state: SiteState | None,
    day_start_state: SiteState | None,
    past_state: SiteState | None,
    now: datetime,
    *,
    site_stale_s: float = 60.0,
    alarms: Sequence[AlarmRow] | None = None,
) -> SiteTile:
    """The fleet-overview tile of a site, from its snapshots now, at local midnight and a week ago."""
    midnight = local_midnight(now, site.timezone)
    counts = dict.fromkeys(MachineStatus, 0)
    for spec in site.machines:
        m = now_state.machines.get(spec.id) if now_state else None
        counts[machine_tile(spec, m, now, fleet.stale_after_polls).shown] += 1
    if now_state is None:
        oee = OeeView()
        output = None
    else:
        oee = oee_between(site, site.machines, day_start_state, now_state, midnight)
        # output = finished units: good parts of the last routing step (each unit passes every station)
        output = oee_between(site, kpi.finishing_machines(site, fleet.products), day_start_state, now_state,
                             midnight).good
    if alarms is None:
        alarms = [alarm_row(a) for a in (now_state.alarms.values() if now_state else ())]
    active = [a for a in alarms if a.active]
    newest = newest_sample(now_state)
    dark = counts[MachineStatus.UNKNOWN]
    if site.machines and dark == len(site.machines):
        # no machine reports (a lost cell PLC) while the stores still do: the site's production data is
        # stale, and its age is that of the machines' data, not the fresh stock reading
        newest = newest_sample(replace(now_state, inventory=FrozenDict())) if now_state else None
    age = (now - newest).total_seconds() if newest else None
    stock = stock_rows(site, now_state, past_state, now)
    at_risk = sum(1 for r in stock if r.at_risk)
    plan_by_now = kpi.planned_units_to(site, midnight, now) if site.daily_plan_units else None
    orders = kpi.backlog(now_state.orders if now_state else (), now)
    return SiteTile(
        site=site.id, name=site.name, kind=site.kind.value, region=site.region, oee=oee,
        output_today=output, plan_today=site.daily_plan_units, plan_by_now=plan_by_now,
        by_status=FrozenDict(counts), active_alarms=len(active), machines_dark=dark,
        top_priority=max((a.priority for a in active), default=None), stock_at_risk=at_risk,
        newest_sample=newest, age_s=age, stale=age is None or age > site_stale_s,
        stock_unknown=sum(1 for r in stock if r.on_hand is None),
        open_orders=orders.open_orders, backlog_units=orders.units, overdue_orders=orders.overdue,
        next_due=orders.next_due, min_slack_s=orders.min_slack_s,
        stock_below_reorder=sum(1 for r in stock if r.below_reorder),
        stock_alarms=sum(1 for a in active if site.item(a.asset) is not None),
        top_alarm=max(active, key=lambda a: (a.priority, a.raised_at), default=None),
    )


def _status_from_event(e: Event) -> MachineStatus | None:
    for key in ("to", "status", "new"):
        value = e.data.get(key)
        if isinstance(value, str):
            try:
                return MachineStatus(value)
            except ValueError:
                continue
    return None


def timeline_segments(
    site: SiteSpec, start_state: SiteState | None, events: Iterable[Event], t0: datetime, t1: datetime
) -> list[TimelineSegment]:
    """Status segments per machine between ``t0`` and ``t1`` from the start snapshot and STATUS_CHANGE events."""
    current: dict[str, tuple[MachineStatus, datetime]] = {}
    for spec in site.machines:
        m = start_state.machines.get(spec.id) if start_state else None
        first = m.status if m is not None and m.status_quality is Quality.GOOD else MachineStatus.UNKNOWN
        current[spec.id] = (first, t0)
    out: list[TimelineSegment] = []
    for e in sorted((e for e in events if e.kind in (EventKind.STATUS_CHANGE, EventKind.QUALITY_CHANGE)),
                    key=lambda e: e.ts):
        if e.asset not in current or not t0 <= e.ts <= t1:
            continue
        status = _status_from_event(e)
        if e.kind is EventKind.QUALITY_CHANGE:
            q = e.data.get("quality") or e.data.get("to")
            if q in ("stale", "bad"):
                status = MachineStatus.UNKNOWN
            elif status is None:
                continue
        if status is None:
            continue
        prev, since = current[e.asset]
        if status is prev:
            continue
        if e.ts > since:
            out.append(TimelineSegment(machine=e.asset, status=prev, start=since, end=e.ts))
        current[e.asset] = (status, e.ts)
    for machine, (status, since) in current.items():
        if t1 > since:
            out.append(TimelineSegment(machine=machine, status=status, start=since, end=t1))
    return out


def machine_kpis(site: SiteSpec, spec: MachineSpec, start: SiteState | None, end: SiteState,
                 t0: datetime) -> MachineKpis:
    """OEE, MTBF, MTTR, throughput and scrap rate of one machine between two snapshots (``twin.kpi``)."""
    before_site = start if start is not None else live.initial_site_state(site, t0)
    before = before_site.machines.get(spec.id) or MachineState(id=spec.id)
    after = end.machines.get(spec.id) or MachineState(id=spec.id)
    w = kpi.machine_window(spec, before, after, before_site.as_of, end.as_of)
    o = kpi.machine_oee(site, spec, before, after, before_site.as_of, end.as_of)
    fault = w.status_s.get(MachineStatus.FAULT, 0.0)
    return MachineKpis(
        oee=OeeView.of(o), failures=w.failures, repairs=w.repairs, fault_s=fault,
        mtbf_h=kpi.mtbf_h(w.run_s, w.failures), mttr_h=kpi.mttr_h(fault, w.repairs),
        throughput_per_h=kpi.throughput_per_h(w.good, (end.as_of - before_site.as_of).total_seconds()),
        scrap_rate=kpi.scrap_rate(w.good, w.scrap),
    )


def site_view(site: SiteSpec, fleet: FleetSpec, tile: SiteTile, live_state: SiteState | None,
              day_start_state: SiteState | None, past_state: SiteState | None, alarms: Sequence[AlarmRow],
              known_since: Mapping[MachineId, datetime | None], now: datetime, *, live: bool = True) -> SiteView:
    """The site page at ``now``, from the snapshots now, at local midnight and a while ago.

    ``now`` is any moment: the live page is this view at the present, a replay at its cursor
    (``live`` False), built by the same function from the snapshots of that moment.

    Its tile, machines (``known_since`` by machine id: ``machine_tile``), OEE by machine, stock,
    shipments, alarms and orders.
    """
    midnight = local_midnight(now, site.timezone)
    shift = in_shift(site.calendar, site.timezone, now)
    machines = tuple(
        machine_tile(m, live_state.machines.get(m.id) if live_state else None, now, fleet.stale_after_polls,
                     known_since.get(m.id), in_shift=shift, alarms=alarms)
        for m in site.machines
    )
    by_machine = tuple(
        (m.id, oee_between(site, (m,), day_start_state, live_state, midnight) if live_state else OeeView())
        for m in site.machines
    )
    return SiteView(tile=tile, machines=machines, oee_by_machine=by_machine,
                    stock=tuple(stock_rows(site, live_state, past_state, now)),
                    shipments=tuple(shipment_rows(site, live_state, now)), alarms=tuple(alarms), now=now,
                    orders=tuple(order_rows(site, live_state, now)),
                    backlog=kpi.backlog(live_state.orders if live_state else (), now),
                    timezone=site.timezone, live=live)


def machine_view(site: SiteSpec, spec: MachineSpec, fleet: FleetSpec, live_state: SiteState | None,
                 start: SiteState | None, series: Sequence[SeriesResult], events: Iterable[Event],
                 known_since: datetime | None, t0: datetime, now: datetime) -> MachineView:
    """The machine page over ``t0``..``now``: its tile, the ``series`` read, its events and its KPIs."""
    units = FrozenDict({str(s.name): s.unit for s in spec.template.signals})
    kpis = machine_kpis(site, spec, start, live_state or SiteState(site=site.id, as_of=now), t0)
    current = live_state.machines.get(spec.id) if live_state else None
    tile = machine_tile(spec, current, now, fleet.stale_after_polls, known_since,
                        in_shift=in_shift(site.calendar, site.timezone, now),
                        alarms=[alarm_row(a) for a in (live_state.alarms.values() if live_state else ())])
    return MachineView(site=site.id, machine=spec.id, tile=tile, series=tuple(series), units=units,
                       events=tuple(e for e in events if e.asset == spec.id), kpis=kpis, t0=t0, t1=now,
                       timezone=site.timezone)


def filter_alarms(rows: Iterable[AlarmRow], t0: datetime, priorities: Sequence[int] | None,
                  states: Sequence[str] | None) -> list[AlarmRow]:
    """The journal rows of the window from ``t0`` on, filtered, newest first.

    ``states`` among active, cleared, acked, unacked (all of them must hold); none or empty: any.
    """
    wanted = set(states or ())
    out = []
    for r in rows:
        if priorities and int(r.priority) not in priorities:
            continue
        if r.raised_at < t0 and not r.active and (r.cleared_at is None or r.cleared_at < t0):
            continue
        if ("active" in wanted and not r.active) or ("cleared" in wanted and r.active):
            continue
        if ("acked" in wanted and not r.acknowledged) or ("unacked" in wanted and r.acknowledged):
            continue
        out.append(r)
    return sorted(out, key=lambda r: r.raised_at, reverse=True)


def signal_options(site: SiteSpec) -> list[tuple[str, str]]:
    """Numeric signals of a site's machines as (name, unit), in template order."""
    seen: dict[str, str] = {}
    for m in site.machines:
        for s in m.template.signals:
            if s.kind in NUMERIC_KINDS and s.name not in seen:
                seen[s.name] = s.unit
    return list(seen.items())
