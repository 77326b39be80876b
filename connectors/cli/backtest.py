"""``twin backtest CONFIG``: fork at past moments and score the projections against what happened.

Two modes:

- ``--at T0 --until T1``: one fork at ``T0`` (calibrating from the days before it), simulated to
  ``T1`` and compared with the history in between.
- ``--from T0 --to T1 --every 6h --horizon 24h``: a rolling backtest, one fork at every origin
  ``T0, T0 + every, .. <= T1``, each calibrated ONLY from the history before that origin
  (``--calibrate-days``, 7 by default), simulated over the horizon and scored.

Scores per site and series (``twin.sim.backtest``): P10-P90 coverage, a 10-bin PIT histogram,
CRPS from the replications' samples, the P50 error of the daily output and the same error of a
naive forecast (the same hours one week earlier) as a skill score 1 - err_model / err_naive, and
(rolling) coverage by hour of the horizon. ``--json`` prints one document: a single backtest, or
``{"origins": [one per origin, with its as_of and series], "summary": {...}}``.

Replications are second order unless ``--first-order``; ``--no-calibration`` uses the configured
figures (with their prior widths in second order).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from datetime import datetime, timedelta
from typing import Any

from connectors.cli.whatif import (
    add_common,
    executor_for,
    open_historian,
    parse_duration,
    parse_time,
    progress_bar,
    uncertainty_of,
)
from twin.errors import ConfigError, Problem, TwinError

log = logging.getLogger(__name__)

WEEK = timedelta(days=7)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("backtest", help="fork at past moments and compare the projections with history")
    p.add_argument("config", help="plant configuration file (TOML)")
    p.add_argument("--until", type=parse_time, default=None, help="end of a single comparison (ISO 8601, UTC)")
    p.add_argument("--from", dest="origin_from", type=parse_time, default=None,
                   help="first origin of a rolling backtest (ISO 8601, UTC)")
    p.add_argument("--to", dest="origin_to", type=parse_time, default=None, help="last origin (at most)")
    p.add_argument("--every", type=parse_duration, default=6 * 3600.0, help="time between origins (6h)")
    p.add_argument("--no-calibration", action="store_true", help="use the configured figures (no calibration)")
    add_common(p)
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.set_defaults(func=run, replications=50, horizon=86400.0, calibrate_days=7.0)


def score_at(
    fleet: Any, historian: Any, at: datetime, horizon_s: float, *, bin_s: float, replications: int, seed: int,
    executor: Executor | None, workers: int, calibrate_days: float, second_order: bool,
    sites: Sequence[str] | None = None, on_progress: Callable[[int, int], None] | None = None,
) -> Any:
    """Fork at ``at`` from history before it, project ``horizon_s`` and score against what happened."""
    from twin.calibrate import calibrate
    from twin.frozen import FrozenDict
    from twin.live import initial_site_state
    from twin.sim.backtest import actual_series, backtest
    from twin.sim.build import fork
    from twin.sim.montecarlo import run as monte_carlo
    from twin.state import TwinState

    wanted = list(sites) if sites else [str(s.id) for s in fleet.sites]
    states = {}
    for sid in wanted:
        st = historian.state_at(sid, at)
        states[sid] = st if st is not None else initial_site_state(fleet.site(sid), at)
    state = TwinState(fleet=fleet.id, as_of=at, sites=FrozenDict(states))
    calibration = None
    if calibrate_days > 0:
        calibration = calibrate(fleet, historian, at - timedelta(days=calibrate_days), at, sites=wanted)
    params = calibration.params if calibration is not None else None
    f = fork(fleet, state, None, params, horizon_s=horizon_s, bin_s=bin_s, sites=wanted)
    res = monte_carlo(f.data, replications=replications, seed=seed, executor=executor, workers=workers,
                      on_progress=on_progress, as_of=f.as_of, uncertainty=uncertainty_of(calibration),
                      second_order=second_order)
    projection = res.projection()
    t_s = projection.bands[0].t_s
    actual = actual_series(fleet, historian, list(f.data.sites), f.as_of, t_s)
    naive = actual_series(fleet, historian, list(f.data.sites), f.as_of - WEEK, t_s)
    samples = {key: res.samples(*key) for key in actual}
    return backtest(projection, actual, samples, naive, second_order=res.second_order)


class WindowCache:
    """A read-through cache of a historian's series and events over ``[lo, hi]``, for overlapping reads.

    A rolling backtest reads, at every origin, the week before it (calibration), the horizon after
    it (the actual series) and the same hours a week earlier (the naive forecast): windows that
    overlap by most of their length. Each series and each site's events are read once over
    ``[lo, hi]`` and sliced by time after that; a read outside ``[lo, hi]`` goes to the historian.
    Slicing returns exactly the points in ``[t0, t1]``, as the historian would, so nothing after
    an origin is seen by its calibration.
    """

    def __init__(self, historian: Any, lo: datetime, hi: datetime) -> None:
        self._h = historian
        self.lo, self.hi = lo, hi
        self._series: dict[Any, tuple[list[datetime], tuple[Any, ...], bool]] = {}
        self._events: dict[str, tuple[list[datetime], list[Any]]] = {}

    def series(self, keys: Sequence[Any], t0: datetime, t1: datetime, max_points: int) -> list[Any]:
        from twin.historian import SeriesResult

        if t0 < self.lo or t1 > self.hi:
            return list(self._h.series(keys, t0, t1, max_points))
        missing = [k for k in keys if k not in self._series]
        if missing:
            for r in self._h.series(missing, self.lo, self.hi, max_points):
                self._series[r.key] = ([p.ts for p in r.points], r.points, r.downsampled)
        out = []
        for k in keys:
            ts, points, down = self._series[k]
            out.append(SeriesResult(key=k, points=points[bisect_left(ts, t0):bisect_right(ts, t1)], downsampled=down))
        return out

    def events(self, site: str | None, t0: datetime, t1: datetime) -> list[Any]:
        if site is None or t0 < self.lo or t1 > self.hi:
            return list(self._h.events(site, t0, t1))
        if site not in self._events:
            evs = sorted(self._h.events(site, self.lo, self.hi), key=lambda e: e.ts)
            self._events[site] = ([e.ts for e in evs], evs)
        ts, evs = self._events[site]
        return evs[bisect_left(ts, t0):bisect_right(ts, t1)]

    def state_at(self, site: str, t: datetime) -> Any:
        return self._h.state_at(site, t)

    def signals(self, site: str | None = None) -> list[Any]:
        return list(self._h.signals(site))

    def write(self, *args: Any, **kwargs: Any) -> None:
        raise TwinError("a backtest only reads history")

    def close(self) -> None:
        self._series.clear()
        self._events.clear()


def origins(first: datetime, last: datetime, every_s: float) -> list[datetime]:
    """``first``, ``first + every``, .. up to ``last`` (inclusive)."""
    out = []
    t = first
    while t <= last:
        out.append(t)
        t += timedelta(seconds=every_s)
    return out


def rolling(
    fleet: Any, historian: Any, at: Sequence[datetime], horizon_s: float, *, bin_s: float, replications: int,
    seed: int, executor: Executor | None, workers: int, calibrate_days: float, second_order: bool,
    sites: Sequence[str] | None = None, on_origin: Callable[[int, int], None] | None = None,
) -> tuple[list[Any], Any]:
    """Backtests at every origin and their summary (``twin.sim.backtest.rolling_summary``)."""
    from twin.sim.backtest import rolling_summary

    results = []
    if at:
        lo = min(at) - timedelta(days=calibrate_days) - WEEK - timedelta(hours=1)
        historian = WindowCache(historian, lo, max(at) + timedelta(seconds=horizon_s))
    for i, t in enumerate(at):
        results.append(score_at(fleet, historian, t, horizon_s, bin_s=bin_s, replications=replications, seed=seed,
                                executor=executor, workers=workers, calibrate_days=calibrate_days,
                                second_order=second_order, sites=sites))
        if on_origin is not None:
            on_origin(i + 1, len(at))
    return results, rolling_summary(results)


def _check(args: argparse.Namespace) -> None:
    if args.replications < 1:
        raise ConfigError("--replications", [Problem(path="replications", message="must be >= 1",
                                                     got=args.replications)])
    if args.origin_from is not None or args.origin_to is not None:
        if args.origin_from is None or args.origin_to is None:
            raise ConfigError("--from", [Problem(path="from", message="a rolling backtest needs --from and --to",
                                                 has_got=False)])
        if args.origin_to < args.origin_from:
            raise ConfigError("--to", [Problem(path="to", message="must not be before --from",
                                               got=args.origin_to.isoformat())])
        if args.every <= 0 or args.horizon <= 0:
            raise ConfigError("--every", [Problem(path="every", message="--every and --horizon must be > 0",
                                                  got=args.every)])
        return
    if args.at is None or args.until is None:
        raise ConfigError("--at", [Problem(path="at", message="a backtest needs --at and --until, or --from and --to",
                                           has_got=False)])
    if args.until <= args.at:
        raise ConfigError("--until", [Problem(path="until", message="must be after --at", got=args.until.isoformat())])


def run(args: argparse.Namespace) -> int:
    _check(args)
    calibrate_days = 0.0 if args.no_calibration else args.calibrate_days
    second_order = not args.first_order
    if args.origin_from is not None:
        return _run_rolling(args, calibrate_days, second_order)
    horizon = (args.until - args.at).total_seconds()
    fleet, historian = _open(args)
    try:
        with executor_for(args.dask, args.workers) as ex:
            result = score_at(fleet, historian, args.at, horizon, bin_s=args.bin, replications=args.replications,
                              seed=args.seed, executor=ex, workers=max(1, args.workers),
                              calibrate_days=calibrate_days, second_order=second_order, sites=args.site,
                              on_progress=progress_bar(not args.no_progress and not args.json))
    finally:
        historian.close()
    if args.json:
        print(json.dumps(result.to_dict(), allow_nan=False))
        return 0
    order = "second order" if result.second_order else "first order"
    print(f"backtest from {args.at.isoformat()} to {args.until.isoformat()}: {result.replications} replications "
          f"({order}); pooled P10-P90 coverage {result.coverage * 100:.0f}% (about 80% expected)")
    print(_table([(s.metric, s.key, s.coverage, s.pit_histogram, s.crps, s.daily_error if s.metric ==
                   "cumulative_units" else s.median_abs_error, s.skill) for s in result.series]))
    return 0


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{x * 100:.0f}%"


def _num(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2f}"


def _pit_text(hist: Sequence[int]) -> str:
    top = max(hist, default=0)
    if not top:
        return "-"
    marks = " .:-=+*#%@"  # height of each bin relative to the fullest one
    return "".join(marks[round(9 * c / top)] for c in hist)


def _table(rows: Sequence[tuple[str, str, float, Sequence[int], float, float, float]]) -> str:
    lines = [f"{'series':<40}{'coverage':>9}  {'PIT (10 bins)':<14}{'CRPS':>9}{'P50 error':>11}{'skill':>8}"]
    for metric, key, cov, hist, crps, err, skill in rows:
        lines.append(f"{metric + ' ' + key:<40}{_pct(cov):>9}  {_pit_text(hist):<14}{_num(crps):>9}{_num(err):>11}"
                     f"{_num(skill):>8}")
    lines.append("(P50 error: of the daily output for cumulative_units, at the bin ends for stock; skill = "
                 "1 - error / error of the same hours a week earlier)")
    return "\n".join(lines)


def _open(args: argparse.Namespace) -> tuple[Any, Any]:
    from connectors.config import load

    config = load(args.config)
    fleet = config.fleet
    for s in args.site or []:
        try:
            fleet.site(s)
        except KeyError:
            raise ConfigError("--site", [Problem(path="site", message="unknown site", got=s)]) from None
    historian = open_historian(config)
    if historian is None:
        raise TwinError("backtest needs history: the configured historian does not exist yet")
    return fleet, historian


def _run_rolling(args: argparse.Namespace, calibrate_days: float, second_order: bool) -> int:
    fleet, historian = _open(args)
    at = origins(args.origin_from, args.origin_to, args.every)
    show = not args.no_progress and not args.json

    def on_origin(done: int, total: int) -> None:
        if show:
            sys.stderr.write(f"\rorigin {done}/{total}")
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()

    try:
        with executor_for(args.dask, args.workers) as ex:
            results, summary = rolling(fleet, historian, at, args.horizon, bin_s=args.bin,
                                       replications=args.replications, seed=args.seed, executor=ex,
                                       workers=max(1, args.workers), calibrate_days=calibrate_days,
                                       second_order=second_order, sites=args.site, on_origin=on_origin)
    finally:
        historian.close()
    if args.json:
        doc = {"origins": [r.to_dict() for r in results], "summary": summary.to_dict()}
        print(json.dumps(doc, allow_nan=False))
        return 0
    order = "second order" if second_order else "first order"
    print(f"rolling backtest: {len(at)} origins from {at[0].isoformat()} every {args.every / 3600:g} h, horizon "
          f"{args.horizon / 3600:g} h, {args.replications} replications ({order}); pooled P10-P90 coverage "
          f"{_pct(summary.coverage)} (about 80% expected)")
    print(_table([(s.metric, s.key, s.coverage, s.pit_histogram, s.crps, s.daily_error if s.metric ==
                   "cumulative_units" else s.median_abs_error, s.skill) for s in summary.series]))
    fleet_units = [s for s in summary.series if s.metric == "cumulative_units" and s.key == "*"]
    if fleet_units:
        by_hour = " ".join(_pct(c) for c in fleet_units[0].coverage_by_hour)
        print(f"coverage of fleet output by horizon hour: {by_hour}")
    return 0
