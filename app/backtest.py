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
figures (with their prior widths in second order). The forking and scoring at every origin is
``twin.sim.rolling`` (shared with the dashboard's model-trust scheduler, ``dashboard.trust``); this
module parses the command and prints.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.whatif import add_common, check_sites, open_history, parse_duration, parse_time, progress_bar
from connectors.executors import executor_for
from twin.errors import ConfigError, Problem, TwinError
from twin.sim.rolling import origins, rolling, score_at

if TYPE_CHECKING:
    from twin.historian import HistorianReader
    from twin.spec import FleetSpec

__all__ = ["register", "run"]

log = logging.getLogger(__name__)


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


def _open(args: argparse.Namespace) -> tuple[FleetSpec, HistorianReader]:
    """The configuration's fleet and its historian (``TwinError`` when there is no history yet)."""
    from connectors.config import load

    config = load(args.config)
    fleet = config.fleet
    check_sites(fleet, args.site or [])
    historian = open_history(config)
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
