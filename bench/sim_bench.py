"""Benchmark of the what-if engine: speed beside bare SimPy, and Monte Carlo wall times.

    .venv/bin/python bench/sim_bench.py [--replications 100] [--horizon-days 7]

1. **Engine speed beside bare SimPy, on the same models.** Three queueing models, each built once
   as the engine's plain data (``ModelData``: a Poisson source, stations in series, exponential
   service, FIFO, 24/7) and once as bare SimPy code, with the same rates and the same simulated
   time (50,000 s):

   - M/M/1 (lam 0.7, mu 1), M/M/2 (lam 1.5, mu 1 per server) and a two-station tandem
     (lam 0.5, mu 1 and 1.25: the Jackson network of the theory tests);
   - **bare, lean**: the fastest idiomatic SimPy we know: one source process, one process per
     server pulling from a ``deque``, an idle server waits on an ``Event`` that the arrival
     succeeds; it keeps no statistics beyond the count of customers served;
   - **bare, Resource**: SimPy's textbook style (its bank and car-wash examples): one process per
     customer, ``simpy.Resource`` request/release at each station;
   - **the engine**: ``twin.sim.model.simulate`` on the ``ModelData`` (model set-up, all its
     statistics and per-hour bins included).

   The measure is **customers completed per wall-clock second** (the same work, so the ratio is
   the engine's share of the bare loop's speed; target >= 70 % of the *lean* loop). SimPy events
   are counted the same way for all (``Environment.step`` wrapped, in a separate untimed run) and
   printed per customer: they differ by design (the engine needs 2 per customer per station, no
   process start-up or wake-up events), which is why events/s alone is not a fair yardstick.
   Timed runs alternate bare and engine and keep the best of 5.

   - **peer simulators** (the ``bench`` extra: ``pip install -e .[bench]``): the same models in
     `ciw <https://ciw.readthedocs.io>`_ (a network: exponential arrival and service
     distributions, servers per node, a routing matrix; customers counted from the records of
     the last node) and `salabim <https://www.salabim.org>`_ (its textbook style, as SimPy's
     Resource one: a component per customer requesting a ``Resource`` per station). They run
     on their own engines, so their events are not counted ("-"); customers/s is comparable.
     salabim builds a component per customer, which inspects the process method's signature
     each time (most of its cost), so it runs a tenth of the simulated time (the rate is the
     same) and ciw and salabim are timed best of 2.

   For the example site (one replication of 30 simulated days, ten seeds) there is no bare twin:
   the engine's events/s is printed beside a bare loop of exponential timeouts (processes doing
   nothing else, as many events), the ceiling of SimPy event throughput.
2. Wall time of a 100-replication, 7-day projection (fork + replications + bands) of one site and of
   the whole fleet on 1 and 2 worker processes (pool start-up included), and the time until the
   first partial bands arrive. Targets for one site: <= 5 s on 2 processes, first bands <= 1 s.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import simpy

from twin.sim.build import fork
from twin.sim.model import DemandData, MachineData, ModelData, ProductData, simulate
from twin.sim.montecarlo import run

ROOT = Path(__file__).resolve().parent.parent
AS_OF = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
QUEUE_HORIZON_S = 50_000.0
QUEUES = (  # name, arrival rate, service rate per station, servers per station
    ("M/M/1 (rho 0.7)", 0.7, (1.0,), (1,)),
    ("M/M/2 (rho 0.75)", 1.5, (1.0,), (2,)),
    ("tandem M/M/1 -> M/M/1", 0.5, (1.0, 1.25), (1, 1)),
)


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


def engine_queue(lam: float, mus: tuple[float, ...], servers: tuple[int, ...], horizon_s: float) -> ModelData:
    """The queueing network as the engine's plain data (as in the theory tests)."""
    roles = ("print", "pack", "inspect", "assemble")[: len(mus)]
    return ModelData(
        horizon_s=horizon_s, bin_s=3600.0, sites=("s",),
        machines=tuple(
            MachineData(id=f"{role}{i}", site="s", role=role, cycle_mean_s=1.0 / mu, cycle_cv=1.0)
            for role, mu, c in zip(roles, mus, servers, strict=True)
            for i in range(c)
        ),
        products=(ProductData(id="p", routing=roles, due_s=float("inf")),),
        demand=(DemandData(site="s", product="p", starts_s=(0.0,), rates_per_s=(lam,)),),
    )


