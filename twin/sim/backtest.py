"""Backtest: compare a projection forked at a past moment with what happened afterwards.

:func:`actual_series` reads what happened from the historian (cumulative good parts of the
machines that finish products, and stock on hand per SKU) on the projection's bin ends;
:func:`backtest` scores the projection against it, per band with an actual series:

- **coverage**: share of bin ends where the actual value lies within P10..P90 (about 0.8 for a
  calibrated model of a continuous quantity);
- with the samples, the **PIT coverage** (:func:`pit_coverage`): the same share for a randomized PIT,
  which stays about 0.8 for a calibrated forecast of a *discrete* quantity too. Units made and stock
  on hand are counts that often do not move for hours (nights, weekends): then many replications
  share the actual value, P10 = actual = P90, and the inclusive P10..P90 check counts a hit however
  the forecast is spread (a calibrated Poisson(2) forecast covers 95 % of its outcomes that way,
  not 80 %). The randomized PIT of ``y`` is uniform on [F(y-), F(y)] (Czado, Gneiting & Held 2009,
  *Predictive model assessment for count data*), so a point counts the share of that interval
  inside [0.1, 0.9]: 0.8 for a point whose every sample equals the actual, 1 or 0 where there are
  no ties;
- **error of the median**: mean absolute error of P50 at the bin ends, and relative to the mean
  actual level;
- with the replications' samples (``samples``): the **PIT** of each actual value (the share of
  samples below it, ties counted half: the mid-rank, so a deterministic band scores 0.5 on its
  value) and its 10-bin histogram (flat for a calibrated model, U-shaped when the bands are too
  narrow, humped when too wide); the **CRPS** from the samples, E|X - y| - E|X - X'| / 2 with X, X'
  independent draws of the sample distribution (mean over the bin ends; in the series' unit, 0 for
  a perfect point forecast);
- with a naive forecast (``naive``: what happened in the same hours one week earlier) the same
  errors for it and a **skill score** 1 - err_model / err_naive (above 0: better than naive). For
  output (``cumulative_units``) the error compared is that of the **daily output**: units made in
  each full day of the horizon (the whole horizon when it is shorter), P50 of the samples' daily
  output against the actual; for stock, the mean absolute error at the bin ends.

:func:`rolling_summary` pools the scores of backtests from many origins: coverage, PIT
histogram, mean CRPS, mean errors and skill (ratio of the mean errors), and coverage by hour of
the horizon.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from twin.historian import HistorianReader, SeriesKey, SeriesPoint
from twin.sim.alarm_backtest import Observation
from twin.sim.projection import FLEET, Projection, to_plain
from twin.spec import FleetSpec, SignalKind

__all__ = ["NOISE_FLOOR_FACTOR", "NOISE_FLOOR_UNITS", "BacktestResult", "RollingSummary", "SeriesScore",
           "SeriesSummary", "actual_series", "backtest", "crps", "daily_values", "noise_floor", "pit", "pit_coverage",
           "pit_histogram", "rolling_summary", "with_oracle"]

MAX_POINTS = 10_000_000
PIT_BINS = 10
DAY_S = 86400.0
WEEK = timedelta(days=7)
NOISE_FLOOR_FACTOR = 1.10  # a forecast's P50 daily error may exceed the oracle's by 10 % ..
NOISE_FLOOR_UNITS = 1.0  # .. plus one unit (small sites: the error is a few units)


def pit(samples: Sequence[float] | np.ndarray, y: float) -> float:
    """Probability integral transform of ``y`` under the samples: share below, ties counted half.

    >>> pit([1.0, 2.0, 3.0, 4.0], 2.5), pit([1.0, 2.0, 3.0, 4.0], 2.0), pit([5.0, 5.0], 5.0)
    (0.5, 0.375, 0.5)
    """
    xs = np.asarray(samples, dtype=float)
    if xs.size == 0:
        return math.nan
    below = float(np.count_nonzero(xs < y))
    ties = float(np.count_nonzero(xs == y))
    return (below + 0.5 * ties) / xs.size


def pit_coverage(samples: Sequence[float] | np.ndarray, y: float, lo: float = 0.1, hi: float = 0.9) -> float:
    """Probability that the randomized PIT of ``y`` under the samples falls in [``lo``, ``hi``].

    The randomized PIT is uniform on [F(y-), F(y)] (share of samples below ``y``, share at or below
    it); without ties it is the plain PIT, 1.0 inside the band and 0.0 outside.

    >>> pit_coverage([5.0, 5.0, 5.0], 5.0)  # every sample is the actual: uniform on [0, 1] -> 0.8
    0.8
    >>> pit_coverage([1.0, 2.0, 3.0, 4.0], 2.5), pit_coverage([1.0, 2.0, 3.0, 4.0], 9.0)
    (1.0, 0.0)
    >>> round(pit_coverage([0, 0, 1, 1, 1, 2, 2, 3, 4, 5], 0.0), 3)  # uniform on [0, 0.2]: half in [0.1, 0.9]
    0.5
    """
    xs = np.asarray(samples, dtype=float)
    if xs.size == 0:
        return math.nan
    below = float(np.count_nonzero(xs < y)) / xs.size
    upto = float(np.count_nonzero(xs <= y)) / xs.size
    if upto - below <= 0.0:
        return 1.0 if lo <= below <= hi else 0.0
    return max(0.0, min(hi, upto) - max(lo, below)) / (upto - below)


def pit_histogram(values: Sequence[float], bins: int = PIT_BINS) -> tuple[int, ...]:
    """Counts of PIT values in ``bins`` equal bins of [0, 1] (1.0 in the last bin; NaNs left out).

    >>> pit_histogram([0.0, 0.05, 0.5, 0.95, 1.0])
    (2, 0, 0, 0, 0, 1, 0, 0, 0, 2)
    """
    counts = [0] * bins
    for v in values:
        if math.isnan(v):
            continue
        counts[min(bins - 1, max(0, int(v * bins)))] += 1
    return tuple(counts)


def crps(samples: Sequence[float] | np.ndarray, y: float) -> float:
    """CRPS of the empirical distribution of ``samples`` at ``y``: E|X - y| - E|X - X'| / 2.

    With the samples sorted, E|X - X'| = 2 / m^2 * sum_i (2 i - m - 1) x_i (i = 1..m).

    >>> crps([1.0, 2.0, 3.0], 2.0)  # 2/3 - (8/9) / 2 = 2/9
    0.2222222222222222
    >>> crps([4.0], 1.0)  # a point forecast: the absolute error
    3.0
    """
    xs = np.sort(np.asarray(samples, dtype=float))
    m = xs.size
    if m == 0:
        return math.nan
    abs_err = float(np.abs(xs - y).mean())
    i = np.arange(1, m + 1, dtype=float)
    spread = float(2.0 / (m * m) * np.sum((2.0 * i - m - 1.0) * xs))
    return abs_err - spread / 2.0


def daily_values(t_s: Sequence[float], cumulative: Sequence[float]) -> list[float]:
    """Output in each full day of a cumulative series (from 0 at the fork); the whole span if none.

    >>> daily_values([43200.0, 86400.0, 129600.0, 172800.0], [5.0, 12.0, 20.0, 30.0])
    [12.0, 18.0]
    >>> daily_values([3600.0, 7200.0], [1.0, 3.0])
    [3.0]
    """
    out: list[float] = []
    last = 0.0
    for t, c in zip(t_s, cumulative, strict=True):
        if abs(t / DAY_S - round(t / DAY_S)) < 1e-9 and t > 0:
            out.append(c - last)
            last = c
    if not out and len(cumulative):
        out.append(cumulative[-1])
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesScore:
    """One band against the actual series at the same bin ends (see the module docstring)."""

    metric: str
    key: str
    t_s: tuple[float, ...]
    actual: tuple[float, ...]
    p10: tuple[float, ...]
    p50: tuple[float, ...]
    p90: tuple[float, ...]
    coverage: float  # share of points with p10 <= actual <= p90
    median_abs_error: float  # mean |p50 - actual|
    pit_coverage: float = math.nan  # mean pit_coverage over the points (with samples)
    median_rel_error: float  # median_abs_error / mean |actual| (NaN when the actual is all zero)
    pit: tuple[float, ...] = ()  # per point (with samples)
    pit_histogram: tuple[int, ...] = ()
    crps: float = math.nan  # mean over the points (with samples)
    naive: tuple[float, ...] = ()  # the naive forecast per point (with a naive series)
    naive_abs_error: float = math.nan  # mean |naive - actual|
    daily_error: float = math.nan  # cumulative_units: mean |P50 daily output - actual| over full days
    naive_daily_error: float = math.nan
    skill: float = math.nan  # 1 - error / naive error (daily output for units, bin ends for stock)
    daily_bias: float = math.nan  # cumulative_units: mean (P50 daily output - actual) over full days
    daily_actual: float = math.nan  # cumulative_units: mean actual daily output over full days
    oracle_daily_error: float = math.nan  # the same error of the oracle forecast (``with_oracle``)
    oracle_daily_bias: float = math.nan
    oracle_pit_coverage: float = math.nan  # the oracle's PIT coverage (is a band's width the engine's or the fit's?)


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestResult:
    """Scores of every band that has an actual series, and their pooled coverage."""

    as_of: datetime | None
    horizon_s: float
    replications: int
    series: tuple[SeriesScore, ...]
    coverage: float
    second_order: bool = False
    alarms: tuple[Observation, ...] = ()  # the predictive alarms at this origin (``twin.sim.alarm_backtest``)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)  # type: ignore[no-any-return]


def _increases_at(points: Sequence[SeriesPoint], t0: datetime, ends: Sequence[datetime]) -> list[float]:
    """Counter increase from the last point at or before ``t0`` to each of the (ascending) ``ends``.

    A decrease is a restart from zero (the new value counts). One pass over the points.
    """
    ts = [p.ts for p in points]
    start = max(0, bisect_right(ts, t0) - 1)
    out = []
    total = 0.0
    i = start
    for end in ends:
        stop = bisect_right(ts, end)
        while i + 1 < stop:
            prev, cur = points[i].value, points[i + 1].value
            total += cur - prev if cur >= prev else cur
            i += 1
        out.append(total)
    return out


def _values_at(points: Sequence[SeriesPoint], ends: Sequence[datetime]) -> list[float]:
    ts = [p.ts for p in points]
    out = []
    for end in ends:
        i = bisect_right(ts, end)
        out.append(points[i - 1].value if i else math.nan)
    return out


def actual_series(
    fleet: FleetSpec, historian: HistorianReader, sites: Sequence[str], t0: datetime, t_s: Sequence[float]
) -> dict[tuple[str, str], tuple[float, ...]]:
    """What happened after ``t0`` at the bin ends ``t_s``, keyed like the projection's bands.

    ``("cumulative_units", site)`` counts good parts of the machines whose role ends a product
    routing at the site (fleet key ``*`` sums the sites; NaN when none of them has a point in the
    window); ``("stock", "site/sku")`` is on hand (NaN before its first point).
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
        ends = [t0 + timedelta(seconds=s) for s in t_s]
        per_key = [_increases_at(res.get(k, ()), t0, ends) for k in keys]
        units = [sum(col) for col in zip(*per_key, strict=True)] if per_key else [0.0] * len(t_s)
        if keys and not any(res.get(k) for k in keys):
            units = [math.nan] * len(t_s)  # no counter history at all (e.g. before the history starts)
        out[("cumulative_units", sid)] = tuple(units)
        fleet_total = [a + b for a, b in zip(fleet_total, units, strict=True)]
        for k in stock_keys:
            out[("stock", f"{sid}/{k.asset}")] = tuple(_values_at(res.get(k, ()), ends))
    out[("cumulative_units", FLEET)] = tuple(fleet_total)
    return out


