"""Benchmark of the forecaster (``connectors.forecaster``): CPU and wall time of one cycle on the example fleet.

Run: ``.venv/bin/python bench/forecast_bench.py [--days 14] [--replications 40] [--cycles 3]``.

History is the EMULATED example fleet (4 sites, 34 machines, the example's three predictive rules:
failure risk 8 h, stockout 48 h, late order 24 h) with the degrading truth of the health tests,
backfilled every 300 s into a temporary SQLite store (not timed). Then ``--cycles`` forecasts, an
hour apart at the end of the history, each timed in CPU and wall seconds: the first fits the
failure-risk model (a refit every 6 h), the others only score it; every cycle runs the Monte Carlo
projection (``--replications`` over 48 h, one process) for the stockout and late-order risks.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.config import load
from connectors.config.forecaster import ForecasterConfig
from connectors.emulator.backfill import backfill
from connectors.emulator.truth import load_truth
from connectors.forecaster import Forecaster
from connectors.store import SqliteHistorian

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=14.0)
    ap.add_argument("--replications", type=int, default=40)
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--verbose", action="store_true", help="print the risks above 30 % of the first cycle")
    args = ap.parse_args()
    fleet = load(ROOT / "examples" / "fleet.toml").fleet
    end = datetime(2026, 11, 30, 6, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "history.db"
        store = SqliteHistorian(db, fleet)
        t = time.monotonic()
        backfill(fleet, store, start=end - timedelta(days=args.days), end=end, step_s=300.0, seed=7,
                 truth=load_truth(ROOT / "tests" / "twin" / "health" / "degrading_truth.toml", fleet))
        store.close()
        print(f"backfill: {args.days:g} days of {sum(len(s.machines) for s in fleet.sites)} machines "
              f"in {time.monotonic() - t:.1f} s (not timed below)")
        forecaster = Forecaster(fleet, ForecasterConfig(enabled=True, replications=args.replications),
                                lambda: SqliteHistorian(db, fleet, readonly=True))
        for i in range(args.cycles):
            f = forecaster.compute(end - timedelta(hours=args.cycles - 1 - i))
            above = sum(1 for r in f.risks
                        if r.probability > next(a.threshold or 0.5 for a in fleet.alarms if a.id == r.rule))
            if i == 0 and args.verbose:
                print(*(f"  {r.site} {r.asset}: {r.detail}" for r in f.risks if r.probability > 0.3), sep="\n")
            print(f"cycle {i + 1}: {len(f.risks)} risks ({above} above their threshold), "
                  f"{f.cpu_s:.2f} s CPU, {f.duration_s:.2f} s wall")


if __name__ == "__main__":
    main()
