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

**Second order** (``uncertainty`` given and ``second_order`` True, the way the CLI and the dashboard
call it): before each replication the calibrated figures are drawn from their sampling
distribution (``twin.sim.uncertainty.perturb``, seeded by the replication, the same draw for the
baseline and the scenario of a pair), so the bands also hold the uncertainty of the figures.
Without ``uncertainty`` (the sample sizes are not known) every replication uses the model data as
given (first order). :func:`parameter_share` says how much of a KPI's spread is parameter
uncertainty, from a first-order companion run with the same seeds.

Per-bin replication samples (for PIT and CRPS) are the stored replication outputs
(:meth:`MonteCarloResult.samples`); their memory is bounded by ``limits`` (replications x bins).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from twin.errors import SimulationError
from twin.limits import DEFAULT_LIMITS, Limits, check_horizon, check_replications
from twin.sim.model import ModelData, ReplicationOutput, simulate
from twin.sim.projection import FLEET, Comparison, Projection, band_samples, compare, project, replication_kpis
from twin.sim.stats import mean_ci
from twin.sim.uncertainty import Perturber, Uncertainty

__all__ = ["MonteCarloResult", "StopRule", "chunks", "companion_replications", "parameter_share", "run",
           "run_chunk", "stream"]

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
    second_order: bool = False

    def samples(self, metric: str, key: str = FLEET, *, scenario: bool = False) -> np.ndarray:
        """Per-bin values of one band over the replications (replications x bins, replication order)."""
        outputs = self.scenario if scenario else self.baseline
        if outputs is None:
            raise SimulationError("no scenario was simulated")
        return band_samples(outputs, metric, key)

    def projection(self) -> Projection:
        return project(self.baseline, self.as_of)

    def comparison(self) -> Comparison:
        if self.scenario is None:
            raise SimulationError("no scenario was simulated")
        return compare(self.baseline, self.scenario, self.as_of)


def run_chunk(
    baseline: ModelData, scenario: ModelData | None, seed: int, first: int, count: int,
    uncertainty: Uncertainty | None = None,
) -> list[Pair]:
    """Replications ``first .. first+count-1`` of both models (a top-level function: picklable).

    With ``uncertainty`` each replication first draws its figures (the same draw for both models).
    """
    out: list[Pair] = []
    draw_b = Perturber(baseline, uncertainty) if uncertainty is not None else None
    draw_s = Perturber(scenario, uncertainty) if uncertainty is not None and scenario is not None else None
    for rep in range(first, first + count):
        b = simulate(draw_b(seed, rep) if draw_b is not None else baseline, seed, rep)
        s = None
        if scenario is not None:
            s = simulate(draw_s(seed, rep) if draw_s is not None else scenario, seed, rep)
        out.append((b, s))
    return out


def companion_replications(replications: int) -> int:
    """Replications of the first-order companion run that measures the parameter share (a quarter, >= 10)."""
    return min(replications, max(10, replications // 4))


def parameter_share(
    second: Sequence[ReplicationOutput], first: Sequence[ReplicationOutput], kpi: str = "units_done",
    site: str = FLEET,
) -> float:
    """Share of a KPI's variance due to parameter uncertainty: 1 - var(first order) / var(second order).

    By the law of total variance, Var(Y) = E[Var(Y | figures)] + Var(E[Y | figures]); a
    first-order run estimates the first term at the point estimates, so the ratio estimates the
    second term's share (clipped to [0, 1]; NaN with fewer than 2 replications or no spread).
    """
    def var(outputs: Sequence[ReplicationOutput]) -> float:
        xs = [replication_kpis(o)[(kpi, site)] for o in outputs]
        xs = [x for x in xs if not math.isnan(x)]
        if len(xs) < 2:
            return math.nan
        m = math.fsum(xs) / len(xs)
        return math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1)

    v2, v1 = var(second), var(first)
    if math.isnan(v1) or math.isnan(v2) or v2 <= 0.0:
        return math.nan
    return min(1.0, max(0.0, 1.0 - v1 / v2))


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
    uncertainty: Uncertainty | None = None,
    second_order: bool = True,
) -> Iterator[tuple[int, list[Pair], bool]]:
    """Yield ``(done, pairs in replication order so far, final)`` as chunks complete.

    ``pairs`` is the longest complete prefix of replications; the last item has ``final`` True.
    A request over ``limits`` (replications, horizon: see ``twin.limits``) raises ``SimulationError``
    at once, before any work starts. Second order when ``uncertainty`` is given and ``second_order``.
    """
    check_replications(replications, limits)
    check_horizon(baseline.horizon_s, limits)
    if scenario is not None:
        check_horizon(scenario.horizon_s, limits)
    u = uncertainty if second_order else None
    return _stream(baseline, scenario, replications, seed, executor, workers, stop, u)


def _stream(
    baseline: ModelData,
    scenario: ModelData | None,
    replications: int,
    seed: int,
    executor: Executor | None,
    workers: int,
    stop: StopRule | None,
    uncertainty: Uncertainty | None,
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
            results[idx] = run_chunk(baseline, scenario, seed, first, count, uncertainty)
            absorb()
            if should_stop():
                yield len(prefix), list(prefix), True
                return
            yield len(prefix), list(prefix), len(prefix) == replications
        return
    futures: dict[Future[list[Pair]], int] = {
        executor.submit(run_chunk, baseline, scenario, seed, first, count, uncertainty): idx
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
    uncertainty: Uncertainty | None = None,
    second_order: bool = True,
) -> MonteCarloResult:
    """Run the replications and return them; callbacks see progress and partial results.

    ``limits`` bounds the request (``twin.limits``: at most 1000 replications and 90 days by default).
    With ``uncertainty`` (e.g. ``Calibration.uncertainty``) and ``second_order`` each replication
    draws its figures first (second order); ``second_order=False`` uses the point estimates.

    >>> from twin.sim.model import MachineData, ModelData, ProductData
    >>> m = ModelData(horizon_s=3600.0, sites=("s",), products=(ProductData(id="p", routing=("pack",)),),
    ...               machines=(MachineData(id="m", site="s", role="pack", cycle_mean_s=60.0),))
    >>> run(m, replications=3, seed=1).replications
    3
    """
    pairs: list[Pair] = []
    stopped = False
    second = second_order and uncertainty is not None
    for done, pairs, final in stream(
        baseline, scenario, replications=replications, seed=seed, executor=executor, workers=workers,
        stop=stop, limits=limits, uncertainty=uncertainty, second_order=second_order,
    ):
        stopped = final and done < replications
        if on_progress is not None:
            on_progress(done, replications)
        if on_partial is not None and not final:
            on_partial(_result(pairs, replications, False, scenario is not None, as_of, second))
    if stopped:
        log.info("sequential stopping after %d of %d replications", len(pairs), replications)
    return _result(pairs, replications, stopped, scenario is not None, as_of, second)


def _result(
    pairs: Sequence[Pair], requested: int, stopped: bool, paired: bool, as_of: datetime | None,
    second_order: bool = False,
) -> MonteCarloResult:
    return MonteCarloResult(
        replications=len(pairs),
        requested=requested,
        stopped_early=stopped,
        baseline=tuple(b for b, _ in pairs),
        scenario=tuple(s for _, s in pairs if s is not None) if paired else None,
        as_of=as_of,
        second_order=second_order,
    )
