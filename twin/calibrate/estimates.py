"""The calibration's results: one ``ParamEstimate`` per figure with its sample size and source, and the ``Calibration``.

``estimate`` takes a figure from history only when its sample reaches the ``MinSamples`` bar (and
the value is finite); otherwise the configured default stands, marked ``Source.DEFAULT``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from twin.sim.params import SimParams
from twin.sim.projection import to_plain
from twin.sim.uncertainty import Uncertainty

__all__ = ["DAY_S", "Calibration", "MinSamples", "ParamEstimate", "Source", "estimate"]

DAY_S = 86400.0


class Source(enum.Enum):
    """Where an estimate's value comes from."""

    HISTORY = "history"
    DEFAULT = "default"  # history too short: the configuration's value


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamEstimate:
    """One calibrated figure: ``name`` of ``subject`` (``site/machine``, ``site/product``, ``site/sku``)."""

    name: str
    subject: str
    value: float
    samples: int
    source: Source
    default: float
    unit: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MinSamples:
    """The smallest sample that replaces a configured default."""

    failures: int = 5
    repairs: int = 5
    cycles: int = 30
    # a machine with long cycles (a 4 h print: ~25 a week in shifts) never reaches ``cycles``: when
    # a CYCLE_TIME signal measured at least ``measured_cycles`` durations whose mean has a relative
    # standard error of at most ``cycle_rel_se``, that mean is taken
    measured_cycles: int = 5
    cycle_rel_se: float = 0.02
    parts: int = 200
    orders: int = 30
    arrivals: int = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class Calibration:
    """Estimates over ``[t0, t1]`` and the simulation parameters built from them."""

    t0: datetime
    t1: datetime
    estimates: tuple[ParamEstimate, ...]
    params: SimParams = field(default_factory=SimParams)
    uncertainty: Uncertainty = field(default_factory=Uncertainty)

    def get(self, name: str, subject: str) -> ParamEstimate:
        for e in self.estimates:
            if e.name == name and e.subject == subject:
                return e
        raise KeyError((name, subject))

    @property
    def defaults_used(self) -> tuple[ParamEstimate, ...]:
        return tuple(e for e in self.estimates if e.source is Source.DEFAULT)

    def to_dict(self) -> dict[str, Any]:
        return {"t0": self.t0.isoformat(), "t1": self.t1.isoformat(), "estimates": to_plain(self.estimates)}


def estimate(name: str, subject: str, value: float | None, samples: int, enough: int, default: float,
             unit: str) -> ParamEstimate:
    """``value`` when ``samples`` reach ``enough`` (and it is finite), else the configured ``default``."""
    if value is None or samples < enough or not math.isfinite(value):
        return ParamEstimate(name=name, subject=subject, value=default, samples=samples, source=Source.DEFAULT,
                             default=default, unit=unit)
    return ParamEstimate(name=name, subject=subject, value=value, samples=samples, source=Source.HISTORY,
                         default=default, unit=unit)
