"""The what-if orchestration: inputs from history, calibrate, fork, paired Monte Carlo.

One job: the steps every what-if takes, in one place for ``twin whatif`` (``app.whatif``), the
dashboard's what-if runner (``dashboard.whatif_engine``) and the rolling backtest
(``twin.sim.rolling``):

1. :func:`prepare` reads the sites' recorded state at the fork time ``at`` from a historian (none:
   nothing is recorded) and calibrates the figures from the ``calibrate_days`` before it
   (``twin.calibrate``); with ``health_days`` it also fits the failure-risk model on that much
   history (``twin.health``) and gives each machine of a template with a condition model its
   condition hazard from its wear at ``at`` (``twin.sim.condition``); :class:`Inputs` holds them
   and makes the snapshot to fork from;
2. :func:`run_whatif` forks the baseline and the scenario (``twin.sim.build.fork``), runs their
   paired Monte Carlo replications (``twin.sim.montecarlo.run``; second order by default: each
   replication draws the calibrated figures, configured ones get their prior widths) and, when
   asked, the short first-order companion run of the baseline that says how much of the spread is
   parameter uncertainty (:func:`parameter_shares`).

What each KPI is (label, unit, scale, which way is better) is ``twin.sim.kpis``. Nothing here
writes; the historian is the caller's to open and close.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from twin.calibrate import Calibration, calibrate
from twin.frozen import FrozenDict
from twin.historian import HistorianReader
from twin.live import initial_site_state, initial_state
from twin.sim.build import Fork, fork
from twin.sim.condition import condition_hazards
from twin.sim.kpis import SHARE_KPIS
from twin.sim.model import Hazard
from twin.sim.montecarlo import MonteCarloResult, StopRule, companion_replications, parameter_share
from twin.sim.montecarlo import run as monte_carlo
from twin.sim.params import SimParams
from twin.sim.scenario import Scenario
from twin.sim.uncertainty import Uncertainty
from twin.spec import FleetSpec
from twin.state import SiteState, TwinState

__all__ = ["Inputs", "RunSettings", "WhatIfRun", "parameter_shares", "prepare", "run_whatif"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (replications done, replications planned)


@dataclass(frozen=True, slots=True, kw_only=True)
class Inputs:
    """What a what-if starts from: the sites asked for, their recorded state at ``at``, the calibration."""

    fleet: FleetSpec
    at: datetime
    sites: tuple[str, ...]
    recorded: FrozenDict[str, SiteState] = field(default_factory=FrozenDict)  # state_at(site, at), when recorded
    calibration: Calibration | None = None  # None: the configured figures
    hazards: FrozenDict[str, Hazard] = field(default_factory=FrozenDict)  # "site/machine" -> condition hazard
    health_notes: tuple[str, ...] = ()  # per template, the health model's note (what it is fitted from, or why not)

    @property
    def params(self) -> SimParams | None:
        return self.calibration.params if self.calibration is not None else None

    @property
    def uncertainty(self) -> Uncertainty:
        """The figures' sampling laws: the calibration's, or prior widths on every figure without one."""
        return self.calibration.uncertainty if self.calibration is not None else Uncertainty()

    @property
    def unrecorded(self) -> tuple[str, ...]:
        """The sites asked for that have no recorded state at ``at``."""
        return tuple(s for s in self.sites if s not in self.recorded)

    def snapshot(self) -> TwinState:
        """Every site asked for at ``at``: its recorded state, else its configured initial state."""
        states = {s: self.recorded[s] if s in self.recorded else initial_site_state(self.fleet.site(s), self.at)
                  for s in self.sites}
        return TwinState(fleet=self.fleet.id, as_of=self.at, sites=FrozenDict(states))

    def recorded_snapshot(self) -> TwinState | None:
        """The recorded sites only at ``at``; None when nothing is recorded (then see :meth:`initial`)."""
        if not self.recorded:
            return None
        return TwinState(fleet=self.fleet.id, as_of=self.at, sites=FrozenDict(dict(self.recorded)))

    def initial(self) -> TwinState:
        """The whole fleet's configured initial state at ``at`` (a fork with no history)."""
        return initial_state(self.fleet, self.at)