def bare_lean(lam: float, mus: tuple[float, ...], servers: tuple[int, ...], horizon_s: float,
              env: simpy.Environment) -> int:
    """Bare SimPy, lean: a source, a process per server, deque queues, idle servers wait on an Event."""
    rng = random.Random(1)
    queues: list[deque[float]] = [deque() for _ in mus]
    idle: list[list[simpy.Event]] = [[] for _ in mus]
    served = [0]
    last = len(mus) - 1

    def arrive(k: int, job: float) -> None:
        if idle[k]:
            idle[k].pop().succeed(job)
        else:
            queues[k].append(job)

    def source() -> Any:
        while True:
            yield env.timeout(rng.expovariate(lam))
            arrive(0, env.now)

    def server(k: int, mu: float) -> Any:
        queue, waiting = queues[k], idle[k]
        while True:
            if queue:
                job = queue.popleft()
            else:
                ev = env.event()
                waiting.append(ev)
                job = yield ev
            yield env.timeout(rng.expovariate(mu))
            if k < last:
                arrive(k + 1, job)
            else:
                served[0] += 1

    env.process(source())
    for k, (mu, c) in enumerate(zip(mus, servers, strict=True)):
        for _ in range(c):
            env.process(server(k, mu))
    env.run(until=horizon_s)
    return served[0]


def bare_resource(lam: float, mus: tuple[float, ...], servers: tuple[int, ...], horizon_s: float,
                  env: simpy.Environment) -> int:
    """Bare SimPy, textbook: a process per customer, simpy.Resource request/release per station."""
    rng = random.Random(1)
    stations = [simpy.Resource(env, capacity=c) for c in servers]
    served = [0]

    def customer() -> Any:
        for res, mu in zip(stations, mus, strict=True):
            with res.request() as req:
                yield req
                yield env.timeout(rng.expovariate(mu))
        served[0] += 1

    def source() -> Any:
        while True:
            yield env.timeout(rng.expovariate(lam))
            env.process(customer())

    env.process(source())
    env.run(until=horizon_s)
    return served[0]


def ciw_queue(lam: float, mus: tuple[float, ...], servers: tuple[int, ...], horizon_s: float) -> int:
    """The network in ciw: customers that finished service at the last node by the horizon."""
    import ciw

    k = len(mus)
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=lam)] + [None] * (k - 1),
        service_distributions=[ciw.dists.Exponential(rate=mu) for mu in mus],
        number_of_servers=list(servers),
        routing=[[1.0 if j == i + 1 else 0.0 for j in range(k)] for i in range(k)],
    )
    ciw.seed(1)
    q = ciw.Simulation(network)
    q.simulate_until_max_time(horizon_s)
    return sum(1 for r in q.get_all_records() if r.node == k and r.record_type == "service")


def salabim_queue(lam: float, mus: tuple[float, ...], servers: tuple[int, ...], horizon_s: float) -> int:
    """The network in salabim, textbook style: a component per customer, a Resource per station."""
    import salabim as sim

    sim.yieldless(False)  # generator processes, as in SimPy
    env = sim.Environment(trace=False, random_seed=1)
    stations = [sim.Resource(capacity=c, env=env) for c in servers]
    service = [sim.Exponential(1.0 / mu, env=env) for mu in mus]  # salabim's Exponential takes the mean
    interarrival = sim.Exponential(1.0 / lam, env=env)
    served = [0]

    class Customer(sim.Component):  # type: ignore[misc]
        def process(self) -> Any:
            for res, dist in zip(stations, service, strict=True):
                yield self.request(res)
                yield self.hold(dist.sample())
                self.release(res)
            served[0] += 1

    class Source(sim.Component):  # type: ignore[misc]
        def process(self) -> Any:
            while True:
                Customer(env=env)
                yield self.hold(interarrival.sample())

    Source(env=env)
    env.run(till=horizon_s)
    return served[0]


PEERS: dict[str, tuple[Callable[[float, tuple[float, ...], tuple[int, ...], float], int], float]] = {
    "ciw": (ciw_queue, 1.0),  # (run, share of the simulated time)
    "salabim": (salabim_queue, 0.1),
}


def _best_rates(runs: dict[str, Callable[[], int]], repeat: int = 5) -> dict[str, float]:
    """Customers per wall second of each run, best of ``repeat``, the runs alternated."""
    best = dict.fromkeys(runs, 0.0)
    for _ in range(repeat):
        for name, fn in runs.items():
            t = time.perf_counter()
            n = fn()
            best[name] = max(best[name], n / (time.perf_counter() - t))
    return best


def _counted(fn: Callable[[simpy.Environment], int]) -> tuple[int, int]:
    env = CountingEnvironment()
    return fn(env), env.events_processed


