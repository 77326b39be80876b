"""What needs attention: one ranked list across the fleet of what is wrong or about to be, and its projection.

One job: turn the site views (``dashboard.queries.QueryService.site_view``) and the latest projection
of the twin into the list a plant manager reads first, and keep that projection fresh on a schedule.

- :func:`attention_items` (pure) makes :class:`AttentionItem` values from each site's view and the
  latest :class:`ProjectionRun`; :func:`rank` orders them (see :data:`RANKING`).
- :class:`AttentionService` owns two daemon threads: one rebuilds the list every
  ``AttentionSettings.list_every_s`` (5 s, the dashboard's refresh) from the query service's current
  views and the latest projection; the other projects the whole fleet from the history's current
  state every ``AttentionSettings.period_s`` (20 replications × 24 h by default, every 15 min).
  Pages read :meth:`AttentionService.view`, the last list built (a *pending* list before the first):
  nothing is read from the history, built or simulated in a callback or per browser tab.

What is listed, when, and how bad (severity) — every threshold is here:

- machine down: its tile shows FAULT (current, good data). Urgent.
- failure risk: a machine's failure risk within 8 h (``dashboard.health``, the health service's last
  view) is at least its ``high`` (30 %, ``twin dashboard --health-high``); not for a machine down. High.
- stock runs out: the stock projection (arrivals counted, ``twin.kpi.project_stock``) reaches 0
  within its horizon. Urgent within ``STOCK_URGENT_H``, high within the item's lead time, else
  medium; with no delivery under way only within ``NOTHING_COMING_LEADS`` × the lead time.
- order late: open and overdue now (high); or due within the projection's horizon with an on-time
  probability below ``ORDER_MEDIUM_P`` (high below ``ORDER_HIGH_P``, else medium).
- behind plan: today's output below ``Thresholds.behind_plan`` (90 %) of the plan by now; high
  below ``HIGH_BEHIND`` (75 %), else medium.
- data stale: the site has no current data (``SiteTile.stale``: high); some machines or stock items
  have none (medium).
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dashboard.health import HealthService, HealthView, fmt_interval, fmt_risk
from dashboard.queries import QueryService
from dashboard.schedule import every
from dashboard.theme import Thresholds
from dashboard.viewmodels import SiteView, StockRow
from twin.errors import ConfigError
from twin.historian import HistorianReader
from twin.sim.projection import OrderOnTime
from twin.spec import FleetSpec, MachineStatus, SiteSpec
from twin.validation import out_of_range

__all__ = [
    "HIGH_BEHIND",
    "KIND_ORDER",
    "NOTHING_COMING_LEADS",
    "ORDER_HIGH_P",
    "ORDER_MEDIUM_P",
    "RANKING",
    "STOCK_URGENT_H",
    "AttentionItem",
    "AttentionService",
    "AttentionSettings",
    "AttentionView",
    "Kind",
    "ProjectionRun",
    "Severity",
    "attention_items",
    "attention_view",
    "fmt_for",
    "fmt_hours",
    "rank",
]

log = logging.getLogger(__name__)

STOCK_URGENT_H = 24.0  # a stockout within this is urgent
NOTHING_COMING_LEADS = 1.5  # with no delivery under way, a stockout further than this × the lead time is not listed
ORDER_HIGH_P = 0.5  # an order below this on-time probability is likely late (high)
ORDER_MEDIUM_P = 0.8  # below this it is at risk (medium); at or above it is not listed
HIGH_BEHIND = 0.75  # output below this share of the plan by now is high (below Thresholds.behind_plan: medium)

RANKING = ("Severity first (urgent, high, medium); within a severity, what costs most first: the units of "
           "output at stake (a machine down: what it would have made at its ideal rate while down; a failure risk: "
           "its probability × what the machine makes at its ideal rate over its MTTR; a stockout: "
           "the site's plan per hour over the hours without stock before the next delivery, or before an order "
           "placed now could arrive; an order: its units still to make × the chance it is late; behind plan: the "
           "units behind); data that is stale cannot be costed and comes after the rest of its severity. Ties: "
           "machine down, failure risk, stock, orders, plan, data; then the longest-standing first.")


class Severity(enum.IntEnum):
    """How bad an item is: urgent (production stopped or about to), high, medium."""

    MEDIUM = 1
    HIGH = 2
    URGENT = 3


class Kind(enum.StrEnum):
    """What an item is about."""

    MACHINE_DOWN = "machine_down"
    FAILURE_RISK = "failure_risk"
    STOCKOUT = "stockout"
    ORDER_LATE = "order_late"
    BEHIND_PLAN = "behind_plan"
    STALE_DATA = "stale_data"


KIND_ORDER = {k: i for i, k in enumerate(Kind)}  # the tie-break after cost (RANKING)


@dataclass(frozen=True, slots=True, kw_only=True)
class AttentionItem:
    """One line of the list: how bad, about what, where, in words, since when, and the page that explains it.

    ``entity`` is the machine, SKU or order (the site itself for plan and data); ``since`` when the
    condition began (None: not begun yet, or not known); ``due`` when it will happen (a stockout,
    an order's due time); ``cost`` the units of output at stake (``RANKING``); ``detail`` context.
    """

    severity: Severity
    kind: Kind
    site: str
    entity: str
    text: str
    since: datetime | None
    link: str
    cost: float = 0.0
    detail: str = ""
    due: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectionRun:
    """The latest projection of the fleet: when, from which state, how, and each open order's on-time chance."""

    computed_at: datetime
    as_of: datetime
    horizon_s: float
    replications: int
    orders: tuple[OrderOnTime, ...] = ()
    duration_s: float = 0.0
    calibrated: bool = False  # False: the configured figures (no reader of its own, or calibration off)


@dataclass(frozen=True, slots=True, kw_only=True)
class AttentionView:
    """The ranked list as the pages draw it, when it was checked, and what the projection behind it is."""

    items: tuple[AttentionItem, ...]
    checked_at: datetime
    sites: int
    projection: ProjectionRun | None = None
    note: str = ""  # e.g. "projecting the orders…" or the last projection's error
    pending: bool = False  # True: not checked yet (the service's first list is being built); items is empty

    def count(self, severity: Severity) -> int:
        return sum(1 for i in self.items if i.severity is severity)


# --------------------------------------------------------------------------------------------- wording
def fmt_for(seconds: float) -> str:
    """How long something has lasted, as a person says it: "42 s", "12 min", "1 h 05 min", "2 d 3 h".

    >>> fmt_for(42), fmt_for(65 * 60), fmt_for(12 * 60), fmt_for(51 * 3600)
    ('42 s', '1 h 05 min', '12 min', '2 d 3 h')
    """
    s = max(0, round(seconds))
    if s < 90:
        return f"{s} s"
    minutes = round(s / 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    hours = round(s / 3600)
    return f"{hours // 24} d {hours % 24} h"


def fmt_hours(seconds: float) -> str:
    """A time ahead in hours to 0.1 h ("5.2 h"), in days from 48 h on ("3.5 d").

    >>> fmt_hours(5.2 * 3600), fmt_hours(84 * 3600)
    ('5.2 h', '3.5 d')
    """
    h = max(0.0, seconds) / 3600.0
    return f"{h:.1f} h" if h < 48 else f"{h / 24:.1f} d"


def _local(t: datetime, site: SiteSpec) -> datetime:
    return t.astimezone(ZoneInfo(site.timezone))


def _hhmm(t: datetime, site: SiteSpec, now: datetime) -> str:
    """A site-local time with its zone: "14:00 CET" today, "Thu 14:00 CET" on another day."""
    local, today = _local(t, site), _local(now, site)
    return local.strftime("%H:%M %Z" if local.date() == today.date() else "%a %H:%M %Z")


def _href(path: str, site: str, **more: str) -> str:
    from urllib.parse import urlencode

    return f"{path}?{urlencode({'site': site, **more})}"


# --------------------------------------------------------------------------------------------- the builder
def _machines_down(site: SiteSpec, view: SiteView, now: datetime) -> list[AttentionItem]:
    out = []
    for t in view.machines:
        if t.shown is not MachineStatus.FAULT:
            continue
        spec = site.machine(t.machine)
        down_s = t.in_status_s or 0.0
        rate = (spec.template.batch_size / spec.template.ideal_cycle_time_s
                if spec is not None and spec.template.ideal_cycle_time_s > 0 else 0.0)
        alarm = f"alarm: {t.alarm.message}" if t.alarm is not None else ""
        out.append(AttentionItem(
            severity=Severity.URGENT, kind=Kind.MACHINE_DOWN, site=str(site.id), entity=t.machine,
            text=f"{t.machine} down for {fmt_for(down_s)}", since=now - timedelta(seconds=down_s),
            link=_href("/machine", str(site.id), machine=t.machine), cost=down_s * rate,
            detail=" · ".join(p for p in (t.role, alarm) if p)))
    return out


def _failure_risk(site: SiteSpec, view: SiteView, health: HealthView) -> list[AttentionItem]:
    """A line per machine of the site whose failure risk within the horizon is high (not one down already)."""
    down = {t.machine for t in view.machines if t.shown is MachineStatus.FAULT}
    out = []
    for h in health.high_risk():
        spec = site.machine(h.machine)
        if h.site != str(site.id) or h.machine in down or spec is None:
            continue
        tpl = spec.template
        rate = tpl.batch_size / tpl.ideal_cycle_time_s * 3600.0 if tpl.ideal_cycle_time_s > 0 else 0.0
        drivers = ", ".join(d.name for d in h.drivers)
        out.append(AttentionItem(
            severity=Severity.HIGH, kind=Kind.FAILURE_RISK, site=h.site, entity=h.machine,
            text=f"{h.machine}: {fmt_risk(h.risk.p)} risk of a failure within {h.risk.hours:g} h",
            since=None, link=_href("/machine", h.site, machine=h.machine), cost=h.risk.p * tpl.mttr_h * rate,
            detail=" · ".join(p for p in (fmt_interval(h.risk),
                                          f"driven by {drivers}" if drivers else "") if p)))
    return out


def _stockout(site: SiteSpec, r: StockRow, now: datetime) -> AttentionItem | None:
    """The item if the shelf empties within its projection, with the next delivery after the stockout."""
    p = r.projection
    if r.on_hand is None or p is None or r.stockout_at is None or r.stockout_at > p.end:
        return None
    out_in = (r.stockout_at - now).total_seconds()
    nxt = min((a.t for a in p.arrivals if a.t > r.stockout_at), default=None)
    # the shelf stays empty until the next delivery, or until an order placed now could arrive
    refill = nxt if nxt is not None else max(r.stockout_at, now + timedelta(days=r.lead_time_d))
    gap_h = max(0.0, (refill - r.stockout_at).total_seconds() / 3600.0)
    lead_s = r.lead_time_d * 86400.0
    if out_in <= STOCK_URGENT_H * 3600:
        severity = Severity.URGENT
    elif out_in <= lead_s:
        severity = Severity.HIGH
    elif nxt is not None or out_in <= NOTHING_COMING_LEADS * lead_s:
        severity = Severity.MEDIUM
    else:  # nothing under way and time enough to order: the reorder point's business, not news
        return None
    head = f"{r.sku} is out of stock" if out_in <= 0 else f"{r.sku} runs out in {fmt_hours(out_in)}"
    tail = (f"next delivery in {fmt_hours((nxt - now).total_seconds())}" if nxt is not None
            else "no delivery under way")
    detail = [f"{r.on_hand:,.4g} {r.unit} on hand".strip()]
    if r.daily_use:
        detail.append(f"using {r.daily_use:,.3g} {r.unit}/day".replace(" /", "/"))
    if r.overdue_in_transit > 0:
        detail.append(f"{r.overdue_in_transit:,.4g} {r.unit} overdue, not counted".replace("  ", " "))
    return AttentionItem(
        severity=severity, kind=Kind.STOCKOUT, site=str(site.id), entity=r.sku, text=f"{head}, {tail}",
        since=r.stockout_at if out_in <= 0 else None, due=r.stockout_at,
        link=_href("/site", str(site.id)) + "#site-stock", cost=gap_h * site.daily_plan_units / 24.0,
        detail=" · ".join(detail))


def _orders(site: SiteSpec, view: SiteView, projection: ProjectionRun | None, now: datetime) -> list[AttentionItem]:
    out = []
    sid = str(site.id)
    link = _href("/site", sid) + "#site-orders"
    rows = {o.id: o for o in view.orders}
    for o in view.orders:
        if o.overdue:  # late already: certain, whatever the projection says
            out.append(AttentionItem(
                severity=Severity.HIGH, kind=Kind.ORDER_LATE, site=sid, entity=o.id,
                text=f"order {o.id} overdue by {fmt_for(-o.slack_s)}", since=o.due, due=o.due, link=link,
                cost=float(o.remaining), detail=f"{o.remaining} of {o.qty} units left · {o.product}"))
    if projection is None:
        return out
    for p in projection.orders:
        row = rows.get(p.order)
        # finished since the projection (not open now), late already (above), or due after the horizon:
        # unfinished at the horizon is then no verdict (the engine counts it as not on time)
        if p.site != sid or row is None or row.overdue or p.due_s > projection.horizon_s:
            continue
        if p.probability >= ORDER_MEDIUM_P:
            continue
        severity = Severity.HIGH if p.probability < ORDER_HIGH_P else Severity.MEDIUM
        out.append(AttentionItem(
            severity=severity, kind=Kind.ORDER_LATE, site=sid, entity=p.order,
            text=f"order {p.order}: {p.probability * 100:.0f} % on time", since=None, due=row.due, link=link,
            cost=row.remaining * (1.0 - p.probability),
            detail=f"due {_hhmm(row.due, site, now)} · {row.remaining} of {row.qty} units left · {row.product}"))
    return out


def _behind_plan(site: SiteSpec, view: SiteView, now: datetime, th: Thresholds) -> AttentionItem | None:
    t = view.tile
    if t.stale or t.output_today is None or t.plan_by_now is None or t.plan_by_now <= 0:
        return None
    plan = round(t.plan_by_now)
    short = plan - t.output_today
    if short < 1 or t.output_today >= th.behind_plan * t.plan_by_now:
        return None
    severity = Severity.HIGH if t.output_today < HIGH_BEHIND * t.plan_by_now else Severity.MEDIUM
    return AttentionItem(
        severity=severity, kind=Kind.BEHIND_PLAN, site=str(site.id), entity=str(site.id),
        text=f"{site.id} {short} units behind plan ({t.output_today} of {plan} by {_hhmm(now, site, now)})",
        since=None, link=_href("/site", str(site.id)), cost=float(short),
        detail=f"plan today {t.plan_today:,} units · {t.output_today / t.plan_by_now * 100:.0f} % of plan by now")


def _stale(site: SiteSpec, view: SiteView, now: datetime) -> list[AttentionItem]:
    t = view.tile
    sid = str(site.id)
    link = _href("/site", sid)
    if t.stale:
        age = f"for {fmt_for(t.age_s)}" if t.age_s is not None else "yet"
        since = now - timedelta(seconds=t.age_s) if t.age_s is not None else None
        return [AttentionItem(severity=Severity.HIGH, kind=Kind.STALE_DATA, site=sid, entity=sid,
                              text=f"{sid}: no current data {age}", since=since, link=link,
                              detail="machine states, output and plan unknown until data comes back")]
    out = []
    n = len(view.machines)
    if t.machines_dark:
        dark = [m for m in view.machines if m.shown is MachineStatus.UNKNOWN]
        oldest = max((m.age_s for m in dark if m.age_s is not None), default=None)
        out.append(AttentionItem(
            severity=Severity.MEDIUM, kind=Kind.STALE_DATA, site=sid, entity=sid,
            text=f"{sid}: {t.machines_dark} of {n} machine(s) without current data",
            since=now - timedelta(seconds=oldest) if oldest is not None else None, link=link,
            detail=", ".join(m.machine for m in dark[:8]) + (" …" if len(dark) > 8 else "")))
    if t.stock_unknown:
        unknown = [r.sku for r in view.stock if r.on_hand is None]
        out.append(AttentionItem(
            severity=Severity.MEDIUM, kind=Kind.STALE_DATA, site=sid, entity=sid,
            text=f"{sid}: {t.stock_unknown} stock item(s) without current data", since=None,
            link=link + "#site-stock", detail=", ".join(unknown[:8])))
    return out


def _sort_key(i: AttentionItem) -> tuple[float, float, int, float, str, str]:
    since = i.since.timestamp() if i.since is not None else math.inf
    return (-int(i.severity), -i.cost, KIND_ORDER[i.kind], since, i.site, i.entity)


def rank(items: Sequence[AttentionItem]) -> list[AttentionItem]:
    """``items`` in the order of :data:`RANKING`: severity, then the cost at stake, then kind and age."""
    return sorted(items, key=_sort_key)


def attention_items(fleet: FleetSpec, views: Sequence[SiteView], projection: ProjectionRun | None,
                    now: datetime, thresholds: Thresholds | None = None,
                    health: HealthView | None = None) -> list[AttentionItem]:
    """The ranked list of every site in ``views`` at ``now`` (pure: the views and the projection are given)."""
    th = thresholds or Thresholds()
    items: list[AttentionItem] = []
    for view in views:
        site = fleet.site(view.tile.site)
        items += _machines_down(site, view, now)
        if health is not None:
            items += _failure_risk(site, view, health)
        items += [i for r in view.stock if (i := _stockout(site, r, now)) is not None]
        items += _orders(site, view, projection, now)
        behind = _behind_plan(site, view, now, th)
        if behind is not None:
            items.append(behind)
        items += _stale(site, view, now)
    return rank(items)


def attention_view(fleet: FleetSpec, views: Sequence[SiteView], projection: ProjectionRun | None,
                   now: datetime, note: str = "", health: HealthView | None = None) -> AttentionView:
    """The list with when it was checked and the projection behind it (pure)."""
    return AttentionView(items=tuple(attention_items(fleet, views, projection, now, health=health)), checked_at=now,
                         sites=len(views), projection=projection, note=note)


# --------------------------------------------------------------------------------------------- the service
@dataclass(frozen=True, slots=True, kw_only=True)
class AttentionSettings:
    """How often the list is rebuilt, and how often and how far its projection looks ahead.

    ``enabled`` is the projection (``twin dashboard --attention-every 0``: off, the list shows what is
    wrong now); the list itself is rebuilt every ``list_every_s`` whenever the service runs.
    """

    enabled: bool = True
    list_every_s: float = 5.0  # rebuild the list this often (the dashboard's --refresh)
    period_s: float = 900.0  # project every 15 min
    first_delay_s: float = 5.0  # the first projection this long after the list is first read
    horizon_h: float = 24.0
    replications: int = 20
    calibrate_days: float = 7.0  # 0: the configured figures
    seed: int = 1
    second_order: bool = True

    def check(self) -> AttentionSettings:
        """Self, or ConfigError naming every setting out of range."""
        problems = out_of_range((("list_every_s", self.list_every_s, 0.1, 3600.0),
                                 ("period_s", self.period_s, 10.0, 86400.0),
                                 ("first_delay_s", self.first_delay_s, 0.0, 3600.0),
                                 ("horizon_h", self.horizon_h, 1.0, 24 * 14.0),
                                 ("replications", self.replications, 1, 1000),
                                 ("calibrate_days", self.calibrate_days, 0.0, 60.0)), "attention.")
        if problems:
            raise ConfigError("dashboard attention settings", problems)
        return self


def _own_reader(historian: HistorianReader) -> Callable[[], HistorianReader] | None:
    """A way to open a reader of the query service's SQLite store of its own (None: another historian).

    Calibration reads days of raw points, more than the dashboard's user-facing reader allows and for
    longer than its request threads should wait on its lock.
    """
    from connectors.store import SqliteHistorian

    if not isinstance(historian, SqliteHistorian):
        return None
    path, fleet = historian.path, historian.fleet
    return lambda: SqliteHistorian(path, fleet, readonly=True)


class AttentionService:
    """Builds the ranked attention list and keeps the fleet's projection fresh, each on a daemon thread.

    ``start()`` starts the list thread, which calls :meth:`refresh` at once and then every
    ``list_every_s``: it reads ``queries.site_view`` of every site (the query service's refresher
    keeps them current) and builds the list with the latest projection, a new
    :class:`AttentionView` only when either changed. ``view()`` only returns the last one built (a
    ``pending`` view before the first), so every tab and every refresh costs a pointer read; the
    first ``view()`` starts the threads when nobody did (an app made without ``twin dashboard``).
    The projection thread (when ``enabled``) projects ``first_delay_s`` after the start and then every
    ``period_s``; ``run_now()`` projects at once in the calling thread and ``refresh()`` rebuilds the
    list in it (tests and the bench do). ``open_historian`` gives the projection a reader of its own
    (default: the SQLite store reopened read-only; another historian is read through the query
    service with the configured figures). The threads end with ``stop()`` (``twin dashboard`` calls
    it before it closes the historian), or on their own once nothing refers to the service any more.
    """

    def __init__(self, *, queries: QueryService, settings: AttentionSettings | None = None,
                 open_historian: Callable[[], HistorianReader] | None = None,
                 health: HealthService | None = None) -> None:
        self.queries = queries
        self.health = health  # its last view gives the failure-risk lines
        self.fleet = queries.fleet
        self.settings = (settings or AttentionSettings()).check()
        self._open = open_historian or _own_reader(queries.historian)
        self._latest: ProjectionRun | None = None
        self._note = ""
        self._built: tuple[tuple[SiteView, ...], ProjectionRun | None, str, AttentionView,
                           HealthView | None] | None = None
        self._pending = AttentionView(items=(), checked_at=queries.now(), sites=len(self.fleet.sites), pending=True)
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None  # the projection's
        self._list_thread: threading.Thread | None = None
        self._started = False  # view() starts the threads once; after stop() only start() does
        self.projected = threading.Event()  # set after each projection kept (tests wait on it)
        self.refreshed = threading.Event()  # set after each list built (tests wait on it)

    def projection(self) -> ProjectionRun | None:
        return self._latest

    def view(self) -> AttentionView:
        """The last list built, at once (pending before the first); never reads the history itself."""
        if not self._started:
            self.start()
        built = self._built
        return built[3] if built is not None else self._pending

    def refresh(self) -> AttentionView:
        """Build the list now from the current site views and projection (the same object when neither changed)."""
        with self._refresh_lock:
            views = tuple(self.queries.site_view(str(s.id)) for s in self.fleet.sites)
            run, note = self._latest, self._note
            health = self.health.view() if self.health is not None else None
            built = self._built
            if (built is not None and built[1] is run and built[2] == note and built[4] is health
                    and len(built[0]) == len(views)
                    and all(a is b for a, b in zip(built[0], views, strict=True))):
                self.refreshed.set()
                return built[3]
            now = max((v.now for v in views), default=self.queries.now())
            view = attention_view(self.fleet, views, run, now, note, health)
            self._built = (views, run, note, view, health)
            self.refreshed.set()
            return view

    def run_now(self) -> ProjectionRun:
        """Project every site from its state now (in this thread) and keep the result."""
        from twin.sim.build import fork
        from twin.sim.montecarlo import run as monte_carlo
        from twin.sim.whatif import prepare

        s = self.settings
        with self._run_lock:
            now = self.queries.now()
            started = time.monotonic()
            self._note = f"projecting the orders since {now:%H:%M:%S} UTC"
            reader = self._open() if self._open is not None else None
            try:
                historian = reader if reader is not None else self.queries.historian
                days = s.calibrate_days if reader is not None else 0.0
                inputs = prepare(self.fleet, historian, now, None, days)
                base = fork(self.fleet, inputs.snapshot(), None, inputs.params, horizon_s=s.horizon_h * 3600.0)
                result = monte_carlo(base.data, replications=s.replications, seed=s.seed, workers=1,
                                     as_of=base.as_of, uncertainty=inputs.uncertainty, second_order=s.second_order)
                proj = result.projection()
            except Exception as exc:
                self._note = f"the last projection ({now:%H:%M} UTC) failed: {exc}"
                raise
            finally:
                if reader is not None:
                    reader.close()
            run = ProjectionRun(computed_at=now, as_of=base.as_of, horizon_s=proj.horizon_s,
                                replications=proj.replications, orders=proj.orders,
                                duration_s=time.monotonic() - started, calibrated=inputs.calibration is not None)
            self._latest = run
            self._note = ""
            log.info("attention: %d open orders projected (%d × %.0f h) in %.1f s", len(run.orders),
                     run.replications, s.horizon_h, run.duration_s)
            self.projected.set()
            return run

    def start(self) -> None:
        """Start the list thread and (when enabled) the projection thread; idempotent."""
        with self._lock:
            self._started = True
            self._stop.clear()
            # the threads hold the service weakly: an app dropped by its owner (a test) ends its threads
            ref = weakref.ref(self)
            if self._list_thread is None or not self._list_thread.is_alive():
                self._list_thread = threading.Thread(
                    target=every, args=(ref, self._stop, 0.0, self.settings.list_every_s, AttentionService.refresh,
                                         "building the attention list failed"),
                    name="dashboard-attention-list", daemon=True)
                self._list_thread.start()
            if self.settings.enabled and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(
                    target=every, args=(ref, self._stop, self.settings.first_delay_s, self.settings.period_s,
                                         AttentionService.run_now, "projecting the attention list's orders failed"),
                    name="dashboard-attention", daemon=True)
                self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """End both threads (a projection under way finishes first, within ``timeout_s``)."""
        self._stop.set()
        threads = (self._thread, self._list_thread)
        self._thread = self._list_thread = None
        for thread in threads:
            if thread is not None:
                thread.join(timeout_s)

    close = stop
