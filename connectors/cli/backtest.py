"""``twin backtest CONFIG --at T0 --until T1``: fork at a past moment and score against what happened.

Reads the snapshot at ``--at`` from the historian (calibrating from the days before it), simulates
to ``--until`` and compares the bands with the history in between: band coverage (share of bin
ends where the actual value lies within P10..P90) and the error of the median, per series.
"""

from __future__ import annotations

import argparse
import json
import math

from connectors.cli.whatif import add_common, executor_for, open_inputs, parse_time, progress_bar
from twin.errors import ConfigError, Problem, TwinError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("backtest", help="fork at a past moment and compare the projection with history")
    p.add_argument("config", help="plant configuration file (TOML)")
    p.add_argument("--until", type=parse_time, required=True, help="end of the comparison (ISO 8601, UTC)")
    add_common(p)
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.set_defaults(func=run, replications=50)


def run(args: argparse.Namespace) -> int:
    from twin.sim.backtest import actual_series, backtest
    from twin.sim.build import fork
    from twin.sim.montecarlo import run as monte_carlo

    if args.at is None:
        raise ConfigError("--at", [Problem(path="at", message="a backtest needs a past fork time", has_got=False)])
    horizon = (args.until - args.at).total_seconds()
    if horizon <= 0:
        raise ConfigError("--until", [Problem(path="until", message="must be after --at", got=args.until.isoformat())])
    inputs = open_inputs(args.config, args.at, args.calibrate_days, args.site)
    if inputs.historian is None:
        raise TwinError("backtest needs history: the configured historian does not exist yet")
    f = fork(inputs.fleet, inputs.state, None, inputs.params, horizon_s=horizon, bin_s=args.bin, sites=args.site)
    with executor_for(args.dask, args.workers) as ex:
        res = monte_carlo(f.data, replications=args.replications, seed=args.seed, executor=ex,
                          workers=max(1, args.workers),
                          on_progress=progress_bar(not args.no_progress and not args.json),
                          as_of=f.as_of)
    projection = res.projection()
    t_s = projection.bands[0].t_s
    actual = actual_series(inputs.fleet, inputs.historian, list(f.data.sites), f.as_of, t_s)
    inputs.historian.close()
    result = backtest(projection, actual)
    if args.json:
        print(json.dumps(result.to_dict(), allow_nan=False))
        return 0
    print(f"backtest from {args.at.isoformat()} to {args.until.isoformat()}: {result.replications} replications; "
          f"pooled P10-P90 coverage {result.coverage * 100:.0f}% (about 80% expected)")
    print(f"{'series':<40}{'coverage':>10}{'MAE of P50':>14}{'rel. error':>12}")
    for s in result.series:
        rel = "-" if math.isnan(s.median_rel_error) else f"{s.median_rel_error * 100:.1f}%"
        print(f"{s.metric + ' ' + s.key:<40}{s.coverage * 100:>9.0f}%{s.median_abs_error:>14.2f}{rel:>12}")
    return 0
