"""Monte Carlo: seeded replications of a baseline (and a scenario, paired) on any executor.

Replication ``i`` of the baseline and of the scenario use the same random streams (common random
numbers, see ``twin.sim.model.stream_seed``), so their difference measures the intervention and
not the luck of the draw. Work is cut into chunks submitted to any
``concurrent.futures.Executor`` (a process pool, ``distributed.Client(...).get_executor()``) or run
in-process when the executor is None; results are always assembled in replication order, so the
numbers do not depend on where or in which order chunks ran.

The first chunks are small so that partial results stream early (``on_partial``); optional
sequential stopping ends the run once the 95 % interval of a chosen KPI (the paired delta when a
scenario is given) is narrower than a target, checked on complete prefixes of replications only,
which keeps the stopping point deterministic.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass
from datetime import datetime

from twin.errors import SimulationError
from twin.limits import DEFAULT_LIMITS, Limits, check_horizon, check_replications
from twin.sim.model import ModelData, ReplicationOutput, simulate
from twin.sim.projection import FLEET, Comparison, Projection, compare, project, replication_kpis
from twin.sim.stats import mean_ci

__all__ = ["MonteCarloResult", "StopRule", "chunks", "run", "run_chunk", "stream"]

log = logging.getLogger(__name__)

Pair = tuple[ReplicationOutput, ReplicationOutput | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class StopRule:
    """Stop once the 95 % half-width of ``kpi`` at ``site`` is at most ``half_width``."""

    kpi: str = "on_time_rate"
    site: str = FLEET
    half_width: float = 0.01
    min_replications: int = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class MonteCarloResult:
    """Replications run (in order) and their projection or comparison."""

    replications: int
    requested: int
    stopped_early: bool
    baseline: tuple[ReplicationOutput, ...]
    scenario: tuple[ReplicationOutput, ...] | None
    as_of: datetime | None = None

    def projection(self) -> Projection:
        return project(self.baseline, self.as_of)

    def comparison(self) -> Comparison:
        if self.scenario is None:
            raise SimulationError("no scenario was simulated")
        return compare(self.baseline, self.scenario, self.as_of)


def run_chunk(baseline: ModelData, scenario: ModelData | None, seed: int, first: int, count: int) -> list[Pair]:
    """Replications ``first .. first+count-1`` of both models (a top-level function: picklable)."""
    out: list[Pair] = []
    for rep in range(first, first + count):
        b = simulate(baseline, seed, rep)
        s = simulate(scenario, seed, rep) if scenario is not None else None
        out.append((b, s))
    return out


def chunks(replications: int, workers: int = 2) -> list[tuple[int, int]]:
    """(first, count) chunks: two of one replication first (early partial results), then ~8 per worker."""
    plan: list[tuple[int, int]] = []
    first = 0
    size_rest = max(1, math.ceil(replications / (8 * max(1, workers))))
    while first < replications:
        size = 1 if len(plan) < max(2, workers) else size_rest
        size = min(size, replications - first)
        plan.append((first, size))
        first += size
    return plan


def _half_width(pairs: Sequence[Pair], rule: StopRule) -> float:
    values = []
    for b, s in pairs:
        kb = replication_kpis(b)[(rule.kpi, rule.site)]
        values.append(replication_kpis(s)[(rule.kpi, rule.site)] - kb if s is not None else kb)
    e = mean_ci(values)
    return e.half_width if e.n >= 2 else math.inf


def stream(
    baseline: ModelData,
    scenario: ModelData | None = None,
    *,
    replications: int,
    seed: int,
    executor: Executor | None = None,
    workers: int = 2,
    stop: StopRule | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Iterator[tuple[int, list[Pair], bool]]:
    """Yield ``(done, pairs in replication order so far, final)`` as chunks complete.

    ``pairs`` is the longest complete prefix of replications; the last item has ``final`` True.
    A request over ``limits`` (replications, horizon: see ``twin.limits``) raises ``SimulationError``
    at once, before any work starts.
    """
    check_replications(replications, limits)
    check_horizon(baseline.horizon_s, limits)
    if scenario is not None:
        check_horizon(scenario.horizon_s, limits)
    return _stream(baseline, scenario, replications, seed, executor, workers, stop)


def _stream(
    baseline: ModelData,
    scenario: ModelData | None,
    replications: int,
    seed: int,
    executor: Executor | None,
    workers: int,
    stop: StopRule | None,
) -> Iterator[tuple[int, list[Pair], bool]]:
    plan = chunks(replications, workers)
    results: dict[int, list[Pair]] = {}
    prefix: list[Pair] = []
    next_chunk = 0

    def absorb() -> bool:
        nonlocal next_chunk
        grown = False
        while next_chunk < len(plan) and next_chunk in results:
            prefix.extend(results.pop(next_chunk))
            next_chunk += 1
            grown = True
        return grown

    def should_stop() -> bool:
        return (
            stop is not None
            and len(prefix) >= stop.min_replications
            and len(prefix) < replications
            and _half_width(prefix, stop) <= stop.half_width
        )

    if executor is None:
        for idx, (first, count) in enumerate(plan):
            results[idx] = run_chunk(baseline, scenario, seed, first, count)
            absorb()
            if should_stop():
                yield len(prefix), list(prefix), True
                return
            yield len(prefix), list(prefix), len(prefix) == replications
        return
    futures: dict[Future[list[Pair]], int] = {
        executor.submit(run_chunk, baseline, scenario, seed, first, count): idx
        for idx, (first, count) in enumerate(plan)
    }
    pending = set(futures)
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    results[futures[fut]] = fut.result()
                except Exception as exc:
                    raise SimulationError(f"a replication chunk failed: {exc}") from exc
            if absorb():
                if should_stop():
                    yield len(prefix), list(prefix), True
                    return
                yield len(prefix), list(prefix), len(prefix) == replications
    finally:
        for fut in pending:
            fut.cancel()


def run(
    baseline: ModelData,
    scenario: ModelData | None = None,
    *,
    replications: int,
    seed: int,
    executor: Executor | None = None,
    workers: int = 2,
    stop: StopRule | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_partial: Callable[[MonteCarloResult], None] | None = None,
    as_of: datetime | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> MonteCarloResult:
    """Run the replications and return them; callbacks see progress and partial results.

    ``limits`` bounds the request (``twin.limits``: at most 1000 replications and 90 days by default).

    >>> from twin.sim.model import MachineData, ModelData, ProductData
    >>> m = ModelData(horizon_s=3600.0, sites=("s",), products=(ProductData(id="p", routing=("pack",)),),
    ...               machines=(MachineData(id="m", site="s", role="pack", cycle_mean_s=60.0),))
    >>> run(m, replications=3, seed=1).replications
    3
    """
    pairs: list[Pair] = []
    stopped = False
    for done, pairs, final in stream(
        baseline, scenario, replications=replications, seed=seed, executor=executor, workers=workers,
        stop=stop, limits=limits,
    ):
        stopped = final and done < replications
        if on_progress is not None:
            on_progress(done, replications)
        if on_partial is not None and not final:
            on_partial(_result(pairs, replications, False, scenario is not None, as_of))
    if stopped:
        log.info("sequential stopping after %d of %d replications", len(pairs), replications)
    return _result(pairs, replications, stopped, scenario is not None, as_of)


def _result(
    pairs: Sequence[Pair], requested: int, stopped: bool, paired: bool, as_of: datetime | None
) -> MonteCarloResult:
    return MonteCarloResult(
        replications=len(pairs),
        requested=requested,
        stopped_early=stopped,
        baseline=tuple(b for b, _ in pairs),
        scenario=tuple(s for _, s in pairs if s is not None) if paired else None,
        as_of=as_of,
    )
