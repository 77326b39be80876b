"""The dashboard's read side: view-models of the fleet, a site, a machine and the alarm journal.

``QueryService`` reads the historian (``twin.historian.Historian``) and the static ``FleetSpec``,
caches what it read for a short time (so a ``dcc.Interval`` in every open tab costs one historian
read per TTL, not one per tab), and turns snapshots into small frozen view-models that the figure
builders draw. The functions that compute view-models from snapshots are pure and public, so they
are tested without any store. Nothing here formats text or picks colours: that is ``theme``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from twin import kpi, live
from twin.calendar import in_shift
from twin.errors import AlarmError
from twin.frozen import FrozenDict
from twin.historian import Historian, SeriesKey, SeriesResult, history_start
from twin.readings import Quality
from twin.spec import (
    FleetSpec,
    MachineSpec,
    MachineStatus,
    Priority,
    SignalKind,
    SiteSpec,
)
from twin.state import AlarmState, Event, EventKind, InventoryState, MachineState, SiteState

__all__ = [
    "AlarmRow",
    "DerivedAlarms",
    "MachineKpis",
    "MachineTile",
    "MachineView",
    "OeeView",
    "OrderRow",
    "QueryService",
    "ShipmentRow",
    "SiteTile",
    "SiteView",
    "StockRow",
    "TimelineSegment",
    "alarm_journal",
    "machine_kpis",
    "machine_tile",
    "oee_between",
    "order_rows",
    "projection_horizon_d",
    "shipment_rows",
    "site_tile",
    "stock_rows",
    "timeline_segments",
]

log = logging.getLogger(__name__)
MAX_ACK_COMMENT_CHARS = 200  # an acknowledgement's comment (the pages' input has the same maxLength)
ACK_JOURNAL_H = 720  # an alarm may be acknowledged while in the journal of the last 30 days
T = TypeVar("T")

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
HISTORY_SEARCH = timedelta(days=400)  # how far back history_start looks for a site's first record
KNOWN_SINCE_LOOKBACK = timedelta(days=2)  # how far back a status is followed through data gaps
ALARM_KINDS = frozenset({EventKind.ALARM_RAISED, EventKind.ALARM_CLEARED, EventKind.ALARM_ACKNOWLEDGED})


# --------------------------------------------------------------------------------------------- view-models
@dataclass(frozen=True, slots=True, kw_only=True)
class OeeView:
    """OEE and its three factors over a window; a factor is None where its inputs do not exist."""

    availability: float | None = None
    performance: float | None = None
    quality: float | None = None
    oee: float | None = None
    run_s: float = 0.0
    planned_s: float = 0.0
    good: int = 0
    scrap: int = 0
    performance_capped: bool = False  # above 100 % only by a cycle begun before the window (twin.kpi)

    @classmethod
    def of(cls, o: kpi.Oee) -> OeeView:
        total, good = o.total_count or 0, o.good_count or 0
        return cls(availability=o.availability, performance=o.performance, quality=o.quality, oee=o.oee,
                   run_s=o.run_s or 0.0, planned_s=o.planned_s or 0.0, good=good, scrap=max(0, total - good),
                   performance_capped=o.performance_capped)


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineTile:
    """What a machine tile shows. ``shown`` is UNKNOWN whenever the status is not current and good."""

    site: str
    machine: str
    role: str
    template: str
    shown: MachineStatus
    reported: MachineStatus  # what the twin last said, shown only as context when not current
    quality: Quality
    age_s: float | None  # age of the status sample; None when there is none
    reason: str = ""
    in_status_s: float | None = None
    good_total: int = 0
    scrap_total: int = 0
    idle_too_long: bool = False  # idle in shift for longer than the threshold: needs a look
    alarm: AlarmRow | None = None  # the machine's top active alarm of MEDIUM priority or above

    @property
    def current(self) -> bool:
        return self.shown is not MachineStatus.UNKNOWN

    @property
    def attention(self) -> bool:
        """Needs a look (drawn amber, the reason in words): idle in shift too long, or an alarm on it."""
        return self.current and self.shown is not MachineStatus.FAULT and (self.idle_too_long or self.alarm is not None)


@dataclass(frozen=True, slots=True, kw_only=True)
class StockRow:
    """One stocked item: on hand against its reorder point and lead time."""

    sku: str
    name: str
    unit: str
    on_hand: float | None
    quality: Quality
    reorder_point: float
    lead_time_d: float
    daily_use: float | None
    days_of_cover: float | None  # None: unknown on hand or no consumption seen
    in_transit: float
    next_eta: datetime | None
    below_reorder: bool
    cover_short: bool  # cover counting the arrivals under way below the supplier's lead time
    cover_with_arrivals_d: float | None = None  # days to the first projected stockout (None: no use seen)
    stockout_at: datetime | None = None  # the first projected stockout, arrivals counted
    projection: kpi.StockProjection | None = None  # None while on hand is unknown
    overdue_in_transit: float = 0.0  # in transit past its ETA: not counted in the projection

    @property
    def replenishing(self) -> bool:
        """A shipment is under way that the projection counts (its ETA has not passed)."""
        return self.in_transit - self.overdue_in_transit > 0

    @property
    def at_risk(self) -> bool:
        """Will run out before a new order could arrive, or is below its reorder point with nothing coming.

        The arrivals under way count: an item below its reorder point whose replenishment arrives
        before the shelf empties is not at risk. Without any use seen, only the second rule applies.
        """
        return self.cover_short or (self.below_reorder and not self.replenishing)


@dataclass(frozen=True, slots=True, kw_only=True)
class ShipmentRow:
    """Goods on their way to a site."""

    site: str
    sku: str
    name: str
    qty: float
    unit: str
    eta: datetime
    eta_in_s: float
    id: str = ""
    origin: str = ""
    planned_eta: datetime | None = None
    delay_s: float | None = None  # ETA − planned ETA (None: no plan announced)
    overdue: bool = False  # the ETA has passed and it has not arrived

    @property
    def late(self) -> bool:
        return self.overdue or (self.delay_s is not None and self.delay_s > 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRow:
    """An open customer order as the site page lists it."""

    site: str
    id: str
    product: str
    qty: int
    done_qty: int
    remaining: int
    created: datetime
    due: datetime
    slack_s: float  # due − now; negative: overdue

    @property
    def overdue(self) -> bool:
        return self.slack_s < 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmRow:
    """One alarm instance as the journal and the site page list it."""

    site: str
    key: str
    rule: str
    asset: str
    priority: Priority
    message: str
    active: bool
    raised_at: datetime
    acknowledged: bool = False
    cleared_at: datetime | None = None
    acked_by: str = ""
    acked_at: datetime | None = None
    ack_comment: str = ""

    @property
    def state(self) -> str:
        return ("active" if self.active else "cleared") + ("/acked" if self.acknowledged else "/unacked")


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteTile:
    """A site on the fleet overview."""

    site: str
    name: str
    kind: str
    region: str
    oee: OeeView
    output_today: int | None
    plan_today: int
    plan_by_now: float | None  # the day's plan pro rata of the planned time elapsed
    by_status: FrozenDict[MachineStatus, int]
    active_alarms: int
    top_priority: Priority | None
    stock_at_risk: int
    newest_sample: datetime | None
    age_s: float | None
    stale: bool
    stock_unknown: int = 0  # stocked items whose on hand is not known (no data, stale or bad)
    open_orders: int = 0
    backlog_units: int = 0
    overdue_orders: int = 0
    next_due: datetime | None = None
    min_slack_s: float | None = None
    machines_dark: int = 0  # machines without current data (shown UNKNOWN); all of them: the site is stale
    stock_below_reorder: int = 0  # items on hand at or below their reorder point (replenishing or not)
    stock_alarms: int = 0  # active alarms on stocked items (e.g. "stock below reorder point")
    top_alarm: AlarmRow | None = None  # the active alarm of the highest priority (the latest of those)


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineSegment:
    """A machine in one status from ``start`` to ``end``."""

    machine: str
    status: MachineStatus
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteView:
    """Everything the site page shows, read at ``now``."""

    tile: SiteTile
    machines: tuple[MachineTile, ...]
    oee_by_machine: tuple[tuple[str, OeeView], ...]
    stock: tuple[StockRow, ...]
    shipments: tuple[ShipmentRow, ...]
    alarms: tuple[AlarmRow, ...]
    now: datetime
    orders: tuple[OrderRow, ...] = ()
    backlog: kpi.Backlog | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineKpis:
    """A machine's KPIs over a window (from two snapshots)."""

    oee: OeeView
    failures: int
    repairs: int
    fault_s: float
    mtbf_h: float | None
    mttr_h: float | None
    throughput_per_h: float | None
    scrap_rate: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineView:
    """The machine page: trends, events and KPIs over a chosen window."""

    site: str
    machine: str
    tile: MachineTile
    series: tuple[SeriesResult, ...]
    units: FrozenDict[str, str]
    events: tuple[Event, ...]
    kpis: MachineKpis
    t0: datetime
    t1: datetime