def engine_speed(site_data: ModelData) -> None:
    h = QUEUE_HORIZON_S
    print(f"\n## Engine speed beside bare SimPy (same model, {h:,.0f} simulated s; customers/s, best of 5)")
    print(f"{'model':<24}{'implementation':<18}{'customers':>10}{'events/cust':>12}{'events/s':>11}"
          f"{'customers/s':>13}{'vs lean':>9}")
    for name, lam, mus, servers in QUEUES:
        data = engine_queue(lam, mus, servers, h)

        def eng(env: simpy.Environment, data: ModelData = data) -> int:
            return simulate(data, seed=1, environment=lambda: env).orders_done["s"]

        impls: dict[str, Callable[[simpy.Environment], int]] = {
            "bare, lean": lambda env, lam=lam, mus=mus, servers=servers: bare_lean(lam, mus, servers, h, env),
            "bare, Resource": lambda env, lam=lam, mus=mus, servers=servers: bare_resource(
                lam, mus, servers, h, env),
            "twin.sim engine": eng,
        }
        counts = {k: _counted(fn) for k, fn in impls.items()}
        rates = _best_rates({k: (lambda fn=fn: fn(simpy.Environment())) for k, fn in impls.items()})
        lean = rates["bare, lean"]
        for impl, (customers, events) in counts.items():
            per = events / max(1, customers)
            print(f"{name:<24}{impl:<18}{customers:>10,}{per:>12.2f}{rates[impl] * per:>11,.0f}"
                  f"{rates[impl]:>13,.0f}{rates[impl] / lean:>9.0%}")
        for peer, (fn, share) in PEERS.items():
            def peer_run(fn: Callable[..., int] = fn, lam: float = lam, mus: tuple[float, ...] = mus,
                         servers: tuple[int, ...] = servers, share: float = share) -> int:
                return fn(lam, mus, servers, h * share)

            try:
                customers = peer_run()
                peer_rate = _best_rates({peer: peer_run}, repeat=2)[peer]
            except ImportError:
                print(f"{name:<24}{peer:<18}{'not installed (pip install -e .[bench])':>40}")
                continue
            print(f"{name:<24}{peer:<18}{customers:>10,}{'-':>12}{'-':>11}{peer_rate:>13,.0f}{peer_rate / lean:>9.0%}")
    # the example site: no bare twin; events/s beside a bare loop of timeouts with as many events
    counting = CountingEnvironment()
    out = simulate(site_data, seed=1, environment=lambda: counting)
    n_engine, orders = counting.events_processed, sum(out.orders_done.values())
    n_procs = len(site_data.machines) + len(site_data.demand) + 1
    mean_s = site_data.horizon_s * n_procs / max(1, n_engine)
    env_c = CountingEnvironment()
    bare_loop(n_procs, site_data.horizon_s, mean_s, env_c)
    n_bare = env_c.events_processed
    t_engine = t_bare = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for seed in range(10):
            simulate(site_data, seed=seed)
        t_engine = min(t_engine, (time.perf_counter() - t) / 10)
        t = time.perf_counter()
        for _ in range(10):
            bare_loop(n_procs, site_data.horizon_s, mean_s, simpy.Environment())
        t_bare = min(t_bare, (time.perf_counter() - t) / 10)
    days = site_data.horizon_s / 86400.0
    print(f"\nexample site, {days:g} simulated days: engine {n_engine:,} events, {orders:,} orders, "
          f"{t_engine * 1000:.1f} ms per replication -> {n_engine / t_engine:,.0f} events/s; "
          f"bare timeouts-only loop {n_bare / t_bare:,.0f} events/s "
          f"({n_engine / t_engine / (n_bare / t_bare):.0%})")


def projection_time(fleet: Any, sites: list[str] | None, replications: int, horizon_s: float,
                    workers: int) -> tuple[float, float, int]:
    from twin.live import initial_state

    t0 = time.perf_counter()
    first: list[float] = []
    f = fork(fleet, initial_state(fleet, AS_OF), horizon_s=horizon_s, sites=sites)

    def partial(res: Any) -> None:
        if not first:
            res.projection()  # the first bands, as the dashboard would draw them
            first.append(time.perf_counter() - t0)

    with ProcessPoolExecutor(max_workers=workers) as pool:
        res = run(f.data, replications=replications, seed=1, executor=pool, workers=workers,
                  on_partial=partial)
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
    engine_speed(data)
    print(f"\n## Monte Carlo: {args.replications} replications x {args.horizon_days:g} days "
          "(fork + runs + bands)")
    print(f"{'model':<28}{'processes':>10}{'wall s':>9}{'first bands s':>15}")
    horizon = args.horizon_days * 86400.0
    cases = ((f"one site ({args.site})", [args.site]), (f"fleet ({len(fleet.sites)} sites)", None))
    for label, sites in cases:
        for workers in (1, 2):
            wall, first, _ = projection_time(fleet, sites, args.replications, horizon, workers)
            print(f"{label:<28}{workers:>10}{wall:>9.2f}{first:>15.2f}")


if __name__ == "__main__":
    main()
