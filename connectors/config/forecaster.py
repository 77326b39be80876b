"""``[forecaster]``: whether the collector computes the predictive alarms' risks, how often and how hard.

::

    [forecaster]
    enabled = false        # off by default (`twin demo` switches it on); needs predictive [[alarms]]
    every_min = 15         # a forecast every 15 minutes (the first one `first_delay_s` after start)
    replications = 40      # Monte Carlo replications per forecast (stockout and late-order risks)
    calibrate_days = 14    # history the simulation's parameters are calibrated on (0: configured figures)
    health_days = 14       # history the failure-risk model is fitted and scored on
    seed = 1               # the replications' seed (the same state and seed give the same risks)

>>> cfg = convert_forecaster(ForecasterModel(enabled=True, every_min=5))
>>> cfg.enabled, cfg.every_s, cfg.replications
(True, 300.0, 40)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict

from twin.validation import Int, NonNegative, Positive

__all__ = ["ForecasterConfig", "ForecasterModel", "convert_forecaster"]

class ForecasterModel(BaseModel):
    """``[forecaster]`` as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    enabled: Annotated[bool, Strict()] = False
    every_min: Annotated[Positive, Field(le=24 * 60)] = 15.0
    replications: Annotated[Int, Field(ge=1, le=1000)] = 40
    calibrate_days: Annotated[NonNegative, Field(le=365)] = 14.0
    health_days: Annotated[Positive, Field(le=365)] = 14.0
    first_delay_s: Annotated[NonNegative, Field(le=3600)] = 30.0
    seed: Annotated[Int, Field(ge=0)] = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ForecasterConfig:
    """The forecaster's schedule and effort (see the module's docstring for each field)."""

    enabled: bool = False
    every_s: float = 900.0
    replications: int = 40
    calibrate_days: float = 14.0
    health_days: float = 14.0
    first_delay_s: float = 30.0
    seed: int = 1


def convert_forecaster(model: ForecasterModel | None) -> ForecasterConfig:
    """The ``[forecaster]`` section (the defaults, off, when there is none)."""
    if model is None:
        return ForecasterConfig()
    return ForecasterConfig(enabled=model.enabled, every_s=float(model.every_min) * 60.0,
                            replications=model.replications, calibrate_days=float(model.calibrate_days),
                            health_days=float(model.health_days),
                            first_delay_s=float(model.first_delay_s), seed=model.seed)
