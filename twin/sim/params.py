"""Simulation parameters that override the configuration's nominal figures (usually calibrated).

Every field is optional: what is missing falls back to the plant configuration (templates, demand
specs, bills of materials). ``twin.calibrate`` produces these from history.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twin.frozen import FrozenDict

__all__ = ["DemandParams", "LeadTimeParams", "MachineParams", "SimParams"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineParams:
    """Per-machine figures; None keeps the template's value."""

    cycle_time_s: float | None = None
    cycle_cv: float | None = None
    mtbf_h: float | None = None
    mttr_h: float | None = None
    scrap_rate: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DemandParams:
    """Order arrivals of one (site, product): orders per day and optional hour (24) and weekday (7) profiles.

    ``weekday_factors`` (Monday first, mean 1) replace the configured ones when given.
    """

    orders_per_day: float
    hour_factors: tuple[float, ...] | None = None
    weekday_factors: tuple[float, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadTimeParams:
    """Replenishment lead time of one (site, SKU): ordered -> arrived, in days (mean and spread)."""

    mean_d: float
    sd_d: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SimParams:
    """Overrides keyed by ``(site, machine)``, ``(site, product)`` and ``(site, sku)``.

    ``default_cycle_cv`` is the cycle-time coefficient of variation used when nothing better is
    known; ``consumption`` multiplies the bill of materials of a SKU at a site (1.0 = as designed).
    """

    machines: FrozenDict[tuple[str, str], MachineParams] = field(default_factory=FrozenDict)
    demand: FrozenDict[tuple[str, str], DemandParams] = field(default_factory=FrozenDict)
    consumption: FrozenDict[tuple[str, str], float] = field(default_factory=FrozenDict)
    lead_times: FrozenDict[tuple[str, str], LeadTimeParams] = field(default_factory=FrozenDict)
    default_cycle_cv: float = 0.25
