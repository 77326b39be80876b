"""Live health on a schedule: refit the failure-risk model every few hours, score on every refresh.

A :class:`HealthMonitor` is what a long-running role (the dashboard's refresher, a forecaster)
holds: ``refresh(reader, now)`` reads the ``days`` of history before ``now`` (the covariates need
it: time since the last repair can reach back that far), refits the model only when the last fit
is older than ``refit_every_s`` (6 h) or there is none, and scores every machine at ``now``. No
clock of its own: ``now`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from twin.health.history import load_histories
from twin.health.model import FitOptions, HealthModel, fit
from twin.health.score import MachineHealth, machine_health
from twin.health.timeline import Timeline, build_timeline
from twin.historian import HistorianReader
from twin.spec import FleetSpec

__all__ = ["HealthMonitor", "HealthRefresh"]

_STEP_S = 1800.0


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthRefresh:
    """One refresh: every machine's health at ``at``, the model used, and whether it was refitted for it."""

    at: datetime
    machines: tuple[MachineHealth, ...]
    model: HealthModel
    refitted: bool
    timeline: Timeline | None = None  # the grid scored (a machine page draws its risk trend from it)


class HealthMonitor:
    """Holds the fitted model of a fleet (or one site) and refits it on a schedule.

    >>> from twin.spec import FleetSpec
    >>> HealthMonitor(FleetSpec(id="f", name="f", sites=(), templates=())).model is None
    True
    """

    def __init__(self, fleet: FleetSpec, *, days: float = 14.0, refit_every_s: float = 6 * 3600.0,
                 horizon_h: float = 8.0, site: str | None = None, options: FitOptions | None = None) -> None:
        if days <= 0 or refit_every_s <= 0 or horizon_h <= 0:
            raise ValueError(f"days, refit_every_s and horizon_h must be > 0 (got {days}, {refit_every_s}, "
                             f"{horizon_h})")
        self.fleet = fleet
        self.days = days
        self.refit_every_s = refit_every_s
        self.horizon_h = horizon_h
        self.site = site
        self.options = options or FitOptions()
        self.model: HealthModel | None = None

    def window_start(self, now: datetime) -> datetime:
        """Where the history read for ``now`` starts: ``days`` before it, in whole grid steps."""
        return now - timedelta(seconds=-(-self.days * 86400.0 // _STEP_S) * _STEP_S)  # the grid ends at ``now``

    def refresh(self, reader: HistorianReader, now: datetime) -> HealthRefresh:
        """Score every machine at ``now``, refitting first when the model is missing or due."""
        t0 = self.window_start(now)
        histories = load_histories(reader, self.fleet, t0, now, sites=[self.site] if self.site else None)
        timeline = build_timeline(histories, t0.timestamp(), now.timestamp() + 1.0, step_s=_STEP_S)
        model = self.model
        due = model is None or now.timestamp() - model.fitted_until >= self.refit_every_s
        if model is None or due:
            model = self.model = fit(timeline, {str(t.id): t.mtbf_h for t in self.fleet.templates}, self.options)
        return HealthRefresh(at=now, machines=tuple(machine_health(self.fleet, model, timeline,
                                                                   horizon_h=self.horizon_h)),
                             model=model, refitted=due, timeline=timeline)
