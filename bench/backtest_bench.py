"""Benchmark of the rolling backtest and of second-order Monte Carlo's cost.

    .venv/bin/python bench/backtest_bench.py [--origins 24] [--replications 50] [--workers 2]
                                             [--store PATH] [--step 300]

1. **History.** The example fleet (4 sites) is backfilled (``connectors.emulator.backfill``) into a
   temporary SQLite store: the 7 days of calibration before the first origin, the origins 6 h apart
   and the 24 h horizon after the last (14 days for 24 origins), one sample every ``--step`` s,
   the plant running its hidden truth (``--truth``, examples/truth.toml; ``--truth ""`` for none).
   ``--store PATH`` reuses (or keeps) that file; the backfill time is printed, not part of the target.
   The calibration at the middle origin is printed beside the truth's figures.
2. **Rolling backtest** (``twin.sim.rolling.rolling``, what ``twin backtest --from --to``
   runs): ``--origins`` forks 6 h apart, each calibrated only from the 7 days before it, 50
   replications of 24 h on a pool of ``--workers`` processes (pool start-up included), scored
   against what happened (coverage, PIT, CRPS, daily output against the naive forecast). Target:
   24 origins x 4 sites x 50 replications <= 60 s on 2 processes. Run once second order (the
   default) and once first order: the ratio is the cost of parameter uncertainty in a backtest. With
   a truth file, once more with the oracle (``app.backtest.oracle_params``: the same forks with the
   truth's figures, the noise floor); the fidelity table comes from that run: coverage (inclusive and
   of the randomized PIT), P50 daily error and bias, the oracle's error, naive error and skill.
3. **Second-order cost of the Monte Carlo alone**: one fork of the whole fleet calibrated from the
   week before it, 100 replications of 24 h and 50 of 7 days in this process, second vs first order
   (CPU time, best of 5 alternated: the machine may be shared); and with the first-order
   companion (a quarter of the replications, at least 10) that ``twin whatif`` adds to say how
   much of the band is parameter uncertainty. Target <= 1.5x. The draws alone (``Perturber``, 200
   replications) are timed too: the run times swing more than their cost.

Wall times depend on the machine's load: the 1-minute load average is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIRST_ORIGIN = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # a Monday
EVERY_S = 6 * 3600.0
HORIZON_S = 86400.0
CALIBRATE_DAYS = 7.0


def _best_cpu(runs: dict[str, Callable[[], Any]], repeat: int = 5) -> dict[str, float]:
    """CPU seconds of each run in this process, best of ``repeat``, the runs alternated.

    CPU time, not wall time: the bench machine is shared, and wall time swings with the others' load.
    """
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, fn in runs.items():
            t = time.process_time()
            fn()
            best[name] = min(best[name], time.process_time() - t)
    return best


def history(fleet: Any, store: Path, origins: int, step_s: float, truth_path: str) -> tuple[Any, datetime, datetime]:
    """A historian holding the backfilled fleet over what the backtest reads (made when missing)."""
    from connectors.store import SqliteHistorian

    start = FIRST_ORIGIN - timedelta(days=CALIBRATE_DAYS, hours=1)
    end = FIRST_ORIGIN + timedelta(seconds=EVERY_S * (origins - 1) + HORIZON_S)
    if not store.exists():
        from connectors.emulator.backfill import backfill

        truth = None
        if truth_path:
            from connectors.emulator.truth import load_truth

            truth = load_truth(Path(truth_path), fleet)
        h = SqliteHistorian(store, fleet)
        t = time.perf_counter()
        res = backfill(fleet, h, start=start, end=end, step_s=step_s, seed=7, truth=truth)
        h.close()
        print(f"backfill: {(end - start).total_seconds() / 86400:.1f} days of {len(fleet.sites)} sites every "
              f"{step_s:g} s in {time.perf_counter() - t:.0f} s ({res.readings:,} readings, {res.orders:,} orders, "
              f"{res.shipments:,} shipments; truth: {truth_path or 'none'})")
    else:
        print(f"history: reusing {store}")
    return SqliteHistorian(store, fleet, readonly=True), start, end


def rolling_time(fleet: Any, historian: Any, origins: int, replications: int, workers: int,
                 second_order: bool, oracle: Any = None) -> tuple[float, Any]:
    from twin.sim.rolling import origins as origin_times
    from twin.sim.rolling import rolling

    at = origin_times(FIRST_ORIGIN, FIRST_ORIGIN + timedelta(seconds=EVERY_S * (origins - 1)), EVERY_S)
    t = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        _, summary = rolling(fleet, historian, at, HORIZON_S, bin_s=3600.0, replications=replications, seed=1,
                             executor=pool, workers=workers, calibrate_days=CALIBRATE_DAYS,
                             second_order=second_order, oracle=oracle)
    return time.perf_counter() - t, summary


def mc_cost(fleet: Any, historian: Any) -> None:
    from twin.calibrate import calibrate
    from twin.frozen import FrozenDict
    from twin.sim.build import fork
    from twin.sim.montecarlo import companion_replications
    from twin.sim.montecarlo import run as monte_carlo
    from twin.sim.uncertainty import Perturber
    from twin.state import TwinState

    at = FIRST_ORIGIN + timedelta(days=3)
    sites = [str(s.id) for s in fleet.sites]
    cal = calibrate(fleet, historian, at - timedelta(days=CALIBRATE_DAYS), at)
    states = {sid: st for sid in sites if (st := historian.state_at(sid, at)) is not None}
    state = TwinState(fleet=fleet.id, as_of=at, sites=FrozenDict(states))
    listed = len(cal.uncertainty.figures)
    print(f"\nsecond-order cost, Monte Carlo alone (whole fleet, in this process, CPU s, best of 5 alternated; "
          f"{listed} figures with a sampling law from history, the rest with prior widths)")
    print(f"{'horizon':<10}{'reps':>6}{'first order s':>15}{'second order s':>16}{'ratio':>8}"
          f"{'+ companion':>13}")
    for horizon in (HORIZON_S, 7 * HORIZON_S):
        data = fork(fleet, state, None, cal.params, horizon_s=horizon).data
        n = 100 if horizon <= HORIZON_S else 50
        cpu = _best_cpu({
            "first": lambda d=data, n=n: monte_carlo(d, replications=n, seed=1, second_order=False),
            "second": lambda d=data, n=n: monte_carlo(d, replications=n, seed=1, uncertainty=cal.uncertainty),
        })
        first, second = cpu["first"], cpu["second"]
        extra = first * companion_replications(n) / n
        draw = Perturber(data, cal.uncertainty)
        t = time.process_time()
        for rep in range(200):
            draw(1, rep)
        draw_ms = (time.process_time() - t) / 200 * 1000
        print(f"{horizon / 86400:>6.0f} d  {n:>6}{first:>15.2f}{second:>16.2f}{second / first:>8.2f}"
              f"{(second + extra) / first:>12.2f}x   draws {draw_ms:.2f} ms = {draw_ms / (first / n * 1000):.0%} of "
              "a first-order replication")


# (estimate, subject, the truth's figure, what the configuration says) from examples/truth.toml
TRUTH = (
    ("cycle_time_s", "pod-berlin/CNC1", 936.0, 720.0),
    ("mtbf_h", "pod-austin/P3", 100.0, 200.0),
    ("scrap_rate", "pod-lyon/QC1", 0.04, 0.02),
    ("mttr_h", "pod-berlin/W1", 1.4, 1.0),
    ("mttr_h", "pod-austin/W1", 1.4, 1.0),
    ("orders_per_day", "pod-austin/custom-bracket", 31.25, 25.0),
    ("consumption_factor", "pod-berlin/PLA-1KG", 1.2, 1.0),
)


def truth_table(fleet: Any, historian: Any, at: datetime) -> None:
    from twin.calibrate import calibrate

    cal = calibrate(fleet, historian, at - timedelta(days=CALIBRATE_DAYS), at)
    print(f"\ncalibration from the 7 days before {at.isoformat()} against the truth (examples/truth.toml)")
    print(f"{'figure':<44}{'configured':>11}{'truth':>9}{'estimate':>10}{'samples':>9}  source")
    for name, subject, truth, configured in TRUTH:
        try:
            e = cal.get(name, subject)
        except KeyError:
            print(f"{name + ' ' + subject:<44}{configured:>11g}{truth:>9g}{'-':>10}{'-':>9}  (not estimated)")
            continue
        print(f"{name + ' ' + subject:<44}{configured:>11g}{truth:>9g}{e.value:>10.4g}{e.samples:>9}  "
              f"{e.source.value}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--origins", type=int, default=24)
    ap.add_argument("--replications", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--store", type=Path, default=None, help="SQLite history to reuse (made when missing)")
    ap.add_argument("--step", type=float, default=300.0, help="backfill sample step, s")
    ap.add_argument("--skip-first-order", action="store_true", help="only the second-order rolling run")
    ap.add_argument("--truth", default=str(ROOT / "examples" / "truth.toml"),
                    help="the plant's hidden truth for the backfill ('' for none)")
    args = ap.parse_args()

    from connectors.config import load

    fleet = load(ROOT / "examples" / "fleet.toml").fleet
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store if args.store is not None else Path(tmp) / "history.db"
        historian, _, _ = history(fleet, store, args.origins, args.step, args.truth)
        try:
            truth_table(fleet, historian, FIRST_ORIGIN + timedelta(seconds=EVERY_S * (args.origins // 2)))
            print(f"\nrolling backtest: {args.origins} origins every 6 h x {len(fleet.sites)} sites x "
                  f"{args.replications} replications of 24 h on {args.workers} processes")
            second_s, summary = rolling_time(fleet, historian, args.origins, args.replications, args.workers, True)
            print(f"  second order: {second_s:.1f} s (target <= 60 s; load average {os.getloadavg()[0]:.1f})")
            if not args.skip_first_order:
                first_s, _ = rolling_time(fleet, historian, args.origins, args.replications, args.workers, False)
                print(f"  first order:  {first_s:.1f} s (second / first = {second_s / first_s:.2f}; load average "
                      f"{os.getloadavg()[0]:.1f})")
            oracle = None
            if args.truth:
                from app.backtest import oracle_params
                from connectors.emulator.truth import load_truth

                oracle = oracle_params(fleet, load_truth(Path(args.truth), fleet))
                oracle_s, summary = rolling_time(fleet, historian, args.origins, args.replications, args.workers,
                                                 True, oracle)
                print(f"  second order with the oracle (the same forks again with the truth's figures, first "
                      f"order): {oracle_s:.1f} s (load average {os.getloadavg()[0]:.1f})")
            print(f"\nfidelity (second order): pooled P10-P90 coverage {summary.coverage * 100:.0f}%, of the "
                  f"randomized PIT {summary.pit_coverage * 100:.0f}%, PIT histogram {list(summary.pit_histogram)}")
            print(f"{'series':<32}{'coverage':>9}{'PIT cov':>8}{'CRPS':>9}{'P50 daily err':>15}{'bias':>8}"
                  f"{'oracle err':>11}{'naive err':>11}{'skill':>8}")
            for s in summary.series:
                if s.metric == "cumulative_units":
                    print(f"{'output ' + s.key:<32}{s.coverage * 100:>8.0f}%{s.pit_coverage * 100:>7.0f}%"
                          f"{s.crps:>9.1f}{s.daily_error:>15.1f}{s.daily_bias:>+8.1f}{s.oracle_daily_error:>11.1f}"
                          f"{s.naive_daily_error:>11.1f}{s.skill:>8.2f}")
            mc_cost(fleet, historian)
        finally:
            historian.close()


if __name__ == "__main__":
    main()