# --------------------------------------------------------------------------------------------- pure logic
def _status_s(m: MachineState | None, as_of: datetime, status: MachineStatus) -> float:
    if m is None:
        return 0.0
    s = float(m.status_seconds.get(status, 0.0))
    if m.status is status and m.status_since is not None:
        s += max(0.0, (as_of - m.status_since).total_seconds())
    return s


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


def _row_from_state(a: AlarmState) -> AlarmRow:
    return AlarmRow(site=a.site, key=a.key, rule=a.rule, asset=a.asset, priority=a.priority, message=a.message,
                    active=a.active, raised_at=a.raised_at, acknowledged=a.acknowledged,
                    cleared_at=a.cleared_at, acked_by=a.acked_by, acked_at=a.acked_at,
                    ack_comment=a.ack_comment)


def _event_key(e: Event) -> str:
    key = e.data.get("key")
    if isinstance(key, str) and key:
        return key
    return f"{e.data.get('rule', '')}:{e.asset}"


def alarm_journal(current: Iterable[AlarmState], events: Iterable[Event]) -> list[AlarmRow]:
    """Alarm instances from current alarm states and the alarm events of a window, newest first.

    Each ALARM_RAISED event opens an instance; CLEARED and ACKNOWLEDGED events update the latest
    instance of the same ``site``/``rule:asset``; current states not seen in the events are added as they
    are (raised before the window), and acknowledgements in the events are applied to them.
    """
    latest: dict[tuple[str, str], AlarmRow] = {}
    done: list[AlarmRow] = []
    for a in current:
        latest[(a.site, a.key)] = _row_from_state(a)
    for e in sorted((e for e in events if e.kind in ALARM_KINDS), key=lambda e: e.ts):
        k = (e.site, _event_key(e))
        row = latest.get(k)
        if e.kind is EventKind.ALARM_RAISED:
            if row is not None and row.raised_at == e.ts:
                continue  # the current state already describes this instance
            if row is not None and row.raised_at < e.ts:
                done.append(row)
            rule = str(e.data.get("rule", k[1].split(":", 1)[0]))
            latest[k] = AlarmRow(site=e.site, key=k[1], rule=rule, asset=e.asset,
                                 priority=_priority(e.data.get("priority")), message=e.message, active=True,
                                 raised_at=e.ts)
        elif row is None:
            continue
        elif e.kind is EventKind.ALARM_CLEARED and row.raised_at <= e.ts:
            latest[k] = _replace_row(row, active=False, cleared_at=e.ts)
        elif e.kind is EventKind.ALARM_ACKNOWLEDGED and row.raised_at <= e.ts and not row.acknowledged:
            latest[k] = _replace_row(row, acknowledged=True, acked_by=str(e.data.get("user", "")),
                                     acked_at=e.ts, ack_comment=str(e.data.get("comment", "")))
    rows = done + list(latest.values())
    return sorted(rows, key=lambda r: (r.raised_at, r.priority), reverse=True)


