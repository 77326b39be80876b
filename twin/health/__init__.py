"""Machine health: the failure risk of each machine from its own status and condition history.

* :mod:`twin.health.timeline`: status and condition signals on a regular grid, with covariates;
* :mod:`twin.health.model`: a Cox time-varying model per template (the only lifelines import), or
  the constant-MTBF hazard when history is short, and the risk scores it gives;
* :mod:`twin.health.history`: the machines' histories read through ``HistorianReader``;
* :mod:`twin.health.score`: each machine's risk now (8 h, rest of the shift) with interval and drivers;
* :mod:`twin.health.monitor`: refit on a schedule, score on every refresh;
* :mod:`twin.health.evaluate`: AUC, Brier skill and warning lead time on held-out days.

Pure: no I/O beyond the historian protocol, no wall clock.
"""

from twin.health.timeline import ConditionHistory, MachineTimeline, Timeline, build_timeline

__all__ = ["ConditionHistory", "MachineTimeline", "Timeline", "build_timeline"]