def _skill(err: float, naive: float) -> float:
    if math.isnan(err) or math.isnan(naive) or naive <= 0.0:
        return math.nan
    return 1.0 - err / naive


def backtest(
    projection: Projection,
    actual: Mapping[tuple[str, str], Sequence[float]],
    samples: Mapping[tuple[str, str], np.ndarray] | None = None,
    naive: Mapping[tuple[str, str], Sequence[float]] | None = None,
    *,
    second_order: bool = False,
) -> BacktestResult:
    """Score ``projection`` against ``actual`` (values at the projection's bin ends).

    ``samples`` (replications x bins per band, e.g. ``MonteCarloResult.samples``) add PIT and CRPS,
    ``naive`` (the actual series one week earlier) the naive errors and the skill score.
    """
    scores = []
    hit = total = 0
    for band in projection.bands:
        values = actual.get((band.metric, band.key))
        if values is None:
            continue
        arr = samples.get((band.metric, band.key)) if samples is not None else None
        nv = naive.get((band.metric, band.key)) if naive is not None else None
        idx = [i for i, a in enumerate(values) if not math.isnan(a)]
        if not idx:
            continue
        t_s = [band.t_s[i] for i in idx]
        act = [values[i] for i in idx]
        lo, mid, hi = ([seq[i] for i in idx] for seq in (band.p10, band.p50, band.p90))
        inside = sum(1 for a, lo_, hi_ in zip(act, lo, hi, strict=True) if lo_ - 1e-9 <= a <= hi_ + 1e-9)
        mae = sum(abs(m - a) for m, a in zip(mid, act, strict=True)) / len(idx)
        level = sum(abs(a) for a in act) / len(idx)
        hit += inside
        total += len(idx)
        pits: tuple[float, ...] = ()
        mean_crps = pit_cov = math.nan
        if arr is not None and arr.size:
            pits = tuple(pit(arr[:, i], values[i]) for i in idx)
            pit_cov = sum(pit_coverage(arr[:, i], values[i]) for i in idx) / len(idx)
            mean_crps = sum(crps(arr[:, i], values[i]) for i in idx) / len(idx)
        naive_pts: tuple[float, ...] = ()
        naive_err = daily_err = naive_daily = daily_bias = daily_actual = math.nan
        if nv is not None:
            naive_pts = tuple(nv[i] for i in idx)
            ok = [(n, a) for n, a in zip(naive_pts, act, strict=True) if not math.isnan(n)]
            naive_err = sum(abs(n - a) for n, a in ok) / len(ok) if ok else math.nan
        skill = _skill(mae, naive_err)
        if band.metric == "cumulative_units" and len(idx) == len(values):
            full_t = list(band.t_s)
            actual_daily = daily_values(full_t, list(values))
            if arr is not None and arr.size:
                per_rep = np.asarray([daily_values(full_t, list(row)) for row in arr], dtype=float)
                p50_daily = np.percentile(per_rep, 50.0, axis=0).tolist()
            else:
                p50_daily = daily_values(full_t, list(band.p50))
            daily_err = sum(abs(p - a) for p, a in zip(p50_daily, actual_daily, strict=True)) / len(actual_daily)
            daily_bias = sum(p - a for p, a in zip(p50_daily, actual_daily, strict=True)) / len(actual_daily)
            daily_actual = sum(actual_daily) / len(actual_daily)
            if nv is not None and not any(math.isnan(x) for x in nv):
                naive_d = daily_values(full_t, list(nv))
                naive_daily = sum(abs(p - a) for p, a in zip(naive_d, actual_daily, strict=True)) / len(actual_daily)
            skill = _skill(daily_err, naive_daily)
        scores.append(SeriesScore(
            metric=band.metric, key=band.key, t_s=tuple(t_s), actual=tuple(act), p10=tuple(lo), p50=tuple(mid),
            p90=tuple(hi), coverage=inside / len(idx), median_abs_error=mae, pit_coverage=pit_cov,
            median_rel_error=mae / level if level else math.nan, pit=pits,
            pit_histogram=pit_histogram(pits) if pits else (), crps=mean_crps, naive=naive_pts,
            naive_abs_error=naive_err, daily_error=daily_err, naive_daily_error=naive_daily, skill=skill,
            daily_bias=daily_bias, daily_actual=daily_actual,
        ))
    return BacktestResult(as_of=projection.as_of, horizon_s=projection.horizon_s,
                          replications=projection.replications, series=tuple(scores),
                          coverage=hit / total if total else math.nan, second_order=second_order)


