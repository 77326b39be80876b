"""A shift's report as numbers: output against plan, OEE, downtime, losses, alarms, orders and stock at risk.

``build_report(inputs)`` is pure: ``ShiftInputs`` holds what the historian says about one shift of
one site (its snapshots at the shift's start and end, its events, the fault codes and stock levels
sampled, when upstream queues were known empty), and ``ShiftReport`` every figure of the report,
computed by the same functions as the dashboard: ``twin.kpi`` for OEE and output, ``twin.downtime``
for the stops, their Pareto and the loss waterfall, ``twin.alarm_performance`` for the alarms.
``app.report`` reads the history, calls this and writes the HTML page, the PDF and the CSV tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from twin.alarm_performance import AlarmPerformance, performance
from twin.alarm_shelving import ShelveChange, hidden_intervals, shelving_journal
from twin.calendar import planned_seconds
from twin.downtime import (
    Interval,
    ParetoRow,
    Stop,
    Waterfall,
    apply_classifications,
    classify,
    fault_code_at,
    pareto,
    spans_from_events,
    waterfall,
    zero_intervals,
)
from twin.downtime import materials_of as _materials_of
from twin.kpi import Oee, OutputVsPlan, days_of_cover, finishing_machines, machine_oee, machine_window, site_oee
from twin.kpi import output_vs_plan as _output_vs_plan
from twin.spec import FleetSpec, MachineId, MachineStatus, SiteSpec, Sku
from twin.state import Event, EventKind, SiteState

__all__ = [
    "MachineRow",
    "NextShift",
    "OrderRow",
    "ShiftInputs",
    "ShiftReport",
    "ShiftWindow",
    "StockRow",
    "build_report",
    "plan_units",
    "shift_windows",
    "suppression_intervals",
]

Samples = Sequence[tuple[datetime, float]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ShiftWindow:
    """One shift of a site: its name and its UTC start and end."""

    name: str
    start: datetime
    end: datetime


def shift_windows(site: SiteSpec, t0: datetime, t1: datetime) -> list[ShiftWindow]:
    """Every shift of ``site`` that starts in ``[t0, t1)``, in order (each shift on its own, never merged).

    >>> from datetime import time
    >>> from twin.spec import Shift, ShiftCalendar, SiteKind
    >>> cal = ShiftCalendar(shifts=(Shift(name="early", weekdays=frozenset({0}), start=time(6), end=time(14)),
    ...                             Shift(name="night", weekdays=frozenset({0}), start=time(22), end=time(6))))
    >>> s = SiteSpec(id="s", name="s", kind=SiteKind.POINT_OF_DEMAND, timezone="Europe/Berlin", calendar=cal,
    ...              machines=())
    >>> for w in shift_windows(s, datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC)):
    ...     print(w.name, w.start.isoformat(), w.end.isoformat())
    early 2026-01-05T05:00:00+00:00 2026-01-05T13:00:00+00:00
    night 2026-01-05T21:00:00+00:00 2026-01-06T05:00:00+00:00
    """
    zone = ZoneInfo(site.timezone)
    day: date = t0.astimezone(zone).date() - timedelta(days=1)
    last = t1.astimezone(zone).date()
    out: list[ShiftWindow] = []
    while day <= last:
        if day not in site.calendar.holidays:
            for sh in site.calendar.shifts:
                if day.weekday() not in sh.weekdays:
                    continue
                end_day = day + timedelta(days=1) if sh.end <= sh.start else day
                start = datetime.combine(day, sh.start, tzinfo=zone).astimezone(UTC)
                end = datetime.combine(end_day, sh.end, tzinfo=zone).astimezone(UTC)
                if t0 <= start < t1:
                    out.append(ShiftWindow(name=sh.name, start=start, end=end))
        day += timedelta(days=1)
    return sorted(out, key=lambda w: (w.start, w.name))


@dataclass(frozen=True, slots=True, kw_only=True)
class ShiftInputs:
    """What the history says about one shift of one site (see the module docstring).

    ``before``/``after``: the site's snapshots at the shift's start and end. ``events``: the site's
    events in the shift. ``fault_codes`` / ``on_hand``: samples of each machine's fault-code signal
    and each item's stock over the shift (the last one before it first). ``queue_empty``: per machine,
    when its upstream queue was known empty. ``earlier``: the site's alarm and shelving events
    before the shift (a lookback), so an alarm shelved before it is known shelved in it; the people's
    classifications of the shift's stops and shelvings in it are among ``events``.
    """

    fleet: FleetSpec
    site: SiteSpec
    window: ShiftWindow
    before: SiteState
    after: SiteState
    events: tuple[Event, ...] = ()
    fault_codes: Mapping[str, Samples] = field(default_factory=dict)
    on_hand: Mapping[str, Samples] = field(default_factory=dict)
    queue_empty: Mapping[str, Sequence[Interval]] = field(default_factory=dict)
    earlier: tuple[Event, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineRow:
    """One machine's shift: its OEE, its output and what it lost (seconds of stops in planned time)."""

    machine: MachineId
    oee: Oee
    good: int | None
    scrap: int | None
    stops: int
    lost_s: float
    unclassified_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRow:
    """An order shipped in the shift (``shipped`` set) or still open and past due at its end."""

    order: str
    product: str
    qty: int
    due: datetime
    shipped: datetime | None
    late_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class StockRow:
    """An item at risk at the shift's end: at or below its reorder point, or covering less than its lead time."""

    sku: Sku
    on_hand: float | None
    reorder_point: float
    cover_d: float | None
    lead_time_d: float
    why: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NextShift:
    """The twin's projection of the next shift (a what-if baseline forked at this shift's end).

    ``units_p10/p50/p90``: quantiles over the replications of the units finished in the next shift;
    ``stockouts``: (sku, probability, its 95 % interval) of stocking out before its end;
    ``orders_at_risk``: (order, probability of finishing on time) below 80 %, least likely first.
    """

    window: ShiftWindow
    replications: int
    calibrated: bool
    units_p10: float
    units_p50: float
    units_p90: float
    plan: float
    stockouts: tuple[tuple[str, float, float, float], ...] = ()
    orders_at_risk: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ShiftReport:
    """Every figure of a shift's report (``build_report``); ``next_shift`` is added by whoever runs the twin."""

    site: SiteSpec
    window: ShiftWindow
    planned_s: float
    output: OutputVsPlan
    oee: Oee
    machines: tuple[MachineRow, ...]
    stops: tuple[Stop, ...]
    pareto: tuple[ParetoRow, ...]
    waterfall: Waterfall
    alarms: AlarmPerformance
    shipped: tuple[OrderRow, ...]
    late_open: tuple[OrderRow, ...]
    stock_at_risk: tuple[StockRow, ...]
    next_shift: NextShift | None = None
    shelving: tuple[ShelveChange, ...] = ()  # the shift's shelving changes (people's and the system's)
    shelving_refused: tuple[tuple[Event, str], ...] = ()  # people's changes the lifecycle did not allow, why


