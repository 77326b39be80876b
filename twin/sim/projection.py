"""Projection: P10/P50/P90 bands and a KPI summary from a set of replications, and paired deltas.

Results are plain frozen dataclasses of numbers (times in seconds from the fork, rates as
fractions), each with ``to_dict()`` for JSON; KPIs and deltas are ``twin.sim.stats.Estimate``s.
Formatting is the reader's job, with the labels, units and scales of ``twin.sim.kpis``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np

from twin.sim.model import ReplicationOutput
from twin.sim.stats import Estimate, mean_ci, wilson

__all__ = [
    "FLEET",
    "KPI_NAMES",
    "Band",
    "Comparison",
    "Estimate",
    "OrderOnTime",
    "Projection",
    "StockoutRisk",
    "band_samples",
    "compare",
    "project",
    "replication_kpis",
    "to_plain",
]

FLEET = "*"  # the site key of fleet-wide figures

KPI_NAMES = (
    "units_done",
    "orders_done",
    "on_time_rate",
    "lead_time_h",
    "wip_orders",
    "utilisation",
    "stockout_skus",
)


def to_plain(obj: Any) -> Any:
    """Dataclasses, tuples, enums and datetimes as JSON-ready values (non-finite floats -> None)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj


@dataclass(frozen=True, slots=True, kw_only=True)
class Band:
    """Quantiles over replications of one series, per bin (``t_s`` = bin end, seconds from fork).

    ``metric`` is one of throughput (units per bin), cumulative_units, backlog (open orders),
    wip (units on the floor), utilisation (fraction) and stock (on hand); ``key`` is the site, or
    ``site/sku`` for stock.
    """

    metric: str
    key: str
    t_s: tuple[float, ...]
    p10: tuple[float, ...]
    p50: tuple[float, ...]
    p90: tuple[float, ...]
    mean: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True, kw_only=True)
class StockoutRisk:
    """Probability (Wilson interval) that a SKU stocks out within the horizon, and when.

    ``earliest_s`` is the earliest stockout seen in any replication; ``p10_s``/``p50_s`` quantiles
    of the stockout time over all replications (inf when fewer than that share stock out).
    """

    site: str
    sku: str
    probability: float
    low: float
    high: float
    earliest_s: float
    p10_s: float
    p50_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderOnTime:
    """Probability (Wilson interval) that an order open at the fork is finished by its due time."""

    order: str
    site: str
    due_s: float
    probability: float
    low: float
    high: float
    finish_p50_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Projection:
    """The projection of one model (baseline or scenario) over its replications."""

    replications: int
    horizon_s: float
    bin_s: float
    bands: tuple[Band, ...]
    kpis: tuple[Estimate, ...]  # KPIs over the horizon: mean over replications, 95 % t interval
    stockouts: tuple[StockoutRisk, ...]
    orders: tuple[OrderOnTime, ...]
    events: int = 0
    as_of: datetime | None = None

    def kpi(self, name: str, site: str = FLEET) -> Estimate:
        for k in self.kpis:
            if k.name == name and k.site == site:
                return k
        raise KeyError((name, site))

    def band(self, metric: str, key: str = FLEET) -> Band:
        for b in self.bands:
            if b.metric == metric and b.key == key:
                return b
        raise KeyError((metric, key))

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """Baseline and scenario projections and their paired deltas."""

    baseline: Projection
    scenario: Projection
    deltas: tuple[Estimate, ...]  # scenario - baseline per KPI, paired replications (common random numbers)

    def delta(self, name: str, site: str = FLEET) -> Estimate:
        for d in self.deltas:
            if d.name == name and d.site == site:
                return d
        raise KeyError((name, site))

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)  # type: ignore[no-any-return]


def replication_kpis(out: ReplicationOutput) -> dict[tuple[str, str], float]:
    """KPIs of one replication keyed by (name, site); site ``FLEET`` aggregates all sites.

    on_time_rate = on time / (finished + due within the horizon and not finished); lead_time_h =
    mean order lead time of finished orders; wip_orders = time-average open orders (Little's L);
    utilisation = busy share of machine time over the horizon; stockout_skus = SKUs that ran out.
    """
    res: dict[tuple[str, str], float] = {}
    sites = list(out.throughput)
    total_bins = len(next(iter(out.utilisation.values()))) if out.utilisation else 0
    for site in [*sites, FLEET]:
        chosen = sites if site == FLEET else [site]
        on_time = sum(out.on_time[s] for s in chosen)
        late = sum(out.late[s] for s in chosen)
        done = sum(out.orders_done[s] for s in chosen)
        res[("units_done", site)] = float(sum(out.units_done[s] for s in chosen))
        res[("orders_done", site)] = float(done)
        res[("on_time_rate", site)] = on_time / (on_time + late) if on_time + late else math.nan
        res[("lead_time_h", site)] = (
            sum(out.lead_time_sum_s[s] for s in chosen) / done / 3600.0 if done else math.nan
        )
        res[("wip_orders", site)] = sum(out.system_area[s] for s in chosen) / out.horizon_s
        utils = [u for s in chosen for u in out.utilisation.get(s, [])]
        res[("utilisation", site)] = sum(utils) / len(utils) if utils and total_bins else math.nan
        res[("stockout_skus", site)] = float(
            sum(1 for (s, _), t in out.stockout_s.items() if (site == FLEET or s == site) and t < math.inf)
        )
    return res


