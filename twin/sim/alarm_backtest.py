"""Backtest of the predictive alarms ``stockout_risk`` and ``late_order_risk`` over the past.

One job: score the two predictive alarm rules over rolling forks of the past, as ``twin backtest
--alarms`` runs them (``twin.sim.rolling``). The rules (the live ones in ``twin.alarms`` carry the
same names):

- ``stockout_risk``: raised when P(the SKU's shelf empties within ``horizon``) > ``threshold``
  (0.5 and 48 h by default);
- ``late_order_risk``: raised when P(an open order due within ``horizon`` finishes after its due)
  > ``threshold`` (0.5 and 24 h).

At every origin :func:`observe` takes, per candidate (every stocked SKU of the forked sites, every
order open at the origin and due within the horizon), the **predicted probability** from the
fork's replications and the **outcome** from what the history then shows:

- a stockout: the SKU's on hand falls below what one unit of any product needs (its smallest line
  in a bill of materials, so a unit has to wait for material; 0 for an item no product draws)
  within the horizon after the origin. A SKU already out at the origin is not a prediction and is
  left out; so is a window the history does not cover to its end (censored);
- a late order: its ``order_closed`` record (not a cancellation) comes after its due, or there is
  none by its due. Orders already overdue at the origin, cancelled, or due after the end of the
  history are left out.

:func:`score` pools the observations of one rule at one threshold: the confusion counts,
**precision** TP / (TP + FP) and **recall** TP / (TP + FN) with their Wilson 95 % intervals, the
**lead time** of every caught event (from the first origin that raised the alarm for it to the
event: the stockout, or for a late order its due time; median over the events), and the **Brier
score** mean (p - y)^2 against that of the naive forecast that always says the base rate ȳ of
the observations (ȳ (1 - ȳ); skill 1 - BS / BS_naive, above 0: better than the base rate).
:func:`summarize` does that at the configured thresholds and over a few others (a small
precision / recall table). Everything here is pure but :func:`observe`, which reads the historian
through the ``twin.historian.HistorianReader`` protocol.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from twin.historian import HistorianReader, SeriesKey, SeriesPoint
from twin.sim.model import ReplicationOutput
from twin.sim.projection import to_plain
from twin.sim.stats import wilson
from twin.spec import FleetSpec
from twin.state import EventKind

__all__ = ["LATE", "STOCKOUT", "THRESHOLDS", "AlarmScore", "AlarmSettings", "AlarmSummary", "Observation",
           "late_outcome", "observe", "probabilities", "score", "stockout_level", "stockout_outcome", "summarize"]

STOCKOUT = "stockout_risk"
LATE = "late_order_risk"
THRESHOLDS = (0.1, 0.2, 0.3, 0.5, 0.7, 0.9)  # the precision / recall table
MAX_POINTS = 10_000_000
EPS = 1e-9
# a stock series whose last point is this long before a window's end does not cover it (censored)
COVER_SLACK = timedelta(minutes=15)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmSettings:
    """Thresholds (raise when p > threshold) and horizons of the two predictive alarm rules."""

    stockout_threshold: float = 0.5
    stockout_horizon_s: float = 48 * 3600.0
    late_threshold: float = 0.5
    late_horizon_s: float = 24 * 3600.0

    @property
    def horizon_s(self) -> float:
        """The fork's horizon both rules need."""
        return max(self.stockout_horizon_s, self.late_horizon_s)

    def threshold(self, kind: str) -> float:
        return self.stockout_threshold if kind == STOCKOUT else self.late_threshold


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """One candidate at one origin: the predicted probability and what happened.

    ``outcome`` is None when the history cannot tell (censored); ``event_at`` is the stockout time
    (``stockout_risk``) or the due time (``late_order_risk``) of a positive outcome, else None.
    """

    kind: str
    origin: datetime
    site: str
    candidate: str  # "site/sku" or the order id
    probability: float
    outcome: bool | None
    event_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmScore:
    """One rule at one threshold over the observations with an outcome (see the module docstring)."""

    kind: str
    threshold: float
    observations: int
    positives: int  # outcomes that happened (TP + FN)
    raised: int  # TP + FP
    tp: int
    fp: int
    fn: int
    tn: int
    precision: float  # NaN when nothing was raised
    precision_low: float
    precision_high: float
    recall: float  # NaN when nothing happened
    recall_low: float
    recall_high: float
    events: int  # distinct events (a SKU's stockout, a late order) among the positives
    events_caught: int  # of them, raised at some origin before they happened
    lead_median_h: float  # median over the caught events, hours (NaN when none)
    lead_times_h: tuple[float, ...]
    brier: float
    brier_naive: float  # of the constant base rate
    brier_skill: float  # 1 - brier / brier_naive (NaN when the base rate is 0 or 1)
    base_rate: float


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmSummary:
    """Both rules at their configured thresholds, the table over :data:`THRESHOLDS`, and the left-out counts."""

    settings: AlarmSettings
    scores: tuple[AlarmScore, ...]  # one per rule, at its configured threshold
    table: tuple[AlarmScore, ...]  # per rule, per threshold of THRESHOLDS
    censored: tuple[tuple[str, int], ...]  # per rule: observations without an outcome

    def score(self, kind: str) -> AlarmScore:
        return next(s for s in self.scores if s.kind == kind)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)  # type: ignore[no-any-return]


