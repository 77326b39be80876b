"""Stock figures from history: lead times from shipment arrivals, consumption factors, and the draws of stock.

See ``twin.calibrate`` for where each figure comes from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from twin.calibrate.estimates import DAY_S, MinSamples, ParamEstimate, Source, estimate
from twin.historian import SeriesKey, SeriesPoint
from twin.sim.params import LeadTimeParams
from twin.sim.uncertainty import FigureLaw, Law
from twin.spec import FleetSpec, SiteSpec, consuming_step
from twin.state import Event, EventKind

__all__ = ["Draws", "calibrate_consumption", "calibrate_lead_times", "shipment_lead_times", "stock_draws"]

def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def shipment_lead_times(site: SiteSpec, events: Sequence[Event], t0: datetime, t1: datetime) -> dict[str, list[float]]:
    """Lead times (days) of the shipments that arrived in ``[t0, t1]``, per SKU.

    ordered = planned ETA - the item's configured lead time; lead = arrival time - ordered.
    """
    out: dict[str, list[float]] = {}
    for ev in events:
        if ev.kind is not EventKind.SHIPMENT_ARRIVED or not t0 <= ev.ts <= t1:
            continue
        sku = str(ev.data.get("sku", ev.asset))
        item = site.item(sku)
        planned = _parse_time(ev.data.get("planned_eta"))
        if item is None or planned is None:
            continue
        ordered = planned - timedelta(days=item.lead_time_d)
        out.setdefault(sku, []).append((ev.ts - ordered).total_seconds() / DAY_S)
    return out


def calibrate_lead_times(
    site: SiteSpec, events: Sequence[Event], t0: datetime, t1: datetime, mins: MinSamples,
    estimates: list[ParamEstimate], lead_times: dict[tuple[str, str], LeadTimeParams],
    laws: dict[tuple[str, str, str], FigureLaw],
) -> None:
    sid = str(site.id)
    leads = shipment_lead_times(site, events, t0, t1)
    for item in site.inventory:
        xs = leads.get(str(item.sku), [])
        n = len(xs)
        mean = sum(xs) / n if n else None
        sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if mean is not None and n > 1 else None
        subject = f"{sid}/{item.sku}"
        est_mean = estimate("lead_time_d", subject, mean, n, mins.arrivals, item.lead_time_d, "d")
        est_sd = estimate("lead_time_sd_d", subject, sd, n, mins.arrivals, item.lead_time_sd_d, "d")
        estimates.extend([est_mean, est_sd])
        if est_mean.source is Source.HISTORY:
            sd_d = est_sd.value if est_sd.source is Source.HISTORY else item.lead_time_sd_d
            lead_times[(sid, str(item.sku))] = LeadTimeParams(mean_d=est_mean.value, sd_d=sd_d)
            cv = sd_d / est_mean.value if est_mean.value > 0 else 0.0
            laws[("lead", sid, str(item.sku))] = FigureLaw(law=Law.NORMAL, n=float(n), cv=cv)


def _stock_drawn(points: Sequence[SeriesPoint], deliveries: Sequence[tuple[datetime, float]]) -> tuple[float, int]:
    """Quantity drawn from an on-hand series and the number of intervals with a draw.

    Where on hand rose, the deliveries recorded in that interval less the rise were drawn.
    """
    drawn = 0.0
    n = 0
    for prev, cur in pairwise(points):
        if cur.value < prev.value:
            drawn += prev.value - cur.value
            n += 1
        elif cur.value > prev.value:
            delivered = sum(q for ts, q in deliveries if prev.ts < ts <= cur.ts)
            hidden = delivered - (cur.value - prev.value)
            if hidden > 1e-9:
                drawn += hidden
                n += 1
    return drawn, n


def _deliveries(events: Sequence[Event], t0: datetime, t1: datetime) -> dict[str, list[tuple[datetime, float]]]:
    """Deliveries per SKU in ``[t0, t1]``: a logistics feed's arrivals, or the PLC's when there is no feed.

    A delivery can show twice, as the feed's shipment (``shipment`` id) and as the receipt the live
    twin saw in on hand (``received``); a SKU with feed arrivals counts only those, never both.
    """
    feed: dict[str, list[tuple[datetime, float]]] = {}
    plc: dict[str, list[tuple[datetime, float]]] = {}
    for ev in events:
        if ev.kind is not EventKind.SHIPMENT_ARRIVED or not t0 <= ev.ts <= t1:
            continue
        sku = str(ev.data.get("sku", ev.asset))
        if "shipment" in ev.data:
            qty = ev.data.get("qty", 0.0)
            feed.setdefault(sku, []).append((ev.ts, float(qty) if isinstance(qty, int | float) else 0.0))
        else:
            qty = ev.data.get("received", ev.data.get("qty", 0.0))
            plc.setdefault(sku, []).append((ev.ts, float(qty) if isinstance(qty, int | float) else 0.0))
    return {sku: feed.get(sku) or plc[sku] for sku in {*feed, *plc}}


def calibrate_consumption(
    fleet: FleetSpec, site: SiteSpec, events: Sequence[Event], t0: datetime, t1: datetime, mins: MinSamples,
    series: dict[SeriesKey, list[SeriesPoint]], made: dict[str, float], arrivals: dict[str, list[datetime]],
    estimates: list[ParamEstimate], consumption: dict[tuple[str, str], float],
    laws: dict[tuple[str, str, str], FigureLaw],
) -> None:
    """Consumption factors from the units made at the consuming step (when those counters exist)."""
    sid = str(site.id)
    days = (t1 - t0).total_seconds() / DAY_S
    volume: dict[str, float] = {}  # units ordered per product, to share a role's output among products
    products = {}
    for d in site.demand:
        p = fleet.product(d.product)
        if p is None:
            continue
        products[str(d.product)] = p
        n_orders = len(arrivals.get(str(d.product), [])) or d.orders_per_day * max(days, 0.0)
        volume[str(d.product)] = n_orders * (p.batch_min + p.batch_max) / 2.0
    # units of a product counted at a step only it passes through (the last such step) share a
    # common step's output better than order volume does (batch sizes and the truth may differ)
    own_units: dict[str, float] = {}
    for pid, p in products.items():
        own = [r for r in p.routing if r.value in made
               and not any(r in q.routing for qid, q in products.items() if qid != pid)]
        if own:
            own_units[pid] = made[own[-1].value]
    deliveries = _deliveries(events, t0, t1)
    for item in site.inventory:
        sku = str(item.sku)
        expected = 0.0
        usable = True
        users = [p for p in products.values() if sku in p.bom and p.routing]
        for p in users:
            role = p.routing[consuming_step(p, item.kind)]
            if role.value not in made:
                usable = False
                break
            via = [q for q in products.values() if role in q.routing]
            weight = own_units if all(str(q.id) in own_units for q in via) else volume
            through = sum(weight[str(q.id)] for q in via)
            share = weight[str(p.id)] / through if through > 0 else 0.0
            expected += made[role.value] * share * p.bom[item.sku]
        if not users or not usable or expected <= 0.0:
            continue
        points = series.get(SeriesKey(site=sid, asset=sku, signal="on_hand"), [])
        drawn, n_draws = _stock_drawn(points, deliveries.get(sku, []))
        est = estimate("consumption_factor", f"{sid}/{sku}", drawn / expected, n_draws, mins.orders, 1.0, "")
        estimates.append(est)
        if est.source is Source.HISTORY:
            consumption[(sid, sku)] = est.value
            laws[("consumption", sid, sku)] = FigureLaw(law=Law.NORMAL, n=float(n_draws), cv=1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Draws:
    """The draws of one stock series: decreases, and the orders behind them (see :func:`stock_draws`)."""

    times: tuple[datetime, ...]  # sample times that closed an interval with a decrease
    drawn: float  # quantity drawn in those intervals
    exposure_s: float  # length of the intervals that count (no delivery, stock on hand at the start)
    rate_per_s: float  # estimated orders per second; NaN without intervals

    @property
    def orders(self) -> float:
        return self.rate_per_s * self.exposure_s if self.exposure_s > 0 else 0.0


def _poisson_rate(hits: dict[float, int], miss_s: float) -> float:
    """MLE of a Poisson rate from intervals with (``hits``: length -> count) and without events.

    Maximises sum_hits log(1 - exp(-lam d)) - lam miss_s: the root of
    sum_hits d / (exp(lam d) - 1) = miss_s, found by bisection (the left side falls with lam).
    """
    n_hits = sum(hits.values())
    if n_hits == 0:
        return 0.0
    total = miss_s + sum(d * c for d, c in hits.items())
    if miss_s <= 0.0:
        return n_hits / total  # every interval had a draw: only a lower bound is known
    def excess(lam: float) -> float:
        return sum(c * d / math.expm1(lam * d) for d, c in hits.items()) - miss_s
    lo = n_hits / total  # the simple count is a lower bound of the root
    hi = lo * 2.0
    while excess(hi) > 0.0:
        lo, hi = hi, hi * 2.0
    for _ in range(100):
        mid = (lo + hi) / 2.0
        if excess(mid) > 0.0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return (lo + hi) / 2.0


def stock_draws(points: Sequence[SeriesPoint]) -> Draws:
    """Draws of an on-hand series sampled at any times, robust to several draws between two samples."""
    hits: dict[float, int] = {}
    miss_s = 0.0
    times: list[datetime] = []
    drawn = 0.0
    for prev, cur in pairwise(points):
        d = (cur.ts - prev.ts).total_seconds()
        if d <= 0.0 or cur.value > prev.value or prev.value <= 0.0:
            continue  # a delivery hides the draws; nothing on hand, nothing to draw
        if cur.value < prev.value:
            hits[d] = hits.get(d, 0) + 1
            times.append(cur.ts)
            drawn += prev.value - cur.value
        else:
            miss_s += d
    exposure = miss_s + sum(d * c for d, c in hits.items())
    rate = _poisson_rate(hits, miss_s) if exposure > 0 else math.nan
    return Draws(times=tuple(times), drawn=drawn, exposure_s=exposure, rate_per_s=rate)
