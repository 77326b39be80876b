"""Why machines stopped: each stop classified by a site's downtime rules, the Pareto of lost time, the OEE waterfall.

A machine's status history over a window is a sequence of ``StatusSpan``s (``spans_from_events``
builds them from its STATUS_CHANGE events). Every span in which it was not running is a stop;
``classify`` cuts each stop at the shift and break boundaries and at the edges of the evidence it is
given, and gives each piece the reason of the first rule that applies (the order documented under
``[sites.downtime]`` in docs/configuration.md):

1. outside the site's shifts: ``no_shift`` (not planned time, so no loss);
2. FAULT: the reason its fault code maps to, else the site's ``fault`` reason (``breakdown``);
3. MAINTENANCE and SETUP: the site's ``maintenance`` and ``setup`` reasons;
4. IDLE or OFF inside a scheduled break: ``scheduled_break``;
5. IDLE or OFF while a material of the bill of materials drawn at this machine's step was at zero
   (``stock_zero`` intervals): ``material_shortage``;
6. IDLE or OFF while the twin knew the upstream queue was empty (``queue_empty`` intervals): ``starved``;
7. anything else, ``blocked`` included (the twin cannot tell it from the data) and time without a
   known status: no reason (``reason is None``): it needs a person.

A person's classification (a STOP_CLASSIFIED event, sent through the collector's endpoint with
the stop's start, a reason of the site's tree, who and why) gives such a stop its reason:
``apply_classifications`` puts it on the piece of the machine's stop that begins at that start
(or contains it), with who, when and the comment; the last one recorded wins. It never overrides
a reason the data gave.

A rule whose reason is not in the site's tree gives no reason either. ``pareto`` ranks the lost
time (stops in planned time) by reason; ``waterfall`` splits a window's planned time into the
availability losses by reason, the performance and quality losses and the fully productive time,
from the same ``twin.kpi.Oee`` the dashboard shows, so its last bar over planned time *is* that OEE.

>>> from datetime import UTC, datetime, time
>>> from twin.spec import Shift, ShiftCalendar, SiteKind, SiteSpec
>>> day = Shift(name="day", weekdays=frozenset(range(7)), start=time(6), end=time(14))
>>> site = SiteSpec(id="s1", name="s1", kind=SiteKind.POINT_OF_DEMAND, timezone="UTC",
...                 calendar=ShiftCalendar(shifts=(day,)), machines=())
>>> t = lambda h, m=0: datetime(2026, 1, 5, h, m, tzinfo=UTC)
>>> spans = [StatusSpan(start=t(5), end=t(7), status=MachineStatus.OFF),
...          StatusSpan(start=t(7), end=t(8), status=MachineStatus.FAULT, fault_code=0)]
>>> [(s.start.hour, s.end.hour, s.reason, s.planned) for s in classify(site, "M1", spans)]
[(5, 6, 'no_shift', False), (6, 7, None, True), (7, 8, 'breakdown', True)]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from twin.calendar import shift_intervals
from twin.kpi.production import Oee
from twin.spec import (
    DowntimeCategory,
    MachineId,
    MachineSpec,
    MachineStatus,
    ProductFamily,
    ShiftCalendar,
    SiteSpec,
    Sku,
    consuming_step,
)
from twin.state import Event, EventKind, OpenOrder

__all__ = [
    "NO_SHIFT",
    "RAN_OUTSIDE_SHIFT",
    "Interval",
    "ParetoRow",
    "StatusSpan",
    "Stop",
    "Waterfall",
    "WaterfallStep",
    "apply_classifications",
    "classify",
    "clip",
    "fault_code_at",
    "materials_of",
    "pareto",
    "spans_from_events",
    "upstream_queue_empty",
    "waterfall",
    "zero_intervals",
]

Interval = tuple[datetime, datetime]

NO_SHIFT = "no_shift"
RAN_OUTSIDE_SHIFT = "ran_outside_shift"  # the waterfall's credit for run time outside the shifts
_IDLE_LIKE = (MachineStatus.IDLE, MachineStatus.OFF)


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusSpan:
    """A machine in one status over ``[start, end)``; ``fault_code`` is what its fault signal held (None: unknown)."""

    start: datetime
    end: datetime
    status: MachineStatus
    fault_code: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop:
    """A piece of a stop with its reason (None: needs a person) and the rule that gave it (``why``).

    ``planned`` says whether it lies in the site's planned time (its shifts): only those are lost time.
    """

    machine: MachineId
    start: datetime
    end: datetime
    status: MachineStatus
    reason: str | None
    why: str
    planned: bool
    category: DowntimeCategory | None = None
    fault_code: int | None = None
    by: str = ""  # who classified it by hand ("" when the data did, or nobody yet)
    classified_at: datetime | None = None
    comment: str = ""

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def spans_from_events(machine: str, initial: MachineStatus, events: Iterable[Event], t0: datetime,
                      t1: datetime) -> list[StatusSpan]:
    """The status spans of ``machine`` over ``[t0, t1)``: ``initial`` at ``t0``, then each STATUS_CHANGE of it.

    Events of other assets or kinds and outside ``(t0, t1)`` are ignored; zero-length spans are dropped.
    """
    changes = sorted((e for e in events if e.asset == machine and e.kind is EventKind.STATUS_CHANGE
                      and t0 < e.ts < t1), key=lambda e: e.ts)
    out: list[StatusSpan] = []
    status, since = initial, t0
    for e in changes:
        try:
            to = MachineStatus(e.data.get("to"))
        except ValueError:
            to = MachineStatus.UNKNOWN
        if e.ts > since:
            out.append(StatusSpan(start=since, end=e.ts, status=status))
        status, since = to, e.ts
    if t1 > since:
        out.append(StatusSpan(start=since, end=t1, status=status))
    return out


def fault_code_at(samples: Sequence[tuple[datetime, float]], start: datetime, end: datetime) -> int | None:
    """The fault code of a fault over ``[start, end)`` from the fault signal's samples (in time order).

    The code in effect at ``start`` when it is not 0, else the first non-zero code sampled during the
    span (a PLC may publish the code a poll after the status); 0 when it stayed 0, None without samples.
    """
    before = [v for ts, v in samples if ts <= start]
    if before and before[-1]:
        return int(before[-1])
    during = [v for ts, v in samples if start < ts < end]
    for v in during:
        if v:
            return int(v)
    return 0 if before or during else None


def zero_intervals(samples: Sequence[tuple[datetime, float]], t1: datetime) -> list[Interval]:
    """The intervals up to ``t1`` during which sampled stock (in time order) was at or below zero."""
    out: list[Interval] = []
    since: datetime | None = None
    for ts, v in samples:
        if v <= 0 and since is None:
            since = ts
        elif v > 0 and since is not None:
            out.append((since, ts))
            since = None
    if since is not None and t1 > since:
        out.append((since, t1))
    return out


def materials_of(site: SiteSpec, products: Sequence[ProductFamily], machine: MachineSpec) -> frozenset[Sku]:
    """The SKUs drawn from stock at ``machine``'s routing step for the products ``site`` makes.

    A material leaves the shelf at the step ``twin.spec.consuming_step`` names; a machine of that
    step's role cannot work on without it.
    """
    made = {d.product for d in site.demand}
    out: set[Sku] = set()
    for p in products:
        if p.id not in made or not p.routing:
            continue
        for sku in p.bom:
            item = site.item(sku)
            if item is not None and p.routing[consuming_step(p, item.kind)] is machine.role:
                out.add(sku)
    return frozenset(out)


def upstream_queue_empty(site: SiteSpec, products: Sequence[ProductFamily], machine: MachineSpec,
                         orders: Sequence[OpenOrder]) -> bool | None:
    """Whether no unit of the site's open orders was waiting for ``machine``'s step; None if the twin cannot tell.

    Units waiting at step k of a routing are those through step k-1 and not through k (at the first
    step: ordered and not through it), from each order's ``done_by_step``. An order without it leaves
    the queue unknown (None), unless the machine is at the first step and the order is all done.
    No open order routed through the machine's role: nothing to do, the queue is empty.
    """
    by_id: dict[str, ProductFamily] = {p.id: p for p in products}
    for o in orders:
        p = by_id.get(o.product)
        if p is None or machine.role not in p.routing:
            continue
        k = p.routing.index(machine.role)
        if not o.done_by_step:
            if k == 0 and o.done_qty >= o.qty:
                continue
            return None
        through = o.done_by_step[k] if k < len(o.done_by_step) else 0
        upstream = o.qty if k == 0 else (o.done_by_step[k - 1] if k - 1 < len(o.done_by_step) else 0)
        if upstream - through > 0:
            return False
    return True


def _cut(pieces: list[Interval], windows: Sequence[Interval]) -> tuple[list[Interval], list[Interval]]:
    """Split ``pieces`` into the parts inside ``windows`` and the parts outside them."""
    inside: list[Interval] = []
    outside: list[Interval] = []
    for a, b in pieces:
        cursor = a
        for w0, w1 in sorted(windows):
            lo, hi = max(a, w0), min(b, w1)
            if hi <= lo:
                continue
            if lo > cursor:
                outside.append((cursor, lo))
            inside.append((lo, hi))
            cursor = max(cursor, hi)
        if b > cursor:
            outside.append((cursor, b))
    return inside, outside


def _reason(site: SiteSpec, rid: str, why: str) -> tuple[str | None, str, DowntimeCategory | None]:
    r = site.downtime.reason(rid)
    if r is None:
        return None, f"{why}; reason {rid!r} is not in the site's tree", None
    return rid, why, r.category


def classify(site: SiteSpec, machine: str, spans: Sequence[StatusSpan], *,
             stock_zero: Sequence[Interval] = (), queue_empty: Sequence[Interval] = ()) -> list[Stop]:
    """Every stop of ``machine`` in ``spans`` (its status history), cut and classified; in time order.

    ``stock_zero``: when a material drawn at this machine's step was at zero (``zero_intervals``,
    ``materials_of``); ``queue_empty``: when the twin knew its upstream queue was empty
    (``upstream_queue_empty``). Without them, idle time is left to a person.
    """
    if not spans:
        return []
    t0, t1 = min(s.start for s in spans), max(s.end for s in spans)
    shifts = shift_intervals(site.calendar, site.timezone, t0, t1)
    dt = site.downtime
    breaks = shift_intervals(ShiftCalendar(shifts=dt.breaks), site.timezone, t0, t1) if dt.breaks else []
    mid = MachineId(machine)
    out: list[Stop] = []

    def add(pieces: Iterable[Interval], span: StatusSpan, verdict: tuple[str | None, str, DowntimeCategory | None],
            planned: bool) -> None:
        reason, why, category = verdict
        for a, b in pieces:
            out.append(Stop(machine=mid, start=a, end=b, status=span.status, reason=reason, why=why,
                            planned=planned, category=category, fault_code=span.fault_code))

    for span in spans:
        if span.status is MachineStatus.RUNNING or span.end <= span.start:
            continue
        planned_parts, unplanned_parts = _cut([(span.start, span.end)], shifts)
        add(unplanned_parts, span, _reason(site, NO_SHIFT, "outside the site's shifts"), False)
        if span.status is MachineStatus.FAULT:
            code = span.fault_code
            if code is not None and code in dt.fault_codes:
                verdict = _reason(site, dt.fault_codes[code], f"fault code {code}")
            else:
                verdict = _reason(site, dt.fault, "fault" if code in (None, 0) else f"fault code {code} (not mapped)")
            add(planned_parts, span, verdict, True)
        elif span.status is MachineStatus.MAINTENANCE:
            add(planned_parts, span, _reason(site, dt.maintenance, "status maintenance"), True)
        elif span.status is MachineStatus.SETUP:
            add(planned_parts, span, _reason(site, dt.setup, "status setup"), True)
        elif span.status in _IDLE_LIKE:
            rest = planned_parts
            for windows, rid, why in ((breaks, "scheduled_break", "in a scheduled break"),
                                      (stock_zero, "material_shortage", "a material of its step at zero stock"),
                                      (queue_empty, "starved", "its upstream queue was empty")):
                inside, rest = _cut(rest, windows)
                add(inside, span, _reason(site, rid, why), True)
            add(rest, span, (None, f"{span.status.value}: the data does not say why (needs a person)", None), True)
        else:
            add(planned_parts, span, (None, "no status data (needs a person)", None), True)
    out.sort(key=lambda s: (s.start, s.end))
    return out


def apply_classifications(site: SiteSpec, stops: Sequence[Stop], events: Iterable[Event]) -> list[Stop]:
    """``stops`` with the reasons people gave (STOP_CLASSIFIED events of ``site``) on those that needed a person.

    An event names the machine (``asset``), the stop's ``start`` (ISO 8601), the ``reason``, the
    ``user`` and a ``comment``. It applies to the machine's unclassified piece that contains that
    start; when it is classified again, the last one by time wins. A reason
    not in the site's tree (the tree changed since) is left out and the stop still needs a person.

    >>> from datetime import UTC, timedelta
    >>> from twin.codec import dt_to_json
    >>> from twin.frozen import FrozenDict
    >>> from twin.spec import SiteKind, default_downtime
    >>> t = datetime(2026, 1, 5, 8, tzinfo=UTC)
    >>> stop = Stop(machine="M1", start=t, end=t + timedelta(minutes=20), status=MachineStatus.IDLE, reason=None,
    ...             why="idle", planned=True)
    >>> e = Event(ts=t + timedelta(minutes=30), site="s1", asset="M1", kind=EventKind.STOP_CLASSIFIED, message="",
    ...           data=FrozenDict({"start": dt_to_json(t), "reason": "blocked", "user": "ana", "comment": "full"}))
    >>> site = SiteSpec(id="s1", name="s1", kind=SiteKind.POINT_OF_DEMAND, timezone="UTC",
    ...                 calendar=ShiftCalendar(shifts=()), machines=(), downtime=default_downtime())
    >>> [(s.reason, s.category.value, s.by) for s in apply_classifications(site, [stop], [e])]
    [('blocked', 'unplanned', 'ana')]
    """
    given = sorted((e for e in events if e.kind is EventKind.STOP_CLASSIFIED), key=lambda e: e.ts)
    if not given:
        return list(stops)
    out = list(stops)
    for e in given:
        try:
            start = datetime.fromisoformat(str(e.data.get("start", "")))
        except ValueError:
            continue
        if start.tzinfo is None:
            continue
        rid = str(e.data.get("reason", ""))
        r = site.downtime.reason(rid)
        if r is None:
            continue
        for i, s in enumerate(out):
            if s.machine != e.asset or not s.start <= start < s.end:
                continue
            if s.reason is not None and not s.by:
                continue  # the data said why: a person does not override it
            out[i] = replace(s, reason=rid, category=r.category, by=str(e.data.get("user", "")),
                             classified_at=e.ts, comment=str(e.data.get("comment", "")),
                             why=f"classified by {e.data.get('user', '')}")
    return out


def clip(stops: Iterable[Stop], t0: datetime, t1: datetime) -> list[Stop]:
    """The stops cut to ``[t0, t1)`` (a period of a longer history)."""
    out = []
    for s in stops:
        a, b = max(s.start, t0), min(s.end, t1)
        if b > a:
            out.append(replace(s, start=a, end=b))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ParetoRow:
    """Lost time of one reason (None: not classified yet), its number of stops and its share of all lost time."""

    reason: str | None
    seconds: float
    stops: int
    share: float
    cumulative: float


def pareto(stops: Iterable[Stop]) -> list[ParetoRow]:
    """Lost time by reason, largest first: the stops in planned time (a machine's, a site's or a period's).

    >>> from datetime import UTC, timedelta
    >>> t = datetime(2026, 1, 5, 8, tzinfo=UTC)
    >>> s = lambda m, r: Stop(machine="M1", start=t, end=t + timedelta(minutes=m), status=MachineStatus.IDLE,
    ...                       reason=r, why="", planned=True)
    >>> [(r.reason, r.seconds, r.stops, r.cumulative) for r in pareto([s(30, "a"), s(10, None), s(60, "a")])]
    [('a', 5400.0, 2, 0.9), (None, 600.0, 1, 1.0)]
    """
    seconds: dict[str | None, float] = {}
    counts: dict[str | None, int] = {}
    for s in stops:
        if not s.planned:
            continue
        seconds[s.reason] = seconds.get(s.reason, 0.0) + s.seconds
        counts[s.reason] = counts.get(s.reason, 0) + 1
    total = math.fsum(seconds.values())
    rows: list[ParetoRow] = []
    running = 0.0
    for reason, secs in sorted(seconds.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or "")):
        running += secs
        rows.append(ParetoRow(reason=reason, seconds=secs, stops=counts[reason],
                              share=secs / total if total > 0 else 0.0,
                              cumulative=running / total if total > 0 else 0.0))
    return rows


@dataclass(frozen=True, slots=True, kw_only=True)
class WaterfallStep:
    """One bar of the loss waterfall: seconds lost (negative: a credit), of which ``kind`` and ``reason``.

    ``kind`` is ``availability`` (with its ``reason``, None for stops nobody classified yet, or
    ``ran_outside_shift`` for run time outside the shifts that the availability counts toward the plan),
    ``performance`` or ``quality``.
    """

    kind: str
    reason: str | None
    seconds: float
    category: DowntimeCategory | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Waterfall:
    """Planned time → availability losses by reason → performance loss → quality loss → fully productive time.

    ``planned_s`` = Σ ``steps`` seconds + ``productive_s``; ``productive_s / planned_s`` is the OEE
    (None where the performance or quality is unknown: the waterfall then stops at ``run_s``).
    """

    planned_s: float
    steps: tuple[WaterfallStep, ...]
    run_s: float
    productive_s: float | None
    oee: float | None


def waterfall(kpi: Oee, stops: Iterable[Stop]) -> Waterfall:
    """The loss waterfall of a window from its OEE (``twin.kpi.machine_oee`` or ``site_oee``) and its stops.

    Availability loses planned − run time (the run time the OEE counts, at most the planned time),
    split by the reasons of the stops in planned time; when the machine also ran outside its shifts,
    the OEE counts that run toward the plan, so the stops add up to more than the loss and the
    difference is a credit step (``ran_outside_shift``, negative). Performance loses run − run ×
    performance (the ideal time of the parts made), quality the ideal time of the scrap; what is
    left is the fully productive time, planned time × OEE.

    >>> k = Oee(availability=0.75, performance=0.8, quality=0.5, oee=0.3, planned_s=100.0, run_s=75.0)
    >>> w = waterfall(k, [])
    >>> [(s.kind, s.seconds) for s in w.steps], w.productive_s
    ([('availability', 25.0), ('performance', 15.0), ('quality', 30.0)], 30.0)
    """
    planned = kpi.planned_s or 0.0
    run = min(kpi.run_s or 0.0, planned)
    by_reason: dict[str | None, float] = {}
    category: dict[str | None, DowntimeCategory | None] = {}
    for s in stops:
        if s.planned:
            by_reason[s.reason] = by_reason.get(s.reason, 0.0) + s.seconds
            category[s.reason] = s.category
    credit = (planned - run) - math.fsum(by_reason.values())
    tolerance = 1e-6 * max(planned, 1.0)
    if credit > tolerance:  # lost time that no stop given accounts for: nobody can say why
        by_reason[None] = by_reason.get(None, 0.0) + credit
        category.setdefault(None, None)
    steps = [WaterfallStep(kind="availability", reason=r, seconds=v, category=category[r])
             for r, v in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))]
    if credit < -tolerance:  # the stops add up to more than the loss: the run outside the shifts counted
        steps.append(WaterfallStep(kind="availability", reason=RAN_OUTSIDE_SHIFT, seconds=credit))
    elif abs(credit) <= tolerance and steps:  # a rounding difference of float seconds: on the largest reason
        steps[0] = replace(steps[0], seconds=steps[0].seconds + credit)
    productive: float | None = None
    if kpi.performance is not None and kpi.quality is not None:
        effective = run * kpi.performance
        productive = effective * kpi.quality
        steps.append(WaterfallStep(kind="performance", reason=None, seconds=run - effective))
        steps.append(WaterfallStep(kind="quality", reason=None, seconds=effective - productive))
    return Waterfall(planned_s=planned, steps=tuple(steps), run_s=run, productive_s=productive,
                     oee=None if productive is None or planned <= 0 else productive / planned)
