"""Benchmark of the what-if engine: events/s beside bare SimPy, and Monte Carlo wall times.

    .venv/bin/python bench/sim_bench.py [--replications 100] [--horizon-days 7]

1. Events per second of one replication of an example site (30 simulated days) beside a bare
   SimPy loop run in the same process just before (the same number of processes doing nothing but
   exponential timeouts), and an idiomatic SimPy M/M/1 (Resource + a process per customer).
   Events are counted by an Environment subclass in a separate counting run, then both models are
   timed on a plain Environment. Target: engine >= 70 % of the bare loop.
2. Wall time of a 100-replication, 7-day projection (fork + replications + bands) of one site and of
   the whole fleet on 1 and 2 worker processes (pool start-up included), and the time until the
   first partial bands arrive. Targets for one site: <= 5 s on 2 processes, first bands <= 1 s.
"""

from __future__ import annotations

import argparse
import random
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import simpy

from twin.sim.build import fork
from twin.sim.model import ModelData, simulate
from twin.sim.montecarlo import run

ROOT = Path(__file__).resolve().parent.parent
AS_OF = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


class CountingEnvironment(simpy.Environment):
    def __init__(self) -> None:
        super().__init__()
        self.events_processed = 0

    def step(self) -> None:
        self.events_processed += 1
        super().step()


def load_fleet() -> Any:
    from connectors.config import load

    return load(ROOT / "examples" / "fleet.toml").fleet


def bare_loop(n_procs: int, horizon_s: float, mean_s: float, env: simpy.Environment) -> None:
    def proc(rng: random.Random) -> Any:
        while True:
            yield env.timeout(rng.expovariate(1.0 / mean_s))

    for i in range(n_procs):
        env.process(proc(random.Random(i)))
    env.run(until=horizon_s)


def engine_mm1(horizon_s: float) -> ModelData:
    from twin.sim.model import DemandData, MachineData, ProductData

    return ModelData(
        horizon_s=horizon_s, bin_s=horizon_s, sites=("s",),
        machines=(MachineData(id="m", site="s", role="pack", cycle_mean_s=1.0, cycle_cv=1.0),),
        products=(ProductData(id="p", routing=("pack",), due_s=float("inf")),),
        demand=(DemandData(site="s", product="p", starts_s=(0.0,), rates_per_s=(0.7,)),),
    )


def simpy_mm1(horizon_s: float, env: simpy.Environment) -> None:
    server = simpy.Resource(env, capacity=1)
    rng = random.Random(1)

    def customer() -> Any:
        with server.request() as req:
            yield req
            yield env.timeout(rng.expovariate(1.0))

    def source() -> Any:
        while True:
            yield env.timeout(rng.expovariate(0.7))
            env.process(customer())

    env.process(source())
    env.run(until=horizon_s)


def timed(fn: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def events_per_second(data: ModelData) -> None:
    counting = CountingEnvironment()
    simulate(data, seed=1, environment=lambda: counting)
    n_engine = counting.events_processed
    t_engine = timed(lambda: simulate(data, seed=1))
    # a bare loop with as many processes, tuned to process the same number of events
    n_procs = len(data.machines) + len(data.demand) + 1
    mean_s = data.horizon_s * n_procs / max(1, n_engine)
    env_c = CountingEnvironment()
    bare_loop(n_procs, data.horizon_s, mean_s, env_c)
    n_bare = env_c.events_processed
    t_bare = timed(lambda: bare_loop(n_procs, data.horizon_s, mean_s, simpy.Environment()))
    env_m = CountingEnvironment()
    simpy_mm1(200_000.0, env_m)
    t_mm1 = timed(lambda: simpy_mm1(200_000.0, simpy.Environment()))
    e_rate, b_rate, m_rate = n_engine / t_engine, n_bare / t_bare, env_m.events_processed / t_mm1
    mm1 = engine_mm1(200_000.0)
    env_e = CountingEnvironment()
    out = simulate(mm1, seed=1, environment=lambda: env_e)
    t_emm1 = timed(lambda: simulate(mm1, seed=1))
    em_rate = env_e.events_processed / t_emm1
    customers = out.orders_done["s"]
    print("\n## Engine speed (one replication, 30 simulated days)")
    print(f"{'model':<44}{'events':>10}{'wall s':>9}{'events/s':>12}{'vs bare':>9}")
    print(f"{'bare SimPy loop (timeouts only)':<44}{n_bare:>10}{t_bare:>9.3f}{b_rate:>12,.0f}{1:>9.0%}")
    print(f"{'idiomatic SimPy M/M/1 (Resource)':<44}{env_m.events_processed:>10}{t_mm1:>9.3f}{m_rate:>12,.0f}"
          f"{m_rate / b_rate:>9.0%}")
    print(f"{'twin.sim engine, M/M/1 rho 0.7':<44}{env_e.events_processed:>10}{t_emm1:>9.3f}{em_rate:>12,.0f}"
          f"{em_rate / b_rate:>9.0%}")
    print(f"{'twin.sim engine (example site)':<44}{n_engine:>10}{t_engine:>9.3f}{e_rate:>12,.0f}"
          f"{e_rate / b_rate:>9.0%}")
    print(f"same M/M/1 work (200,000 s, ~{customers:,} customers): engine {customers / t_emm1:,.0f} customers/s, "
          f"idiomatic SimPy {customers / t_mm1:,.0f} customers/s ({t_mm1 / t_emm1:.0%})")


def projection_time(fleet: Any, sites: list[str] | None, replications: int, horizon_s: float, workers: int) -> tuple[
        float, float, int]:
    from twin.live import initial_state

    t0 = time.perf_counter()
    first: list[float] = []
    f = fork(fleet, initial_state(fleet, AS_OF), horizon_s=horizon_s, sites=sites)

    def partial(res: Any) -> None:
        if not first:
            res.projection()  # the first bands, as the dashboard would draw them
            first.append(time.perf_counter() - t0)

    with ProcessPoolExecutor(max_workers=workers) as pool:
        res = run(f.data, replications=replications, seed=1, executor=pool, workers=workers, on_partial=partial)
    res.projection()
    return time.perf_counter() - t0, first[0] if first else float("nan"), res.replications


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replications", type=int, default=100)
    ap.add_argument("--horizon-days", type=float, default=7.0)
    ap.add_argument("--site", default="pod-berlin")
    args = ap.parse_args()
    fleet = load_fleet()
    from twin.live import initial_state

    data = fork(fleet, initial_state(fleet, AS_OF), horizon_s=30 * 86400.0, sites=[args.site]).data
    events_per_second(data)
    print(f"\n## Monte Carlo: {args.replications} replications x {args.horizon_days:g} days (fork + runs + bands)")
    print(f"{'model':<28}{'processes':>10}{'wall s':>9}{'first bands s':>15}")
    horizon = args.horizon_days * 86400.0
    for label, sites in ((f"one site ({args.site})", [args.site]), (f"fleet ({len(fleet.sites)} sites)", None)):
        for workers in (1, 2):
            wall, first, _ = projection_time(fleet, sites, args.replications, horizon, workers)
            print(f"{label:<28}{workers:>10}{wall:>9.2f}{first:>15.2f}")


if __name__ == "__main__":
    main()
