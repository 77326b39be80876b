"""``[feeds]``: where open orders and inbound shipments enter the twin (file drop, HTTP endpoint).

Placeholder until the orders/shipments feed lands: the section is accepted empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from twin.errors import Problem
from twin.spec import FleetSpec

__all__ = ["FeedsConfig", "FeedsModel", "convert_feeds"]


class FeedsModel(BaseModel):
    """``[feeds]`` as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedsConfig:
    """The validated ``[feeds]`` section; paths resolved against the configuration file's folder."""


def convert_feeds(model: FeedsModel | None, src: Path, fleet: FleetSpec, problems: list[Problem]) -> FeedsConfig | None:
    """Check ``[feeds]`` against the fleet (sites, products, SKUs); problems go to ``problems``."""
    if model is None:
        return None
    return FeedsConfig()
