"""Demand from history: orders per day of each (site, product) from records, snapshots or stock draws.

See ``twin.calibrate`` for the estimators (Poisson rates shaped by weekday and hour factors).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from twin.calibrate.estimates import DAY_S, MinSamples, ParamEstimate, Source, estimate
from twin.calibrate.supply import stock_draws
from twin.historian import HistorianReader, SeriesKey, SeriesPoint
from twin.sim.clock import local_hour_segments
from twin.sim.params import DemandParams
from twin.sim.uncertainty import FigureLaw, Law
from twin.spec import FleetSpec, SiteSpec, Sku
from twin.state import Event, EventKind

__all__ = ["CHI2_6_1PCT", "calibrate_demand", "order_arrivals"]

def order_arrivals(events: Sequence[Event], t0: datetime, t1: datetime) -> dict[str, list[datetime]]:
    """Times of the orders received in ``[t0, t1]`` per product (ORDER_RECEIVED events, one per order id)."""
    out: dict[str, list[datetime]] = {}
    seen: set[object] = set()
    for ev in events:
        if ev.kind is not EventKind.ORDER_RECEIVED or not t0 <= ev.ts <= t1:
            continue
        oid = ev.data.get("order", None)
        if oid is not None:
            if oid in seen:
                continue
            seen.add(oid)
        product = str(ev.data.get("product", ev.asset))
        out.setdefault(product, []).append(ev.ts)
    for times in out.values():
        times.sort()
    return out


def _exposure_d(site: SiteSpec, weekday_factors: Sequence[float], hour_factors: Sequence[float], t0: datetime,
                t1: datetime) -> float:
    """Days in ``[t0, t1]`` weighted by the weekday and hour factors, as ``twin.sim.build`` applies them."""
    length = (t1 - t0).total_seconds()
    if length <= 0:
        return 0.0
    mean_h = sum(hour_factors) / len(hour_factors) if hour_factors and sum(hour_factors) > 0 else 1.0
    segs = local_hour_segments(site.timezone, t0, length)
    total = 0.0
    for i, (start, wd, hour) in enumerate(segs):
        end = segs[i + 1][0] if i + 1 < len(segs) else length
        wf = weekday_factors[wd % len(weekday_factors)] if weekday_factors else 1.0
        hf = hour_factors[hour % len(hour_factors)] / mean_h if hour_factors else 1.0
        total += (end - start) * wf * hf
    return total / DAY_S


# the 1 % critical value of the chi-square law with 6 degrees of freedom (7 weekdays, total fixed)
CHI2_6_1PCT = 16.812


def _weekday_factors(site: SiteSpec, times: Sequence[datetime], t0: datetime, t1: datetime,
                     configured: Sequence[float]) -> tuple[float, ...] | None:
    """Orders per hour on each local weekday over the mean rate, or None: the configured profile stands.

    Estimated only from 30 orders per weekday on average, every weekday seen at least twice (48 h) and
    counts that the configured profile does not explain: a chi-square test of the counts per weekday
    against those expected under the configured factors (a Poisson process), rejected at 1 %. One
    week of noise (a Thursday at 1.4 where the truth is 1.0) does not replace the profile.
    """
    if len(times) < 7 * 30:
        return None
    length = (t1 - t0).total_seconds()
    segs = local_hour_segments(site.timezone, t0, length)
    hours = [0.0] * 7
    for i, (start, wd, _) in enumerate(segs):
        end = segs[i + 1][0] if i + 1 < len(segs) else length
        hours[wd] += (end - start) / 3600.0
    if min(hours) < 48.0:
        return None
    zone = ZoneInfo(site.timezone)
    counts = [0] * 7
    for ts in times:
        counts[ts.astimezone(zone).weekday()] += 1
    cfg = [configured[wd % len(configured)] if configured else 1.0 for wd in range(7)]
    weight = sum(h * f for h, f in zip(hours, cfg, strict=True))
    if weight > 0:
        expected = [len(times) * h * f / weight for h, f in zip(hours, cfg, strict=True)]
        if all(e > 0 for e in expected):
            chi2 = sum((c - e) ** 2 / e for c, e in zip(counts, expected, strict=True))
            if chi2 <= CHI2_6_1PCT:
                return None
    mean_rate = len(times) / sum(hours)
    return tuple(c / h / mean_rate for c, h in zip(counts, hours, strict=True))


def calibrate_demand(
    fleet: FleetSpec, site: SiteSpec, historian: HistorianReader, t0: datetime, t1: datetime, mins: MinSamples,
    series: dict[SeriesKey, list[SeriesPoint]], arrivals: dict[str, list[datetime]],
    estimates: list[ParamEstimate], demand: dict[tuple[str, str], DemandParams],
    consumption: dict[tuple[str, str], float], laws: dict[tuple[str, str, str], FigureLaw],
) -> None:
    sid = str(site.id)
    days = (t1 - t0).total_seconds() / DAY_S
    zone = ZoneInfo(site.timezone)
    created: dict[str, list[datetime]] = dict(arrivals)
    from_records = bool(arrivals)
    if not from_records:  # no order records: orders seen in hourly snapshots
        seen: set[str] = set()
        t = t0
        while t <= t1:
            st = historian.state_at(sid, t)
            for o in st.orders if st is not None else ():
                if o.id not in seen and t0 <= o.created <= t1:
                    seen.add(o.id)
                    created.setdefault(o.product, []).append(o.created)
            t += timedelta(hours=1)
    users: dict[str, list[str]] = {}
    for d in site.demand:
        p = fleet.product(d.product)
        for sku in p.bom if p is not None else ():
            users.setdefault(str(sku), []).append(str(d.product))
    for d in site.demand:
        pid = str(d.product)
        subject = f"{sid}/{pid}"
        times = created.get(pid, [])
        weekday_factors: tuple[float, ...] | None = None
        exposure = _exposure_d(site, d.weekday_factors, d.hour_factors, t0, t1)
        per_day = len(times) / exposure if exposure > 0 else None
        if from_records:
            weekday_factors = _weekday_factors(site, times, t0, t1, d.weekday_factors)
            if weekday_factors is not None:  # the estimated profile replaces the configured one
                per_day = len(times) / days if days > 0 else None
        n_orders: float = float(len(times))
        product = fleet.product(pid)
        if not times and not from_records and product is not None:
            own = [s for s, who in users.items() if who == [pid] and site.item(s) is not None]
            drawn = {sku: stock_draws(series.get(SeriesKey(site=sid, asset=Sku(sku), signal="on_hand"), []))
                     for sku in own}
            mean_batch = (product.batch_min + product.batch_max) / 2.0
            # stock an order draws: BOM x units x consumption factor
            per_order = {sku: product.bom[Sku(sku)] * mean_batch * consumption.get((sid, sku), 1.0) for sku in own}

            # a unit draws at its consuming step, so the decreases count units or builds, not orders:
            # orders = quantity drawn / stock an order draws, over the intervals that count; from the SKU
            # with the most decreases (its draws resolved best)
            best = max((sku for sku in own if drawn[sku].times and drawn[sku].exposure_s > 0),
                       key=lambda sku: len(drawn[sku].times), default=None)
            times, per_day, n_orders = [], None, 0.0
            if best is not None:
                draws = drawn[best]
                n_orders = draws.drawn / per_order[best]
                times = list(draws.times)
                per_day = n_orders / draws.exposure_s * DAY_S
                for other_sku in own:  # the other SKUs' draws against those orders
                    other = drawn[other_sku]
                    if other_sku == best or not other.times or (sid, other_sku) in consumption:
                        continue
                    expected = per_day / DAY_S * other.exposure_s * per_order[other_sku]
                    factor = other.drawn / expected if expected > 0 else None
                    est = estimate("consumption_factor", f"{sid}/{other_sku}", factor, len(other.times), mins.orders,
                                   1.0, "")
                    estimates.append(est)
                    if est.source is Source.HISTORY:
                        consumption[(sid, other_sku)] = est.value
                        laws[("consumption", sid, other_sku)] = FigureLaw(
                            law=Law.NORMAL, n=float(len(other.times)), cv=1.0)
        rate = estimate("orders_per_day", subject, per_day, round(n_orders), mins.orders, d.orders_per_day, "1/d")
        estimates.append(rate)
        hour_factors: tuple[float, ...] | None = None
        if len(times) >= 24 * 20:
            counts = [0] * 24
            for ts in times:
                counts[ts.astimezone(zone).hour] += 1
            mean = sum(counts) / 24.0
            hour_factors = tuple(c / mean for c in counts)
        if rate.source is Source.HISTORY:
            demand[(sid, pid)] = DemandParams(orders_per_day=rate.value, hour_factors=hour_factors,
                                              weekday_factors=weekday_factors)
            laws[("demand", sid, pid)] = FigureLaw(law=Law.RATE, n=n_orders)
