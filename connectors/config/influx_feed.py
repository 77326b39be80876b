"""``[[sources.influx]]``: sites and machines mirrored from InfluxDB measurements (e.g. Telegraf's).

Placeholder until the InfluxDB feed source lands: the list is accepted empty.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from twin.errors import Problem
from twin.spec import FleetSpec

__all__ = ["InfluxFeedModel", "convert_influx_feeds"]


class InfluxFeedModel(BaseModel):
    """One ``[[sources.influx]]`` entry as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def convert_influx_feeds(models: list[InfluxFeedModel], fleet: FleetSpec,
                         problems: list[Problem]) -> tuple[object, ...]:
    """Build the feeds of ``[[sources.influx]]``, appending every cross-reference problem to ``problems``."""
    return ()