def _replace_row(row: AlarmRow, **changes: Any) -> AlarmRow:
    from dataclasses import replace

    return replace(row, **changes)


def _newest_sample(state: SiteState | None) -> datetime | None:
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


def _local_midnight(now: datetime, timezone: str) -> datetime:
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
    midnight = _local_midnight(now, site.timezone)
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
        alarms = [_row_from_state(a) for a in (now_state.alarms.values() if now_state else ())]
    active = [a for a in alarms if a.active]
    newest = _newest_sample(now_state)
    dark = counts[MachineStatus.UNKNOWN]
    if site.machines and dark == len(site.machines):
        # no machine reports (a lost cell PLC) while the stores still do: the site's production data is
        # stale, and its age is that of the machines' data, not the fresh stock reading
        newest = _newest_sample(replace(now_state, inventory=FrozenDict())) if now_state else None
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


# --------------------------------------------------------------------------------------------- the service
class DerivedAlarms(Protocol):
    """Alarms this process derives itself and never writes to the historian (``dashboard.trust``'s drift).

    A site's current instances are shown like the historian's; its cleared ones in the journal.
    """

    def current_alarms(self, site: str) -> list[AlarmState]: ...

    def past_alarms(self, site: str) -> list[AlarmRow]: ...


class _TtlCache:
    """A small thread-safe cache whose entries expire after their own TTL (monotonic clock)."""

    def __init__(self, monotonic: Callable[[], float], max_entries: int = 4096) -> None:
        self._monotonic = monotonic
        self._max = max_entries
        self._lock = threading.Lock()
        self._data: dict[Hashable, tuple[float, Any]] = {}

    def get(self, key: Hashable, ttl_s: float, compute: Callable[[], T]) -> T:
        now = self._monotonic()
        with self._lock:
            hit = self._data.get(key)
        if hit is not None and hit[0] > now:
            value: T = hit[1]
            return value
        value = compute()
        with self._lock:
            if len(self._data) >= self._max:
                for k in [k for k, (exp, _) in self._data.items() if exp <= now] or list(self._data)[: self._max // 4]:
                    self._data.pop(k, None)
            self._data[key] = (now + ttl_s, value)
        return value

    def clear(self, keep: Callable[[Hashable], bool] | None = None) -> None:
        with self._lock:
            if keep is None:
                self._data.clear()
            else:
                self._data = {k: v for k, v in self._data.items() if keep(k)}


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
    historian: Historian
    clock: Callable[[], datetime]
    ttl_s: float = 2.0
    past_ttl_s: float = 300.0
    site_stale_s: float = 60.0
    hot_s: float = 30.0
    monotonic: Callable[[], float] = time.monotonic
    derived_alarms: DerivedAlarms | None = None  # alarms of this process added to every site's (not stored)
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
        newest = _newest_sample(live_state)
        final = newest is not None and newest >= t
        return self.state_at(site, t, ttl_s=self.past_ttl_s if final else self.ttl_s)

    def _window_start(self, site: str, t0: datetime, start: SiteState | None) -> SiteState | None:
        """The snapshot a KPI window begins with: ``start`` (at ``t0``), else the history's first moment.

        A window reaching back before the recorded history (a 7-day OEE over 2 days of data) counts
        its planned time from where the data begins, not days with no data as planned and not run.
        """
        if start is not None:
            return start
        first = self.history_start(site)
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
    def site_ids(self) -> list[str]:
        return [s.id for s in self.fleet.sites]

    def fleet_tiles(self) -> list[SiteTile]:
        """Every site's tile: the refresher's latest (when running and recent), else read now (TTL-cached)."""
        latest = self._tiles
        if latest is not None and self.monotonic() - latest[0] <= 3 * self.ttl_s + 1.0:
            return latest[1]
        now = self.now()
        return self._cache.get(
            ("fleet-tiles",), self.ttl_s, lambda: [self._site_tile(s, now) for s in self.fleet.sites]
        )

    def _current_alarms(self, site: str, live_state: SiteState | None) -> list[AlarmState]:
        """The site's current alarm states: the historian's and those this process derives."""
        current = list(live_state.alarms.values()) if live_state else []
        if self.derived_alarms is not None:
            current += self.derived_alarms.current_alarms(site)
        return current

    def _site_tile(self, site: SiteSpec, now: datetime, alarms: Sequence[AlarmRow] | None = None) -> SiteTile:
        live_state = self._live_state(site.id, now)
        if alarms is None and self.derived_alarms is not None:
            alarms = [_row_from_state(a) for a in self._current_alarms(site.id, live_state)]
        midnight = _local_midnight(now, site.timezone)
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

    def _site_view(self, site_id: str) -> SiteView:
        now = self.now()
        site = self.fleet.site(site_id)
        live_state = self._live_state(site.id, now)
        alarms = self._site_alarms(site, live_state, now)
        tile = self._site_tile(site, now, alarms)
        midnight = _local_midnight(now, site.timezone)
        start = self._window_start(site.id, midnight, self._snapshot(site.id, midnight, live_state))
        past = self._usage_base(site.id, now, live_state)
        shift = in_shift(site.calendar, site.timezone, now)
        machines = tuple(
            machine_tile(m, live_state.machines.get(m.id) if live_state else None, now, self.fleet.stale_after_polls,
                         self._known_since(site.id, m.id, live_state), in_shift=shift, alarms=alarms)
            for m in site.machines
        )
        by_machine = tuple(
            (m.id, oee_between(site, (m,), start, live_state, midnight) if live_state else OeeView())
            for m in site.machines
        )
        return SiteView(tile=tile, machines=machines, oee_by_machine=by_machine,
                        stock=tuple(stock_rows(site, live_state, past, now)),
                        shipments=tuple(shipment_rows(site, live_state, now)), alarms=tuple(alarms), now=now,
                        orders=tuple(order_rows(site, live_state, now)),
                        backlog=kpi.backlog(live_state.orders if live_state else (), now))

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

    def history_start(self, site: str) -> datetime | None:
        """The first moment of ``site``'s recorded history (to the minute), None without any.

        The historian has a state at ``t`` exactly from the first reading on (``state_at`` is None
        before): found by bisection over the last ``HISTORY_SEARCH`` (a few dozen cheap reads of
        early times), kept ``past_ttl_s``.
        """
        def search() -> datetime | None:
            return history_start(self.historian, site, self.now(), HISTORY_SEARCH)

        found = self._cache.get(("history-start", site), self.past_ttl_s, search)
        if found is None:  # no history yet: look again at the next refresh, not in five minutes
            self._cache.clear(lambda k: k != ("history-start", site))
        return found

    def _site_alarms(self, site: SiteSpec, live_state: SiteState | None, now: datetime) -> list[AlarmRow]:
        current = self._current_alarms(site.id, live_state)
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

    def timeline(self, site_id: str, hours: float = 8.0) -> list[TimelineSegment]:
        now = self.now()
        t0 = now - timedelta(hours=hours)
        site = self.fleet.site(site_id)
        start = self._past_state(site_id, t0, self._live_state(site_id, now))
        return timeline_segments(site, start, self.events(site_id, start.as_of if start else t0, now), t0, now)

    def signal_options(self, site_id: str) -> list[tuple[str, str]]:
        """Numeric signals of a site's machines as (name, unit), in template order."""
        seen: dict[str, str] = {}
        for m in self.fleet.site(site_id).machines:
            for s in m.template.signals:
                if s.kind in NUMERIC_KINDS and s.name not in seen:
                    seen[s.name] = s.unit
        return list(seen.items())

    def site_trend(self, site_id: str, signal: str, hours: float, max_points: int = 300) -> list[SeriesResult]:
        now = self.now()
        keys = [SeriesKey(site=site_id, asset=m.id, signal=signal)
                for m in self.fleet.site(site_id).machines if m.template.signal(signal) is not None]
        if not keys:
            return []
        return self.series(keys, now - timedelta(hours=hours), now, max_points)

    def machine_view(
        self, site_id: str, machine_id: str, hours: float, signals: Sequence[str], max_points: int = 1000
    ) -> MachineView:
        now = self.now()
        t0 = now - timedelta(hours=hours)
        site = self.fleet.site(site_id)
        spec = site.machine(machine_id)
        if spec is None:
            raise KeyError(machine_id)
        live_state = self._live_state(site_id, now)
        start = self._window_start(site_id, t0, self._past_state(site_id, t0, live_state))
        keys = [SeriesKey(site=site_id, asset=machine_id, signal=s) for s in signals if spec.template.signal(s)]
        series = tuple(self.series(keys, t0, now, max_points)) if keys else ()
        units = FrozenDict({str(s.name): s.unit for s in spec.template.signals})
        events = tuple(e for e in self.events(site_id, t0, now) if e.asset == machine_id)
        kpis = machine_kpis(site, spec, start, live_state or SiteState(site=site.id, as_of=now), t0)
        current = live_state.machines.get(spec.id) if live_state else None
        tile = machine_tile(spec, current, now, self.fleet.stale_after_polls,
                            self._known_since(site_id, machine_id, live_state),
                            in_shift=in_shift(site.calendar, site.timezone, now),
                            alarms=[_row_from_state(a) for a in (live_state.alarms.values() if live_state else ())])
        return MachineView(site=site_id, machine=machine_id, tile=tile, series=series, units=units,
                           events=events, kpis=kpis, t0=t0, t1=now)

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
            rows += alarm_journal(self._current_alarms(site.id, live_state), self.events(site.id, t0, now))
            if self.derived_alarms is not None:
                rows += self.derived_alarms.past_alarms(site.id)
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

    def acknowledge(self, *, site: str, key: str, user: str, comment: str) -> Event:
        """Record that ``user`` acknowledged alarm ``key`` at ``site`` (an ALARM_ACKNOWLEDGED event).

        Checked here, where the acknowledgement is accepted (a client may send anything): the comment
        is at most ``MAX_ACK_COMMENT_CHARS`` long, and the alarm exists (active now, or in the journal of
        the last ``ACK_JOURNAL_H`` hours): ``AlarmError`` otherwise, and nothing is written.
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
        self.historian.write((), (), (event,))
        log.info("alarm %s at %s acknowledged by %s", key, site, user)
        self.invalidate()
        return event
