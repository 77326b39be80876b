"""Backtest: compare a projection forked at a past moment with what happened afterwards.

:func:`actual_series` reads what happened from the historian (cumulative good parts of the
machines that finish products, and stock on hand per SKU) on the projection's bin ends;
:func:`backtest` scores the projection against it: **coverage** (share of bin ends where the
actual value lies within P10..P90; about 0.8 for a calibrated model) and the **error of the
median** (mean absolute error of P50, and relative to the mean actual level).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from twin.historian import Historian, SeriesKey, SeriesPoint
from twin.sim.projection import FLEET, Projection, to_plain
from twin.spec import FleetSpec, SignalKind

__all__ = ["BacktestResult", "SeriesScore", "actual_series", "backtest"]

MAX_POINTS = 10_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesScore:
    """One band against the actual series at the same bin ends."""

    metric: str
    key: str
    t_s: tuple[float, ...]
    actual: tuple[float, ...]
    p10: tuple[float, ...]
    p50: tuple[float, ...]
    p90: tuple[float, ...]
    coverage: float  # share of points with p10 <= actual <= p90
    median_abs_error: float  # mean |p50 - actual|
    median_rel_error: float  # median_abs_error / mean |actual| (NaN when the actual is all zero)


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestResult:
    """Scores of every band that has an actual series, and their pooled coverage."""

    as_of: datetime | None
    horizon_s: float
    replications: int
    series: tuple[SeriesScore, ...]
    coverage: float

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)  # type: ignore[no-any-return]


def _increase_between(points: Sequence[SeriesPoint], t0: datetime, t: datetime) -> float:
    """Counter increase from the last point at or before ``t0`` to ``t`` (a decrease is a restart)."""
    seq = [p for p in points if p.ts <= t0][-1:] + [p for p in points if t0 < p.ts <= t]
    total = 0.0
    for prev, cur in pairwise(seq):
        total += cur.value - prev.value if cur.value >= prev.value else cur.value
    return total


def _value_at(points: Sequence[SeriesPoint], t: datetime) -> float:
    last = math.nan
    for p in points:
        if p.ts > t:
            break
        last = p.value
    return last


def actual_series(
    fleet: FleetSpec, historian: Historian, sites: Sequence[str], t0: datetime, t_s: Sequence[float]
) -> dict[tuple[str, str], tuple[float, ...]]:
    """What happened after ``t0`` at the bin ends ``t_s``, keyed like the projection's bands.

    ``("cumulative_units", site)`` counts good parts of the machines whose role ends a product
    routing at the site (fleet key ``*`` sums the sites); ``("stock", "site/sku")`` is on hand.
    """
    if not t_s:
        return {}
    t1 = t0 + timedelta(seconds=max(t_s))
    finals = {p.routing[-1] for p in fleet.products if p.routing}
    out: dict[tuple[str, str], tuple[float, ...]] = {}
    fleet_total = [0.0] * len(t_s)
    for sid in sites:
        site = fleet.site(sid)
        keys = []
        for m in site.machines:
            sig = m.template.signal_of_kind(SignalKind.GOOD_COUNT)
            if m.role in finals and sig is not None:
                keys.append(SeriesKey(site=sid, asset=str(m.id), signal=str(sig.name)))
        stock_keys = [SeriesKey(site=sid, asset=str(i.sku), signal="on_hand") for i in site.inventory]
        res = {r.key: r.points for r in historian.series([*keys, *stock_keys], t0 - timedelta(hours=1), t1,
                                                           MAX_POINTS)}
        units = [
            sum(_increase_between(res.get(k, ()), t0, t0 + timedelta(seconds=s)) for k in keys) for s in t_s
        ]
        out[("cumulative_units", sid)] = tuple(units)
        fleet_total = [a + b for a, b in zip(fleet_total, units, strict=True)]
        for k in stock_keys:
            out[("stock", f"{sid}/{k.asset}")] = tuple(
                _value_at(res.get(k, ()), t0 + timedelta(seconds=s)) for s in t_s
            )
    out[("cumulative_units", FLEET)] = tuple(fleet_total)
    return out


def backtest(projection: Projection, actual: Mapping[tuple[str, str], Sequence[float]]) -> BacktestResult:
    """Score ``projection`` against ``actual`` (values at the projection's bin ends)."""
    scores = []
    hit = total = 0
    for band in projection.bands:
        values = actual.get((band.metric, band.key))
        if values is None:
            continue
        pts = [
            (t, a, lo, mid, hi)
            for t, a, lo, mid, hi in zip(band.t_s, values, band.p10, band.p50, band.p90, strict=True)
            if not math.isnan(a)
        ]
        if not pts:
            continue
        inside = sum(1 for _, a, lo, _, hi in pts if lo - 1e-9 <= a <= hi + 1e-9)
        mae = sum(abs(mid - a) for _, a, _, mid, _ in pts) / len(pts)
        level = sum(abs(a) for _, a, _, _, _ in pts) / len(pts)
        hit += inside
        total += len(pts)
        scores.append(SeriesScore(
            metric=band.metric, key=band.key, t_s=tuple(p[0] for p in pts), actual=tuple(p[1] for p in pts),
            p10=tuple(p[2] for p in pts), p50=tuple(p[3] for p in pts), p90=tuple(p[4] for p in pts),
            coverage=inside / len(pts), median_abs_error=mae, median_rel_error=mae / level if level else math.nan,
        ))
    return BacktestResult(as_of=projection.as_of, horizon_s=projection.horizon_s,
                          replications=projection.replications, series=tuple(scores),
                          coverage=hit / total if total else math.nan)
