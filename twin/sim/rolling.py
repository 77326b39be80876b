"""Rolling backtest: fork at many past origins, each calibrated only from history before it, and score.

One job: the orchestration shared by ``twin backtest`` (``app.backtest``) and the
dashboard's model-trust scheduler (``dashboard.trust``). At every origin ``t`` (:func:`origins`)
:func:`score_at` reads the sites' state at ``t`` and calibrates from ``[t - calibrate_days, t]``
(``twin.sim.whatif.prepare``, the preparation every what-if shares), forks, runs the Monte Carlo
over the horizon and scores the projection against what happened (``twin.sim.backtest``) and
against the naive forecast (the same hours one week earlier). :func:`rolling_run` does that at every origin through a
:class:`WindowCache` (the windows overlap by most of their length: every series is read once) and
pools the scores (``twin.sim.backtest.rolling_summary``); it keeps each origin's calibration, so a
caller can say which figures came from history and with how many samples. With alarm settings it
also backtests the predictive alarms at every origin (``twin.sim.alarm_backtest``).

Reads go through the ``twin.historian.HistorianReader`` protocol only; nothing is written.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from twin.calibrate import Calibration
from twin.errors import TwinError
from twin.historian import HistorianReader, SeriesKey, SeriesPoint, SeriesResult
from twin.readings import Reading
from twin.sim.alarm_backtest import AlarmSettings, AlarmSummary, observe, summarize
from twin.sim.backtest import BacktestResult, RollingSummary, actual_series, backtest, rolling_summary, with_oracle
from twin.sim.build import fork
from twin.sim.montecarlo import run as monte_carlo
from twin.sim.params import SimParams
from twin.sim.whatif import prepare
from twin.spec import FleetSpec
from twin.state import Event, SiteState

__all__ = ["RollingRun", "WindowCache", "origins", "rolling", "rolling_run", "score_at", "score_with_calibration"]

log = logging.getLogger(__name__)

WEEK = timedelta(days=7)


@dataclass(frozen=True, slots=True, kw_only=True)
class RollingRun:
    """The backtests of every origin, their pooled summary, and the calibration used at each origin."""

    origins: tuple[datetime, ...]
    results: tuple[BacktestResult, ...]
    summary: RollingSummary
    calibrations: tuple[Calibration | None, ...]  # one per origin; None when calibration was off
    alarms: AlarmSummary | None = None  # the predictive alarms' backtest (with ``alarms`` settings)


def origins(first: datetime, last: datetime, every_s: float) -> list[datetime]:
    """``first``, ``first + every``, .. up to ``last`` (inclusive).

    >>> from datetime import UTC
    >>> [t.hour for t in origins(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 13, tzinfo=UTC), 6 * 3600)]
    [0, 6, 12]
    """
    if every_s <= 0:
        raise TwinError(f"origins: every must be > 0 (got {every_s})")
    out = []
    t = first
    while t <= last:
        out.append(t)
        t += timedelta(seconds=every_s)
    return out


def score_with_calibration(
    fleet: FleetSpec, historian: HistorianReader, at: datetime, horizon_s: float, *, bin_s: float, replications: int,
    seed: int, executor: Executor | None, workers: int, calibrate_days: float, second_order: bool,
    sites: Sequence[str] | None = None, on_progress: Callable[[int, int], None] | None = None,
    oracle: SimParams | None = None, alarms: AlarmSettings | None = None,
) -> tuple[BacktestResult, Calibration | None]:
    """Fork at ``at`` from history before it, project ``horizon_s``, score; with the calibration used.

    ``oracle`` (a measuring instrument, never a forecast): the figures the plant really runs; the
    same state is forked again with them, first order (they are known exactly), and its P50 daily
    error and bias go beside the forecast's (``twin.sim.backtest.with_oracle``).
    ``alarms``: also observe the predictive alarms at ``at`` (``twin.sim.alarm_backtest.observe``) from
    the same replications, or, when the alarms look further ahead than ``horizon_s``, from a second
    fork of the same state with the same figures over their horizon; in ``result.alarms``.
    """
    inputs = prepare(fleet, historian, at, sites, calibrate_days)
    snapshot = inputs.snapshot()
    f = fork(fleet, snapshot, None, inputs.params, horizon_s=horizon_s, bin_s=bin_s, sites=inputs.sites)
    res = monte_carlo(f.data, replications=replications, seed=seed, executor=executor, workers=workers,
                      on_progress=on_progress, as_of=f.as_of, uncertainty=inputs.uncertainty,
                      second_order=second_order)
    projection = res.projection()
    t_s = projection.bands[0].t_s
    actual = actual_series(fleet, historian, list(f.data.sites), f.as_of, t_s)
    naive = actual_series(fleet, historian, list(f.data.sites), f.as_of - WEEK, t_s)
    samples = {key: res.samples(*key) for key in actual}
    result = backtest(projection, actual, samples, naive, second_order=res.second_order)
    if oracle is not None:
        fo = fork(fleet, snapshot, None, oracle, horizon_s=horizon_s, bin_s=bin_s, sites=inputs.sites)
        ro = monte_carlo(fo.data, replications=replications, seed=seed, executor=executor, workers=workers,
                         as_of=fo.as_of, second_order=False)
        po = ro.projection()
        result = with_oracle(result, backtest(po, actual, {key: ro.samples(*key) for key in actual}))
    if alarms is not None:
        outputs = res.baseline
        if alarms.horizon_s > horizon_s + 1e-9:
            fa = fork(fleet, snapshot, None, inputs.params, horizon_s=alarms.horizon_s, bin_s=bin_s, sites=inputs.sites)
            outputs = monte_carlo(fa.data, replications=replications, seed=seed, executor=executor, workers=workers,
                                  as_of=fa.as_of, uncertainty=inputs.uncertainty, second_order=second_order).baseline
        result = replace(result, alarms=observe(fleet, historian, f.as_of, outputs, alarms))
    return result, inputs.calibration


def score_at(
    fleet: FleetSpec, historian: HistorianReader, at: datetime, horizon_s: float, *, bin_s: float, replications: int,
    seed: int, executor: Executor | None, workers: int, calibrate_days: float, second_order: bool,
    sites: Sequence[str] | None = None, on_progress: Callable[[int, int], None] | None = None,
) -> BacktestResult:
    """Fork at ``at`` from history before it, project ``horizon_s`` and score against what happened."""
    return score_with_calibration(fleet, historian, at, horizon_s, bin_s=bin_s, replications=replications, seed=seed,
                                  executor=executor, workers=workers, calibrate_days=calibrate_days,
                                  second_order=second_order, sites=sites, on_progress=on_progress)[0]


class WindowCache:
    """A read-through cache of a historian's series and events over ``[lo, hi]``, for overlapping reads.

    A rolling backtest reads, at every origin, the week before it (calibration), the horizon after
    it (the actual series) and the same hours a week earlier (the naive forecast): windows that
    overlap by most of their length. Each series and each site's events are read once over
    ``[lo, hi]`` and sliced by time after that; a read outside ``[lo, hi]`` goes to the historian.
    Slicing returns exactly the points in ``[t0, t1]``, as the historian would, so nothing after
    an origin is seen by its calibration.
    """

    def __init__(self, historian: HistorianReader, lo: datetime, hi: datetime) -> None:
        self._h = historian
        self.lo, self.hi = lo, hi
        self._series: dict[SeriesKey, tuple[list[datetime], tuple[SeriesPoint, ...], bool]] = {}
        self._events: dict[str, tuple[list[datetime], list[Event]]] = {}

    def series(self, keys: Sequence[SeriesKey], t0: datetime, t1: datetime, max_points: int) -> list[SeriesResult]:
        if t0 < self.lo or t1 > self.hi:
            return list(self._h.series(keys, t0, t1, max_points))
        missing = [k for k in keys if k not in self._series]
        if missing:
            for r in self._h.series(missing, self.lo, self.hi, max_points):
                self._series[r.key] = ([p.ts for p in r.points], tuple(r.points), r.downsampled)
            for k in missing:  # a key the historian has nothing for
                self._series.setdefault(k, ([], (), False))
        out = []
        for k in keys:
            ts, points, down = self._series[k]
            out.append(SeriesResult(key=k, points=points[bisect_left(ts, t0):bisect_right(ts, t1)], downsampled=down))
        return out

    def events(self, site: str | None, t0: datetime, t1: datetime) -> list[Event]:
        if site is None or t0 < self.lo or t1 > self.hi:
            return list(self._h.events(site, t0, t1))
        if site not in self._events:
            evs = sorted(self._h.events(site, self.lo, self.hi), key=lambda e: e.ts)
            self._events[site] = ([e.ts for e in evs], evs)
        ts, evs = self._events[site]
        return evs[bisect_left(ts, t0):bisect_right(ts, t1)]

    def state_at(self, site: str, t: datetime) -> SiteState | None:
        return self._h.state_at(site, t)

    def signals(self, site: str | None = None) -> list[SeriesKey]:
        return list(self._h.signals(site))

    def write(self, readings: Sequence[Reading], states: Sequence[SiteState] = (),
              events: Sequence[Event] = ()) -> None:
        raise TwinError("a backtest only reads history")

    def close(self) -> None:
        self._series.clear()
        self._events.clear()


def rolling_run(
    fleet: FleetSpec, historian: HistorianReader, at: Sequence[datetime], horizon_s: float, *, bin_s: float,
    replications: int, seed: int, executor: Executor | None, workers: int, calibrate_days: float,
    second_order: bool, sites: Sequence[str] | None = None, on_origin: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None, oracle: SimParams | None = None,
    alarms: AlarmSettings | None = None,
) -> RollingRun:
    """Backtests at every origin (through one :class:`WindowCache`), their summary and calibrations.

    ``should_stop`` is asked before each origin: True ends the run early with the origins done so far.
    ``oracle``, ``alarms``: see :func:`score_with_calibration` (with ``alarms``, ``RollingRun.alarms``
    pools every origin's observations: ``twin.sim.alarm_backtest.summarize``).
    """
    results: list[BacktestResult] = []
    calibrations: list[Calibration | None] = []
    done: list[datetime] = []
    source: HistorianReader = historian
    if at:
        lo = min(at) - timedelta(days=calibrate_days) - WEEK - timedelta(hours=1)
        ahead = max(horizon_s, alarms.horizon_s) if alarms is not None else horizon_s
        source = WindowCache(historian, lo, max(at) + timedelta(seconds=ahead))
    for i, t in enumerate(at):
        if should_stop is not None and should_stop():
            log.info("rolling backtest stopped after %d of %d origins", i, len(at))
            break
        result, calibration = score_with_calibration(
            fleet, source, t, horizon_s, bin_s=bin_s, replications=replications, seed=seed, executor=executor,
            workers=workers, calibrate_days=calibrate_days, second_order=second_order, sites=sites, oracle=oracle,
            alarms=alarms)
        results.append(result)
        calibrations.append(calibration)
        done.append(t)
        if on_origin is not None:
            on_origin(i + 1, len(at))
    if source is not historian:
        source.close()
    summary_alarms = (summarize([o for r in results for o in r.alarms], alarms) if alarms is not None else None)
    return RollingRun(origins=tuple(done), results=tuple(results), summary=rolling_summary(results),
                      calibrations=tuple(calibrations), alarms=summary_alarms)


def rolling(
    fleet: FleetSpec, historian: HistorianReader, at: Sequence[datetime], horizon_s: float, *, bin_s: float,
    replications: int, seed: int, executor: Executor | None, workers: int, calibrate_days: float,
    second_order: bool, sites: Sequence[str] | None = None, on_origin: Callable[[int, int], None] | None = None,
    oracle: SimParams | None = None,
) -> tuple[list[BacktestResult], RollingSummary]:
    """Backtests at every origin and their summary (``twin.sim.backtest.rolling_summary``)."""
    run = rolling_run(fleet, historian, at, horizon_s, bin_s=bin_s, replications=replications, seed=seed,
                      executor=executor, workers=workers, calibrate_days=calibrate_days, second_order=second_order,
                      sites=sites, on_origin=on_origin, oracle=oracle)
    return list(run.results), run.summary
