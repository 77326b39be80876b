"""Benchmark of the failure-risk model (``twin.health``): fitting, scoring, and its accuracy across seeds.

Run: ``.venv/bin/python bench/health_bench.py [--days 14] [--step 60] [--machines 500]
[--seeds 7,8,9,10,11] [--store]``.

History is the EMULATED example fleet (4 sites, 34 machines) with the degrading truth of the health
tests (``tests/twin/health/degrading_truth.toml``: FDM printers wear out), sampled every ``--step``
seconds as a polling twin sees it (``connectors.emulator.wear.sample_histories``; no historian in
between, so only the model's own cost is timed). Printed (wall and CPU seconds):

* **fit**: the timeline (30 min grid) of ``--days`` x 34 machines, and the per-template fit
  (lifelines' Cox time-varying fitter for every template with at least 10 failures);
* **scoring per refresh** at ``--machines`` machines (the 34 copied under new names): the risk of
  each at the last grid time (8 h and rest of shift, intervals, drivers) from their timelines, and
  the timelines of the last 6 h rebuilt first (what a refresh recomputes: the covariates at now);
* with ``--store``: the same history backfilled into a temporary SQLite file first (``twin backfill``'s
  code, not timed), then reading it back (``twin.health.history.load_histories``: status events and
  every condition series, a day per request) timed with the timeline and the fit: what ``twin
  health`` spends;
* **accuracy**: for each of ``--seeds``, 21 days of Berlin and Austin at 300 s (the health test's
  set-up), fitted on 14, scored on the 7 held out: AUC of the model and of the constant-MTBF
  baseline, Brier skill, median warning lead time.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from connectors.config import load
from connectors.emulator.plant import Plant
from connectors.emulator.truth import Truth, load_truth
from connectors.emulator.wear import sample_histories
from twin.health.evaluate import evaluate
from twin.health.history import load_histories
from twin.health.model import FitOptions, fit
from twin.health.score import machine_health
from twin.health.timeline import ConditionHistory, build_timeline
from twin.spec import FleetSpec

ROOT = Path(__file__).resolve().parents[1]
TRUTH = ROOT / "tests" / "twin" / "health" / "degrading_truth.toml"
END = datetime(2026, 11, 30, 6, tzinfo=UTC)
T = TypeVar("T")


def _timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def _store(fleet: FleetSpec, truth: Truth, start: datetime, step_s: float, mtbf: dict[str, float]) -> None:
    from connectors.emulator.backfill import backfill
    from connectors.store import SqliteHistorian

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "history.db"
        store = SqliteHistorian(db, fleet)
        _, wb, _ = _timed(lambda: backfill(fleet, store, start=start, end=END, step_s=step_s, seed=7, truth=truth))
        store.close()
        store = SqliteHistorian(db, fleet)
        try:
            hs, w1, c1 = _timed(lambda: load_histories(store, fleet, start, END))
        finally:
            store.close()
        tl, w2, _ = _timed(lambda: build_timeline(hs, start.timestamp(), END.timestamp()))
        _, w3, _ = _timed(lambda: fit(tl, mtbf))
        print(f"from the store (backfilled in {wb:.0f} s, {db.stat().st_size / 1e6:.0f} MB): read {w1:.2f} s wall "
              f"({c1:.2f} CPU), timeline {w2:.2f} s, fit {w3:.2f} s: {w1 + w2 + w3:.2f} s wall in all")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=14.0)
    ap.add_argument("--step", type=float, default=60.0)
    ap.add_argument("--machines", type=int, default=500)
    ap.add_argument("--seeds", default="7,8,9,10,11")
    ap.add_argument("--store", action="store_true", help="also time reading the history from a SQLite store")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    config = load(ROOT / "examples" / "fleet.toml")
    fleet = config.fleet
    truth = load_truth(TRUTH, fleet)
    mtbf = {str(t.id): t.mtbf_h for t in fleet.templates}
    start = END - timedelta(days=args.days)
    hs, w, c = _timed(lambda: sample_histories(Plant(fleet, seed=7, start=start, truth=truth), END, args.step))
    print(f"emulated {args.days:g} days x {len(hs)} machines every {args.step:g} s: {w:.1f} s wall, {c:.1f} s CPU")
    tl, w1, c1 = _timed(lambda: build_timeline(hs, start.timestamp(), END.timestamp()))
    model, w2, c2 = _timed(lambda: fit(tl, mtbf))
    cox = [m for m in model.templates.values() if m.kind == "cox"]
    print(f"fit: timeline {w1:.2f} s wall ({c1:.2f} CPU), model {w2:.2f} s wall ({c2:.2f} CPU); "
          f"{len(cox)} Cox model(s): " + ", ".join(f"{m.template} ({m.failures} failures, {m.rows} rows)"
                                                    for m in cox))
    for m in model.templates.values():
        print(f"  {m.template}: {m.note}")

    if args.store:
        _store(fleet, truth, start, args.step, mtbf)

    # scoring at N machines: the 34 histories copied under new names
    copies = [dataclasses.replace(h, machine=f"{h.machine}-{k}")
              for k in range(args.machines // len(hs) + 1) for h in hs][:args.machines]
    recent = END - timedelta(hours=6)

    def cut(h: ConditionHistory) -> ConditionHistory:
        a = recent.timestamp()
        before = [s for s in h.status if s[0] <= a]
        status = ((a, before[-1][1]),) if before else ()
        return dataclasses.replace(h, status=status + tuple(s for s in h.status if s[0] > a), signals={
            n: (k, ts[ts >= a], v[ts >= a]) for n, (k, ts, v) in h.signals.items()})

    recent_tl, w3, _ = _timed(lambda: build_timeline([cut(h) for h in copies], recent.timestamp(),
                                                      END.timestamp() + 1.0))
    health, w4, c4 = _timed(lambda: machine_health(fleet, model, recent_tl))
    print(f"scoring per refresh at {len(health)} machines: risk + intervals + drivers {w4 * 1000:.0f} ms wall "
          f"({c4 * 1000:.0f} ms CPU); with the last 6 h of timelines rebuilt first {(w3 + w4) * 1000:.0f} ms wall "
          f"(target <= 1 s)")

    # accuracy across seeds (the health test's set-up)
    two = dataclasses.replace(fleet, sites=(fleet.site("pod-berlin"), fleet.site("pod-austin")))
    truth2 = load_truth(TRUTH, two)
    a0, split = END - timedelta(days=21), (END - timedelta(days=7)).timestamp()
    aucs, skills = [], []
    for seed in (int(s) for s in args.seeds.split(",") if s):
        t = build_timeline(sample_histories(Plant(two, seed=seed, start=a0, truth=truth2), END, 300.0),
                           a0.timestamp(), END.timestamp())
        mod = fit(t, mtbf, FitOptions(until=split))
        e = evaluate(t, mod, from_t=split)["fdm-printer"]
        aucs.append(e.auc)
        skills.append(e.brier_skill)
        print(f"seed {seed}: printers AUC {e.auc:.3f} (baseline {e.auc_baseline:.3f}), Brier skill "
              f"{e.brier_skill:.3f}, {e.failures} held-out failures, {e.warned} warned, median lead "
              f"{e.median_lead_h:.1f} h; fitted on {mod.templates['fdm-printer'].failures} failures")
    if aucs:
        print(f"AUC min {min(aucs):.3f} mean {statistics.fmean(aucs):.3f}; Brier skill min {min(skills):.3f}")


if __name__ == "__main__":
    main()
