"""The what-if interventions as typed values: what a scenario changes on a fork, and the scenario itself.

Built in code or read from a scenario file by :mod:`twin.sim.scenario` (which re-exports them);
applied to a fork by :mod:`twin.sim.build`.

>>> Scenario(name="x", interventions=(CycleTimeFactor(factor=1.2, role=Role.PRINT),)).interventions[0].factor
1.2
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from twin.spec import Role, ShiftCalendar, Transport

__all__ = [
    "CycleTimeFactor",
    "DemandMultiplier",
    "Intervention",
    "LeadTimeChange",
    "MachineDown",
    "MachinesAdded",
    "MachinesRemoved",
    "Maintenance",
    "OverflowRouting",
    "ReorderPolicy",
    "Scenario",
    "ShiftChange",
    "ShipmentDelay",
    "TimeRef",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeRef:
    """A moment of a scenario: an absolute UTC time, or hours after the fork."""

    at: datetime | None = None
    in_h: float | None = None

    def seconds_from(self, as_of: datetime) -> float:
        if self.at is not None:
            return (self.at - as_of).total_seconds()
        return (self.in_h or 0.0) * 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineDown:
    """A machine is unavailable (planned maintenance, breakdown) from ``start`` for ``duration_h``."""

    machine: str
    start: TimeRef
    duration_h: float
    site: str | None = None  # needed when the machine id exists at several sites


@dataclass(frozen=True, slots=True, kw_only=True)
class Maintenance:
    """Planned maintenance of a machine from ``start`` for ``duration_h``: it is down, then its wear is reset.

    The wear matters where the fork has a condition hazard for the machine (``twin.sim.condition``);
    with the constant-MTBF hazard a maintenance is a :class:`MachineDown`.
    """

    machine: str
    start: TimeRef
    duration_h: float
    site: str | None = None  # needed when the machine id exists at several sites


@dataclass(frozen=True, slots=True, kw_only=True)
class MachinesAdded:
    """``count`` new machines of ``template`` at ``site``."""

    site: str
    template: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MachinesRemoved:
    """``count`` machines of ``template`` at ``site`` taken out (the last ones by id)."""

    site: str
    template: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CycleTimeFactor:
    """Cycle times multiplied by ``factor`` for one machine (of a site), a role, a site, or everywhere."""

    factor: float
    machine: str | None = None
    role: Role | None = None
    site: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DemandMultiplier:
    """Order rate multiplied by ``factor`` (for a site and/or product) between start and end."""

    factor: float
    site: str | None = None
    product: str | None = None
    start: TimeRef | None = None
    end: TimeRef | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ShipmentDelay:
    """Shipments of ``sku`` in transit at the fork arrive ``delay_d`` days later than their ETA."""

    sku: str
    delay_d: float
    site: str | None = None
    shipment: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadTimeChange:
    """New supplier lead times for replenishments ordered during the run."""

    lead_time_d: float
    sku: str | None = None
    supplier: str | None = None
    site: str | None = None
    lead_time_sd_d: float | None = None
    transport: Transport | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReorderPolicy:
    """A new (s, Q) policy for ``sku`` (at one site or all)."""

    sku: str
    reorder_point: float
    reorder_qty: float
    site: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ShiftChange:
    """A new shift calendar for ``site``."""

    site: str
    calendar: ShiftCalendar


@dataclass(frozen=True, slots=True, kw_only=True)
class OverflowRouting:
    """Orders arriving at ``from_site`` with ``threshold`` or more open go to ``to_site``."""

    from_site: str
    to_site: str
    transfer_h: float
    threshold: int


Intervention = (
    MachineDown
    | Maintenance
    | MachinesAdded
    | MachinesRemoved
    | CycleTimeFactor
    | DemandMultiplier
    | ShipmentDelay
    | LeadTimeChange
    | ReorderPolicy
    | ShiftChange
    | OverflowRouting
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A named set of interventions; the empty scenario is the baseline."""

    name: str = "baseline"
    description: str = ""
    interventions: tuple[Intervention, ...] = ()