def _ratio(a: int, b: int) -> float:
    return a / b if b else math.nan


def score(observations: Sequence[Observation], kind: str, threshold: float) -> AlarmScore:
    """Confusion counts, precision, recall, lead times and Brier score of rule ``kind`` at ``threshold``.

    An alarm is raised when the probability is above the threshold (strictly). Observations of
    other rules and those without an outcome are left out.
    """
    obs = [o for o in observations if o.kind == kind and o.outcome is not None]
    tp = sum(1 for o in obs if o.outcome and o.probability > threshold)
    fp = sum(1 for o in obs if not o.outcome and o.probability > threshold)
    fn = sum(1 for o in obs if o.outcome and o.probability <= threshold)
    tn = len(obs) - tp - fp - fn
    first: dict[tuple[str, datetime], datetime | None] = {}  # event -> first origin raising it
    for o in sorted(obs, key=lambda o: o.origin):
        if not o.outcome or o.event_at is None:
            continue
        key = (o.candidate, o.event_at)
        if first.get(key) is None:
            first[key] = o.origin if o.probability > threshold else None
    leads = tuple(sorted((ev - t).total_seconds() / 3600.0 for (_, ev), t in first.items() if t is not None))
    n = len(obs)
    brier = sum((o.probability - float(bool(o.outcome))) ** 2 for o in obs) / n if n else math.nan
    base = (tp + fn) / n if n else math.nan
    naive = base * (1.0 - base) if n else math.nan  # mean (base - y)^2 of the constant forecast
    p_lo, p_hi = wilson(tp, tp + fp)
    r_lo, r_hi = wilson(tp, tp + fn)
    return AlarmScore(
        kind=kind, threshold=threshold, observations=n, positives=tp + fn, raised=tp + fp, tp=tp, fp=fp, fn=fn,
        tn=tn, precision=_ratio(tp, tp + fp), precision_low=p_lo, precision_high=p_hi, recall=_ratio(tp, tp + fn),
        recall_low=r_lo, recall_high=r_hi, events=len(first), events_caught=len(leads),
        lead_median_h=median(leads) if leads else math.nan, lead_times_h=leads, brier=brier, brier_naive=naive,
        brier_skill=1.0 - brier / naive if naive and not math.isnan(naive) else math.nan, base_rate=base,
    )


def summarize(observations: Sequence[Observation], settings: AlarmSettings,
              thresholds: Sequence[float] = THRESHOLDS) -> AlarmSummary:
    """Both rules at their configured thresholds and over ``thresholds``."""
    kinds = (STOCKOUT, LATE)
    return AlarmSummary(
        settings=settings,
        scores=tuple(score(observations, k, settings.threshold(k)) for k in kinds),
        table=tuple(score(observations, k, t) for k in kinds for t in sorted({*thresholds, settings.threshold(k)})),
        censored=tuple((k, sum(1 for o in observations if o.kind == k and o.outcome is None)) for k in kinds),
    )


def stockout_level(fleet: FleetSpec, sku: str) -> float:
    """Below this on hand a unit waits for material: the SKU's smallest bill-of-materials line (0 if none)."""
    lines = [float(q) for p in fleet.products for s, q in p.bom.items() if str(s) == sku and q > 0]
    return min(lines) if lines else 0.0


def stockout_outcome(points: Sequence[SeriesPoint], t0: datetime, horizon_s: float,
                     level: float) -> tuple[bool | None, datetime | None]:
    """Did on hand fall below ``level`` (or to 0 when ``level`` is 0) in (t0, t0 + horizon]? And when.

    (None, None) when it was already out at ``t0`` (or unknown there), or when the points stop
    before the window's end without a stockout (censored). Points ascending by time.

    >>> from datetime import UTC
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> pts = [SeriesPoint(ts=t0 + timedelta(hours=h), value=v, min=v, max=v)
    ...        for h, v in ((0, 3.0), (5, 0.04), (50, 9.0))]
    >>> stockout_outcome(pts, t0, 48 * 3600.0, 0.05)[1] == t0 + timedelta(hours=5)
    True
    >>> stockout_outcome(pts, t0, 4 * 3600.0, 0.05)
    (False, None)
    """
    ts = [p.ts for p in points]
    i = bisect_right(ts, t0)
    if i == 0 or _out(points[i - 1].value, level):
        return None, None
    end = t0 + timedelta(seconds=horizon_s)
    for p in points[i:]:
        if p.ts > end:
            return False, None
        if _out(min(p.value, p.min), level):  # a downsampled point's minimum: a dip inside it counts
            return True, p.ts
    if not points or points[-1].ts < end - COVER_SLACK:
        return None, None
    return False, None