def prepare(fleet: FleetSpec, historian: HistorianReader | None, at: datetime, sites: Sequence[str] | None = None,
            calibrate_days: float = 0.0, health_days: float = 0.0) -> Inputs:
    """The recorded states of ``sites`` (default: every site) at ``at`` and the calibration before it.

    ``historian`` None: nothing recorded, configured figures. ``calibrate_days`` 0: no calibration.
    ``health_days`` 0: no condition hazards (every machine fails at its constant MTBF rate).
    Only history up to ``at`` is read, so a fork in the past sees nothing after it.
    """
    wanted = tuple(sites) if sites else tuple(str(s.id) for s in fleet.sites)
    if historian is None:
        return Inputs(fleet=fleet, at=at, sites=wanted)
    recorded: dict[str, SiteState] = {}
    for sid in wanted:
        st = historian.state_at(sid, at)
        if st is not None:
            recorded[sid] = st
    calibration = None
    if calibrate_days > 0:
        calibration = calibrate(fleet, historian, at - timedelta(days=calibrate_days), at, sites=list(wanted))
    hazards: dict[str, Hazard] = {}
    notes: tuple[str, ...] = ()
    if health_days > 0:
        hazards, notes = _health(fleet, historian, at, wanted, health_days)
    return Inputs(fleet=fleet, at=at, sites=wanted, recorded=FrozenDict(recorded), calibration=calibration,
                  hazards=FrozenDict(hazards), health_notes=notes)


def _health(fleet: FleetSpec, historian: HistorianReader, at: datetime, sites: Sequence[str],
            days: float) -> tuple[dict[str, Hazard], tuple[str, ...]]:
    """The condition hazards of the machines of ``sites`` at ``at`` from the ``days`` of history before it."""
    from twin.health.history import load_histories  # here: lifelines is imported only when asked for
    from twin.health.model import fit
    from twin.health.timeline import build_timeline

    step = 1800.0
    t0 = at - timedelta(seconds=-(-days * 86400.0 // step) * step)  # whole grid steps: the grid ends at ``at``
    histories = load_histories(historian, fleet, t0, at, sites=list(sites))
    if not histories:
        return {}, ()
    timeline = build_timeline(histories, t0.timestamp(), at.timestamp() + 1.0, step_s=step)
    model = fit(timeline, {str(t.id): t.mtbf_h for t in fleet.templates})
    notes = tuple(f"{t}: {m.note}" for t, m in sorted(model.templates.items()))
    return condition_hazards(model, timeline), notes


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSettings:
    """How a what-if runs: horizon and band resolution (s), replications, seed and order.

    ``workers`` is how many chunks the executor runs at a time (at least 1); ``stop`` ends the
    replications early once the delta is precise enough; ``shares`` adds the first-order companion
    run of the baseline (second order only) that measures the parameter-uncertainty share.
    """

    horizon_s: float
    bin_s: float
    replications: int
    seed: int = 1
    workers: int = 1
    second_order: bool = True
    stop: StopRule | None = None
    shares: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class WhatIfRun:
    """The two forks, their paired replications, and the parameter-uncertainty share per fleet KPI."""

    baseline: Fork
    scenario: Fork
    result: MonteCarloResult
    shares: FrozenDict[str, float] = field(default_factory=FrozenDict)  # empty: not measured


def run_whatif(inputs: Inputs, state: TwinState, scenario: Scenario, settings: RunSettings, *,
               sites: Sequence[str] | None = None, executor: Executor | None = None,
               on_progress: Progress | None = None,
               on_partial: Callable[[MonteCarloResult], None] | None = None) -> WhatIfRun:
    """Fork baseline and scenario from ``state`` with the inputs' figures and run them paired.

    ``on_partial`` sees the replications done so far as they finish (``twin.sim.montecarlo.run``).

    ``sites`` as in ``fork`` (default: the snapshot's sites); the scenario is forked on the
    baseline's sites (those an overflow rule sends orders to included), so both simulate the same.
    """
    base = fork(inputs.fleet, state, None, inputs.params, horizon_s=settings.horizon_s, bin_s=settings.bin_s,
                sites=sites, hazards=inputs.hazards)
    scen = fork(inputs.fleet, state, scenario, inputs.params, horizon_s=settings.horizon_s, bin_s=settings.bin_s,
                sites=base.data.sites, hazards=inputs.hazards)
    result = monte_carlo(base.data, scen.data, replications=settings.replications, seed=settings.seed,
                         executor=executor, workers=settings.workers, stop=settings.stop, on_progress=on_progress,
                         on_partial=on_partial, as_of=base.as_of, uncertainty=inputs.uncertainty,
                         second_order=settings.second_order)
    shares: dict[str, float] = {}
    if settings.shares and settings.second_order:
        shares = parameter_shares(base, result, settings.seed, executor, settings.workers)
    return WhatIfRun(baseline=base, scenario=scen, result=result, shares=FrozenDict(shares))


def parameter_shares(base: Fork, result: MonteCarloResult, seed: int, executor: Executor | None,
                     workers: int) -> dict[str, float]:
    """Share of the baseline's variance due to parameter uncertainty per fleet KPI (first-order companion)."""
    n = companion_replications(result.replications)
    first = monte_carlo(base.data, replications=n, seed=seed, executor=executor, workers=workers, second_order=False)
    return {k: parameter_share(result.baseline, first.baseline, k) for k in SHARE_KPIS}