def plan_units(site: SiteSpec, w: ShiftWindow) -> float:
    """The site's daily plan pro rata: the shift's planned time over its local production day's."""
    return _plan_units(site, w)


def suppression_intervals(site: SiteSpec, events: Sequence[Event], before: SiteState,
                          t0: datetime, t1: datetime) -> dict[str, list[Interval]]:
    """When each machine's alarms were suppressed by design: while it was OFF or in MAINTENANCE."""
    out: dict[str, list[Interval]] = {}
    for m in site.machines:
        ms = before.machines.get(m.id)
        initial = ms.status if ms is not None else MachineStatus.UNKNOWN
        spans = spans_from_events(m.id, initial, events, t0, t1)
        out[m.id] = [(s.start, s.end) for s in spans if s.status in (MachineStatus.OFF, MachineStatus.MAINTENANCE)]
    return out


def _plan_units(site: SiteSpec, w: ShiftWindow) -> float:
    """The daily plan pro rata: the shift's planned time over its local production day's."""
    zone = ZoneInfo(site.timezone)
    day = w.start.astimezone(zone).date()
    d0 = datetime.combine(day, datetime.min.time(), tzinfo=zone).astimezone(UTC)
    d1 = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone).astimezone(UTC)
    day_s = planned_seconds(site.calendar, site.timezone, d0, d1)
    shift_s = planned_seconds(site.calendar, site.timezone, w.start, w.end)
    return site.daily_plan_units * shift_s / day_s if day_s > 0 else 0.0


def _stops(inputs: ShiftInputs) -> list[Stop]:
    site, w = inputs.site, inputs.window
    out: list[Stop] = []
    zero = {sku: zero_intervals(s, w.end) for sku, s in inputs.on_hand.items()}
    for m in site.machines:
        ms = inputs.before.machines.get(m.id)
        spans = spans_from_events(m.id, ms.status if ms is not None else MachineStatus.UNKNOWN, inputs.events,
                                  w.start, w.end)
        codes = inputs.fault_codes.get(m.id, ())
        spans = [s if s.status is not MachineStatus.FAULT else
                 replace(s, fault_code=fault_code_at(codes, s.start, s.end))
                 for s in spans]
        shortage = [iv for sku in _materials_of(site, inputs.fleet.products, m) for iv in zero.get(sku, ())]
        out.extend(classify(site, m.id, spans, stock_zero=shortage, queue_empty=inputs.queue_empty.get(m.id, ())))
    return sorted(apply_classifications(site, out, inputs.events), key=lambda s: (s.start, s.machine))