def _summed(
    attr: str, sites: list[str], *, cumulative: bool = False, average: bool = False
) -> Callable[[ReplicationOutput], Sequence[float]]:
    def get(o: ReplicationOutput) -> Sequence[float]:
        rows = np.asarray([getattr(o, attr)[s] for s in sites], dtype=float)
        total = rows.mean(axis=0) if average else rows.sum(axis=0)
        return list(np.cumsum(total) if cumulative else total)

    return get


def _stock(key: tuple[str, str]) -> Callable[[ReplicationOutput], Sequence[float]]:
    return lambda o: o.stock[key]


def _getter(metric: str, key: str, sites: Sequence[str]) -> Callable[[ReplicationOutput], Sequence[float]]:
    """The per-bin series of band ``(metric, key)`` in one replication (``key`` a site, FLEET or site/sku)."""
    if metric == "stock":
        site, _, sku = key.partition("/")
        return _stock((site, sku))
    chosen = list(sites) if key == FLEET else [key]
    if metric == "cumulative_units":
        return _summed("throughput", chosen, cumulative=True)
    if metric == "utilisation":
        return _summed("utilisation", chosen, average=True)
    if metric in ("throughput", "backlog", "wip"):
        return _summed(metric, chosen)
    raise KeyError((metric, key))


def band_samples(outputs: Sequence[ReplicationOutput], metric: str, key: str = FLEET) -> np.ndarray:
    """The replications' values of one band: an array (replications x bins), rows in replication order."""
    if not outputs:
        return np.zeros((0, 0))
    get = _getter(metric, key, list(outputs[0].throughput))
    return np.asarray([get(o) for o in outputs], dtype=float)


def _bands(outputs: Sequence[ReplicationOutput]) -> list[Band]:
    first = outputs[0]
    n_bins = len(next(iter(first.throughput.values())))
    t_s = tuple(min((b + 1) * first.bin_s, first.horizon_s) for b in range(n_bins))
    bands: list[Band] = []
    sites = list(first.throughput)

    def add(metric: str, key: str) -> None:
        arr = band_samples(outputs, metric, key)
        q = np.percentile(arr, [10.0, 50.0, 90.0], axis=0)
        bands.append(Band(metric=metric, key=key, t_s=t_s, p10=tuple(q[0].tolist()), p50=tuple(q[1].tolist()),
                          p90=tuple(q[2].tolist()), mean=tuple(arr.mean(axis=0).tolist())))

    for site in [*sites, FLEET]:
        for metric in ("throughput", "cumulative_units", "backlog", "wip", "utilisation"):
            add(metric, site)
    for key in first.stock:
        add("stock", f"{key[0]}/{key[1]}")
    return bands


def project(outputs: Sequence[ReplicationOutput], as_of: datetime | None = None) -> Projection:
    """Bands and KPIs of a set of replications of one model."""
    if not outputs:
        raise ValueError("project needs at least one replication")
    per_rep = [replication_kpis(o) for o in outputs]
    kpis = []
    for key in per_rep[0]:
        kpis.append(replace(mean_ci([r[key] for r in per_rep]), name=key[0], site=key[1]))
    n = len(outputs)
    stockouts = []
    for key in outputs[0].stockout_s:
        times = np.asarray([o.stockout_s[key] for o in outputs], dtype=float)
        hits = int(np.isfinite(times).sum())
        lo, hi = wilson(hits, n)
        srt = np.sort(times)
        stockouts.append(StockoutRisk(
            site=key[0], sku=key[1], probability=hits / n, low=lo, high=hi,
            earliest_s=float(srt[0]), p10_s=float(srt[int(0.1 * (n - 1))]), p50_s=float(srt[(n - 1) // 2]),
        ))
    orders = []
    for oid, due in outputs[0].open_order_due_s.items():
        done = np.sort(np.asarray([o.open_order_done_s[oid] for o in outputs], dtype=float))
        ok = int((done <= due + 1e-9).sum())
        lo, hi = wilson(ok, n)
        site = outputs[0].open_order_site[oid]
        orders.append(OrderOnTime(order=oid, site=site, due_s=due, probability=ok / n, low=lo, high=hi,
                                  finish_p50_s=float(done[(n - 1) // 2])))
    return Projection(
        replications=n, horizon_s=outputs[0].horizon_s, bin_s=outputs[0].bin_s, bands=tuple(_bands(outputs)),
        kpis=tuple(kpis), stockouts=tuple(stockouts), orders=tuple(orders),
        events=sum(o.events for o in outputs), as_of=as_of,
    )


def compare(
    baseline: Sequence[ReplicationOutput], scenario: Sequence[ReplicationOutput], as_of: datetime | None = None
) -> Comparison:
    """Projections of both and the paired deltas (replication i of each used the same seeds)."""
    n = min(len(baseline), len(scenario))
    base_k = [replication_kpis(o) for o in baseline[:n]]
    scen_k = [replication_kpis(o) for o in scenario[:n]]
    deltas = []
    for key in base_k[0]:
        if key not in scen_k[0]:
            continue
        e = mean_ci([s[key] - b[key] for b, s in zip(base_k, scen_k, strict=True)])
        deltas.append(replace(e, name=key[0], site=key[1]))
    return Comparison(
        baseline=project(baseline[:n], as_of), scenario=project(scenario[:n], as_of), deltas=tuple(deltas)
    )
