"""The what-if engine: fork a snapshot into seeded SimPy Monte Carlo projections.

``build.fork`` turns (fleet, snapshot, scenario, parameters) into plain model data;
``model.simulate`` runs one replication in a fresh ``simpy.Environment``; ``montecarlo.run``
runs paired replications on any executor; ``projection`` turns them into bands, KPIs and deltas
(``stats.Estimate``), which ``kpis`` labels; ``whatif`` is the orchestration every what-if shares
(inputs from history, calibrate, fork, run); ``scenario`` parses and validates interventions;
``backtest`` and ``rolling`` score past projections.
"""

from __future__ import annotations

from twin.sim.backtest import BacktestResult, actual_series, backtest
from twin.sim.build import Fork, ForkNote, fork
from twin.sim.model import ModelData, ReplicationOutput, simulate
from twin.sim.montecarlo import MonteCarloResult, StopRule, run
from twin.sim.params import DemandParams, MachineParams, SimParams
from twin.sim.projection import FLEET, Band, Comparison, OrderOnTime, Projection, StockoutRisk
from twin.sim.scenario import Scenario, loads_scenario, parse_scenario
from twin.sim.stats import Estimate

__all__ = [
    "FLEET",
    "BacktestResult",
    "Band",
    "Comparison",
    "DemandParams",
    "Estimate",
    "Fork",
    "ForkNote",
    "MachineParams",
    "ModelData",
    "MonteCarloResult",
    "OrderOnTime",
    "Projection",
    "ReplicationOutput",
    "Scenario",
    "SimParams",
    "StockoutRisk",
    "StopRule",
    "actual_series",
    "backtest",
    "fork",
    "loads_scenario",
    "parse_scenario",
    "run",
    "simulate",
]