def with_oracle(result: BacktestResult, oracle: BacktestResult) -> BacktestResult:
    """``result`` with the P50 daily-output error and bias of ``oracle`` (the same fork, other figures) beside its own.

    The oracle is a measuring instrument: the same engine forked from the same state with the
    figures the plant really runs. Its error is the noise floor, what no forecast made at the fork
    removes (the plant's own randomness, plus whatever the engine does not model).
    """
    by_key = {(s.metric, s.key): s for s in oracle.series}
    series = []
    for s in result.series:
        o = by_key.get((s.metric, s.key))
        series.append(s if o is None else replace(s, oracle_daily_error=o.daily_error,
                                                  oracle_daily_bias=o.daily_bias,
                                                  oracle_pit_coverage=o.pit_coverage))
    return replace(result, series=tuple(series))


def noise_floor(oracle_error: float) -> float:
    """The largest P50 daily error that counts as at the noise floor: the oracle's x 1.10 + 1 unit.

    >>> noise_floor(10.0)
    12.0
    """
    return oracle_error * NOISE_FLOOR_FACTOR + NOISE_FLOOR_UNITS


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesSummary:
    """One series over many origins: pooled coverage and PIT, mean CRPS and errors, skill, coverage by hour."""

    metric: str
    key: str
    origins: int
    points: int
    coverage: float
    pit_histogram: tuple[int, ...]
    crps: float
    median_abs_error: float
    naive_abs_error: float
    pit_coverage: float = math.nan  # pooled PIT coverage (see the module docstring; NaN without samples)
    daily_error: float
    naive_daily_error: float
    skill: float  # 1 - mean error / mean naive error (daily output for units, bin ends for stock)
    coverage_by_hour: tuple[float, ...]  # share inside P10..P90 at hour h of the horizon (h = 1, 2, ...)
    daily_bias: float = math.nan  # cumulative_units: mean (P50 daily output - actual)
    daily_actual: float = math.nan  # cumulative_units: mean actual daily output
    oracle_daily_error: float = math.nan  # the oracle forecast's P50 daily error (NaN: no oracle)
    oracle_daily_bias: float = math.nan
    oracle_pit_coverage: float = math.nan  # pooled over the points, like pit_coverage


