"""The view-models the dashboard pages render: small frozen values, one per tile, row, view and KPI set.

They hold numbers, times and states, never text or colours (``theme`` formats and paints them);
``dashboard.views`` builds them from snapshots and ``dashboard.queries.QueryService`` serves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from twin import kpi
from twin.frozen import FrozenDict
from twin.historian import SeriesResult
from twin.readings import Quality
from twin.spec import MachineStatus, Priority
from twin.state import Event

__all__ = [
    "AlarmRow",
    "MachineKpis",
    "MachineTile",
    "MachineView",
    "OeeView",
    "OrderRow",
    "ShipmentRow",
    "SiteTile",
    "SiteView",
    "StockRow",
    "TimelineSegment",
]


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
    # shelving and suppression by design (``twin.alarm_shelving.alarm_marks``): shelf "" when not shelved
    shelf: str = ""
    shelved_until: datetime | None = None
    shelved_by: str = ""
    shelved_why: str = ""
    suppressed: bool = False
    # a predictive alarm's (``twin.forecast``, its raised event's data): P(it happens within horizon_h), when
    probability: float | None = None
    horizon_h: float | None = None
    predicted_at: datetime | None = None

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
    """Everything the site page shows, read at ``now`` (the present, or a replay's cursor)."""

    tile: SiteTile
    machines: tuple[MachineTile, ...]
    oee_by_machine: tuple[tuple[str, OeeView], ...]
    stock: tuple[StockRow, ...]
    shipments: tuple[ShipmentRow, ...]
    alarms: tuple[AlarmRow, ...]
    now: datetime
    orders: tuple[OrderRow, ...] = ()
    backlog: kpi.Backlog | None = None
    timezone: str = "UTC"  # the site's zone: every time on the page is shown in it
    live: bool = True  # read at the present moment (False: a replay of the past at ``now``)


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
    timezone: str = "UTC"  # the site's zone
