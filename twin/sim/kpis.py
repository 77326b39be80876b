"""What each KPI and band metric of a projection is: its label, unit, scale and which way is better.

One table for every reader of ``twin.sim.projection``: the ``twin whatif`` table (``app.whatif``),
the dashboard's what-if page (``dashboard.whatif_engine``) and the parameter-share line. The
projection holds raw numbers (rates as fractions, times in hours); ``scale`` turns a value into
the unit shown (a fraction times 100 is a %).

>>> KPIS["on_time_rate"].heading, KPIS["on_time_rate"].scale, KPIS["on_time_rate"].better
('on-time delivery %', 100.0, 'higher')
>>> KPIS["units_done"].heading
'units finished'
>>> KPIS["lead_time_h"].text(6.04)
'6.0'
>>> KPIS["on_time_rate"].delta_unit, KPIS["lead_time_h"].delta_unit
('pp', 'h')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["BAND_METRICS", "KPIS", "SHARE_KPIS", "BandMetric", "KpiInfo"]


@dataclass(frozen=True, slots=True, kw_only=True)
class KpiInfo:
    """How a KPI of the projection is shown: ``label`` in ``unit`` (value times ``scale``), ``decimals``."""

    name: str
    label: str
    unit: str
    scale: float
    better: Literal["higher", "lower"]
    decimals: int

    @property
    def higher_is_better(self) -> bool:
        return self.better == "higher"

    @property
    def heading(self) -> str:
        """The label with its unit, unless the label already names it ("units finished", "lead time h")."""
        return self.label if self.unit in self.label.split() else f"{self.label} {self.unit}"

    @property
    def delta_unit(self) -> str:
        """The unit of a difference: percentage points for a KPI in %, else the KPI's own unit."""
        return "pp" if self.unit == "%" else self.unit

    def text(self, value: float) -> str:
        """A raw value in the shown unit with the KPI's decimals; ``-`` for no estimate (NaN)."""
        return "-" if math.isnan(value) else f"{value * self.scale:.{self.decimals}f}"


KPIS: dict[str, KpiInfo] = {
    k.name: k
    for k in (
        KpiInfo(name="units_done", label="units finished", unit="units", scale=1.0, better="higher", decimals=0),
        KpiInfo(name="orders_done", label="orders finished", unit="orders", scale=1.0, better="higher", decimals=0),
        KpiInfo(name="on_time_rate", label="on-time delivery", unit="%", scale=100.0, better="higher", decimals=1),
        KpiInfo(name="lead_time_h", label="lead time", unit="h", scale=1.0, better="lower", decimals=1),
        KpiInfo(name="wip_orders", label="open orders (avg)", unit="orders", scale=1.0, better="lower", decimals=1),
        KpiInfo(name="utilisation", label="utilisation", unit="%", scale=100.0, better="higher", decimals=1),
        KpiInfo(name="stockout_skus", label="SKUs stocked out", unit="SKUs", scale=1.0, better="lower", decimals=2),
    )
}

# the fleet KPIs whose parameter-uncertainty share a second-order run reports
SHARE_KPIS = ("units_done", "on_time_rate", "lead_time_h")


@dataclass(frozen=True, slots=True, kw_only=True)
class BandMetric:
    """How a band metric of the projection (``Band.metric``) is shown in a fan chart."""

    metric: str
    label: str
    unit: str
    scale: float = 1.0


BAND_METRICS: dict[str, BandMetric] = {
    b.metric: b
    for b in (
        BandMetric(metric="cumulative_units", label="units finished", unit="units"),
        BandMetric(metric="throughput", label="throughput", unit="units per bin"),
        BandMetric(metric="backlog", label="open orders", unit="orders"),
        BandMetric(metric="utilisation", label="utilisation", unit="%", scale=100.0),
        BandMetric(metric="wip", label="work in progress", unit="units"),
    )
}
