"""Request limits: the most one request may ask of the server, so that one user cannot exhaust it.

Every limit is a named constant, gathered in :class:`Limits` (``DEFAULT_LIMITS`` holds the
constants). The ``check_*`` functions are called where requests enter: the Monte Carlo runner
(``twin.sim.montecarlo``), the scenario parser (``twin.sim.scenario``) and the historians' ``series``
when they serve users (``connectors.store``, ``connectors.influx.historian``, opened with ``limits=``). A request
over a limit is refused with an error that names the limit, the value asked for and the maximum:
nothing is clamped silently. (The dashboard's own, narrower policy for one what-if run from its
page is ``dashboard.scenarios.WhatIfLimits``, checked inside these.)

>>> check_replications(5000)
Traceback (most recent call last):
...
twin.errors.SimulationError: replications: at most 1000 per request (got 5000)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from twin.errors import HistorianError, SimulationError

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_COMMENT_CHARS",
    "MAX_DEMAND_FACTOR",
    "MAX_HORIZON_S",
    "MAX_INTERVENTIONS",
    "MAX_MACHINES_CHANGED",
    "MAX_ORDERS_PER_REVIEW",
    "MAX_POINTS_PER_SERIES",
    "MAX_REPLICATIONS",
    "MAX_SCENARIO_OFFSET_H",
    "MAX_SERIES_PER_REQUEST",
    "MAX_SERIES_RANGE_S",
    "Limits",
    "check_horizon",
    "check_replications",
    "check_series_request",
]

DAY_S = 86_400.0

MAX_COMMENT_CHARS = 200  # a comment on record (an acknowledgement): the dashboard's input and the collector's endpoint
MAX_REPLICATIONS = 1000  # Monte Carlo replications of one what-if (each ~1 s of CPU for 30 days)
MAX_HORIZON_S = 90 * DAY_S  # how far one what-if may simulate
MAX_SERIES_RANGE_S = 400 * DAY_S  # t1 - t0 of one series request
MAX_POINTS_PER_SERIES = 10_000  # max_points of one series request (a chart has ~1,000 pixels)
MAX_SERIES_PER_REQUEST = 50  # keys of one series request
MAX_INTERVENTIONS = 100  # interventions in one scenario
MAX_MACHINES_CHANGED = 50  # count of one machines_added / machines_removed intervention
MAX_DEMAND_FACTOR = 100.0  # demand multiplier of one intervention (orders, hence events, scale with it)
MAX_SCENARIO_OFFSET_H = 10 * 365 * 24.0  # any duration or offset in a scenario, in hours (10 years)
MAX_ORDERS_PER_REVIEW = 1000  # reorder_point / reorder_qty of a scenario's (s, Q) policy


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The limits one request is held to (the defaults are this module's constants)."""

    max_replications: int = MAX_REPLICATIONS
    max_horizon_s: float = MAX_HORIZON_S
    max_series_range_s: float = MAX_SERIES_RANGE_S
    max_points_per_series: int = MAX_POINTS_PER_SERIES
    max_series_per_request: int = MAX_SERIES_PER_REQUEST
    max_interventions: int = MAX_INTERVENTIONS
    max_machines_changed: int = MAX_MACHINES_CHANGED
    max_demand_factor: float = MAX_DEMAND_FACTOR
    max_scenario_offset_h: float = MAX_SCENARIO_OFFSET_H
    max_orders_per_review: int = MAX_ORDERS_PER_REVIEW


DEFAULT_LIMITS = Limits()


def _days(seconds: float) -> str:
    return f"{seconds / DAY_S:g} d"


def check_replications(replications: int, limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse fewer than 1 or more than ``limits.max_replications`` replications (``SimulationError``)."""
    if replications < 1:
        raise SimulationError(f"replications: must be >= 1 (got {replications})")
    if replications > limits.max_replications:
        raise SimulationError(
            f"replications: at most {limits.max_replications} per request (got {replications})"
        )


def check_horizon(horizon_s: float, limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse a simulation horizon that is not positive or is longer than ``limits.max_horizon_s``.

    >>> check_horizon(100 * 86400.0)
    Traceback (most recent call last):
    ...
    twin.errors.SimulationError: horizon: at most 90 d per request (got 100 d)
    """
    if not horizon_s > 0:  # also NaN
        raise SimulationError(f"horizon: must be > 0 s (got {horizon_s!r})")
    if horizon_s > limits.max_horizon_s:
        raise SimulationError(
            f"horizon: at most {_days(limits.max_horizon_s)} per request (got {_days(horizon_s)})"
        )


def check_series_request(keys: int, t0: datetime, t1: datetime, max_points: int,
                         limits: Limits | None = DEFAULT_LIMITS) -> None:
    """Refuse a series request over the limits with a ``HistorianError`` naming the limit.

    The request is ``keys`` series from ``t0`` to ``t1`` with at most ``max_points`` points each.
    With ``limits=None`` (a historian serving trusted tools: export, calibration) only the request's
    own sanity is checked: at least one point per series.

    >>> from datetime import UTC
    >>> t = datetime(2026, 1, 5, tzinfo=UTC)
    >>> check_series_request(1, t, t + timedelta(days=1), 20_000)
    Traceback (most recent call last):
    ...
    twin.errors.HistorianError: series request: max_points at most 10000 per series (got 20000)
    """
    if max_points < 1:
        raise HistorianError(f"series request: max_points must be at least 1 (got {max_points!r})")
    if limits is None:
        return
    if max_points > limits.max_points_per_series:
        raise HistorianError(
            f"series request: max_points at most {limits.max_points_per_series} per series (got {max_points})"
        )
    if keys > limits.max_series_per_request:
        raise HistorianError(
            f"series request: at most {limits.max_series_per_request} series per request (got {keys})"
        )
    span = (t1 - t0) / timedelta(seconds=1)
    if span > limits.max_series_range_s:
        raise HistorianError(
            f"series request: range at most {_days(limits.max_series_range_s)} (got {_days(span)}, "
            f"{t0.isoformat()} to {t1.isoformat()})"
        )