def _orders(inputs: ShiftInputs) -> tuple[list[OrderRow], list[OrderRow]]:
    w = inputs.window
    shipped = []
    for e in inputs.events:
        if e.kind is not EventKind.ORDER_CLOSED or e.message.endswith(" cancelled") or not w.start <= e.ts < w.end:
            continue
        due_text = e.data.get("due")
        try:
            due = datetime.fromisoformat(str(due_text))
        except ValueError:
            continue
        qty = e.data.get("qty")
        shipped.append(OrderRow(order=str(e.data.get("order", "")), product=str(e.data.get("product", "")),
                                qty=int(qty) if isinstance(qty, int | float) else 0, due=due, shipped=e.ts,
                                late_s=max((e.ts - due).total_seconds(), 0.0)))
    late = [OrderRow(order=o.id, product=o.product, qty=o.qty, due=o.due, shipped=None,
                     late_s=(w.end - o.due).total_seconds())
            for o in inputs.after.orders if o.due < w.end]
    return sorted(shipped, key=lambda r: r.shipped or r.due), sorted(late, key=lambda r: (-r.late_s, r.order))


def _stock(inputs: ShiftInputs) -> list[StockRow]:
    w = inputs.window
    days = (w.end - w.start).total_seconds() / 86400
    out = []
    for item in inputs.site.inventory:
        a, b = inputs.after.inventory.get(item.sku), inputs.before.inventory.get(item.sku)
        on_hand = a.on_hand if a is not None else None
        used = (a.consumed_total - b.consumed_total) if a is not None and b is not None else 0.0
        cover = days_of_cover(on_hand, used, days)
        if on_hand is not None and on_hand <= item.reorder_point:
            why = "at or below its reorder point"
        elif cover is not None and cover < item.lead_time_d:
            why = "covers less than its lead time"
        else:
            continue
        out.append(StockRow(sku=item.sku, on_hand=on_hand, reorder_point=item.reorder_point, cover_d=cover,
                            lead_time_d=item.lead_time_d, why=why))
    return out


def build_report(inputs: ShiftInputs) -> ShiftReport:
    """The report of ``inputs.window`` at ``inputs.site`` (numbers only; rendering is the caller's)."""
    site, w, before, after = inputs.site, inputs.window, inputs.before, inputs.after
    stops = _stops(inputs)
    rows = []
    for m in site.machines:
        b, a = before.machines.get(m.id), after.machines.get(m.id)
        if b is None or a is None:
            continue
        win = machine_window(m, b, a, w.start, w.end)
        mine = [s for s in stops if s.machine == m.id and s.planned]
        rows.append(MachineRow(machine=m.id, oee=machine_oee(site, m, b, a, w.start, w.end), good=win.good,
                               scrap=win.scrap, stops=len(mine), lost_s=sum(s.seconds for s in mine),
                               unclassified_s=sum(s.seconds for s in mine if s.reason is None)))
    kpi = site_oee(site, before, after)
    finishing = {m.id for m in finishing_machines(site, inputs.fleet.products)}
    made = sum((r.good or 0) for r in rows if r.machine in finishing)
    # the Pareto and the waterfall count the machines the site OEE counts: those whose status was known
    counted = {r.machine for r in rows if r.oee.run_s is not None}
    lost = [s for s in stops if s.machine in counted]
    shipped, late = _orders(inputs)
    shelving, refused = shelving_journal((*inputs.earlier, *inputs.events), w.end)
    return ShiftReport(
        site=site, window=w, planned_s=planned_seconds(site.calendar, site.timezone, w.start, w.end),
        output=_output_vs_plan(made, _plan_units(site, w)), oee=kpi, machines=tuple(rows), stops=tuple(stops),
        pareto=tuple(pareto(lost)), waterfall=waterfall(kpi, lost),
        alarms=performance(str(site.id), inputs.events, w.start, w.end, active_before=before.alarms.values(),
                           suppress=suppression_intervals(site, inputs.events, before, w.start, w.end),
                           shelved=hidden_intervals(shelving.journal, w.end)),
        shipped=tuple(shipped), late_open=tuple(late), stock_at_risk=tuple(_stock(inputs)),
        shelving=tuple(c for c in shelving.journal if w.start <= c.ts < w.end),
        shelving_refused=tuple((e, why) for e, why in refused if w.start <= e.ts < w.end),
    )