def _out(on_hand: float, level: float) -> bool:
    return on_hand < level - EPS if level > 0 else on_hand <= EPS


def late_outcome(t0: datetime, due: datetime, closed_at: datetime | None, covered_until: datetime) -> bool | None:
    """Was an order open at ``t0`` finished after ``due``? None when the history ends before the due.

    >>> from datetime import UTC
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> due, end = t0 + timedelta(hours=10), t0 + timedelta(days=3)
    >>> late_outcome(t0, due, t0 + timedelta(hours=9), end), late_outcome(t0, due, t0 + timedelta(hours=11), end)
    (False, True)
    >>> late_outcome(t0, due, None, end), late_outcome(t0, due, None, t0 + timedelta(hours=5))
    (True, None)
    """
    if closed_at is not None:
        return closed_at > due
    return True if covered_until >= due else None


def probabilities(outputs: Sequence[ReplicationOutput], settings: AlarmSettings) -> tuple[
        dict[tuple[str, str], float], dict[str, tuple[str, float, float]]]:
    """Both rules' probabilities from the replications of one fork.

    P(stockout within its horizon) per (site, sku); per order open at the fork and due within the
    late horizon (and not before the fork): (site, due_s, P(finished after its due)).
    """
    n = len(outputs)
    if not n:
        return {}, {}
    stock = {key: sum(1 for o in outputs if o.stockout_s[key] <= settings.stockout_horizon_s + EPS) / n
             for key in outputs[0].stockout_s}
    orders = {}
    for oid, due in outputs[0].open_order_due_s.items():
        if 0.0 < due <= settings.late_horizon_s + EPS:
            late = sum(1 for o in outputs if o.open_order_done_s[oid] > due + EPS) / n
            orders[oid] = (outputs[0].open_order_site[oid], due, late)
    return stock, orders


def observe(fleet: FleetSpec, historian: HistorianReader, t0: datetime, outputs: Sequence[ReplicationOutput],
            settings: AlarmSettings) -> tuple[Observation, ...]:
    """Every candidate of both rules at origin ``t0``: the fork's probability and the history's outcome.

    ``outputs``: the replications of a fork at ``t0`` over at least ``settings.horizon_s``.
    """
    stock, orders = probabilities(outputs, settings)
    out: list[Observation] = []
    sites = sorted({s for s, _ in stock} | {site for site, _, _ in orders.values()})
    t1 = t0 + timedelta(seconds=settings.horizon_s)
    covered: dict[str, datetime] = {}
    keys = [SeriesKey(site=s, asset=sku, signal="on_hand") for s, sku in sorted(stock)]
    series = {r.key: r.points for r in historian.series(keys, t0 - timedelta(hours=1), t1, MAX_POINTS)} if keys else {}
    for (site, sku), p in sorted(stock.items()):
        points = series.get(SeriesKey(site=site, asset=sku, signal="on_hand"), ())
        if points:
            covered[site] = max(covered.get(site, points[-1].ts), points[-1].ts)
        outcome, at = stockout_outcome(points, t0, settings.stockout_horizon_s, stockout_level(fleet, sku))
        out.append(Observation(kind=STOCKOUT, origin=t0, site=site, candidate=f"{site}/{sku}", probability=p,
                               outcome=outcome, event_at=at))
    for site in sites:
        mine = {oid: v for oid, v in orders.items() if v[0] == site}
        if not mine:
            continue
        closed: dict[str, datetime | None] = {}
        for e in historian.events(site, t0, t0 + timedelta(seconds=settings.late_horizon_s)):
            oid = str(e.data.get("order", ""))
            if e.kind is EventKind.ORDER_CLOSED and oid in mine and oid not in closed:
                closed[oid] = None if e.message.endswith(" cancelled") else e.ts
        end = covered.get(site, t0)
        for oid, (_, due_s, p) in sorted(mine.items()):
            due = t0 + timedelta(seconds=due_s)
            if oid in closed and closed[oid] is None:
                continue  # cancelled: neither on time nor late
            outcome = late_outcome(t0, due, closed.get(oid), end)
            out.append(Observation(kind=LATE, origin=t0, site=site, candidate=oid, probability=p, outcome=outcome,
                                   event_at=due if outcome else None))
    return tuple(out)