@dataclass(frozen=True, slots=True, kw_only=True)
class RollingSummary:
    """Every series' summary and the pooled coverage and PIT histogram of all of them."""

    origins: int
    coverage: float
    pit_histogram: tuple[int, ...]
    series: tuple[SeriesSummary, ...]
    pit_coverage: float = math.nan  # pooled over every series' points (NaN without samples)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)  # type: ignore[no-any-return]


def _nanmean(xs: Sequence[float]) -> float:
    ok = [x for x in xs if not math.isnan(x)]
    return sum(ok) / len(ok) if ok else math.nan


def _weighted(pairs: Sequence[tuple[float, int]]) -> float:
    ok = [(x, n) for x, n in pairs if not math.isnan(x)]
    total = sum(n for _, n in ok)
    return sum(x * n for x, n in ok) / total if total else math.nan


def rolling_summary(results: Sequence[BacktestResult]) -> RollingSummary:
    """Pool backtests from several origins, series by series (see the module docstring)."""
    groups: dict[tuple[str, str], list[SeriesScore]] = {}
    for r in results:
        for s in r.series:
            groups.setdefault((s.metric, s.key), []).append(s)
    out = []
    all_hits = all_points = 0
    all_pit_hits = all_pit_points = 0.0
    all_pit = [0] * PIT_BINS
    for (metric, key), scores in groups.items():
        hits = points = 0
        pit_hits = pit_points = 0.0
        by_hour: dict[int, list[int]] = {}
        pit_counts = [0] * PIT_BINS
        for s in scores:
            for t, a, lo, hi in zip(s.t_s, s.actual, s.p10, s.p90, strict=True):
                inside = int(lo - 1e-9 <= a <= hi + 1e-9)
                hits += inside
                points += 1
                by_hour.setdefault(max(1, math.ceil(t / 3600.0 - 1e-9)), []).append(inside)
            for i, c in enumerate(s.pit_histogram):
                pit_counts[i] += c
            if not math.isnan(s.pit_coverage):
                pit_hits += s.pit_coverage * len(s.t_s)
                pit_points += len(s.t_s)
        all_pit_hits += pit_hits
        all_pit_points += pit_points
        all_hits += hits
        all_points += points
        all_pit = [a + b for a, b in zip(all_pit, pit_counts, strict=True)]
        hours = range(1, max(by_hour) + 1) if by_hour else range(0)
        mae = _nanmean([s.median_abs_error for s in scores])
        naive = _nanmean([s.naive_abs_error for s in scores])
        daily = _nanmean([s.daily_error for s in scores])
        naive_daily = _nanmean([s.naive_daily_error for s in scores])
        skill = _skill(daily, naive_daily) if metric == "cumulative_units" else _skill(mae, naive)
        out.append(SeriesSummary(
            metric=metric, key=key, origins=len(scores), points=points, coverage=hits / points if points else math.nan,
            pit_coverage=pit_hits / pit_points if pit_points else math.nan,
            pit_histogram=tuple(pit_counts), crps=_nanmean([s.crps for s in scores]), median_abs_error=mae,
            naive_abs_error=naive, daily_error=daily, naive_daily_error=naive_daily, skill=skill,
            coverage_by_hour=tuple(sum(by_hour[h]) / len(by_hour[h]) if h in by_hour else math.nan for h in hours),
            daily_bias=_nanmean([s.daily_bias for s in scores]),
            daily_actual=_nanmean([s.daily_actual for s in scores]),
            oracle_daily_error=_nanmean([s.oracle_daily_error for s in scores]),
            oracle_daily_bias=_nanmean([s.oracle_daily_bias for s in scores]),
            oracle_pit_coverage=_weighted([(s.oracle_pit_coverage, len(s.t_s)) for s in scores]),
        ))
    return RollingSummary(origins=len(results), coverage=all_hits / all_points if all_points else math.nan,
                          pit_histogram=tuple(all_pit), series=tuple(out),
                          pit_coverage=all_pit_hits / all_pit_points if all_pit_points else math.nan)
