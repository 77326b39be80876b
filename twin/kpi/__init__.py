"""Plant KPIs as pure functions of numbers and snapshots: OEE, MTBF/MTTR, cover, backlog, stock.

Also the order backlog, shipment lateness and stock projected forward by arrivals.

Every function returns numbers (or None where an input is missing), never strings or colours.
Window KPIs are differences of two snapshots of the same machine or site (``before`` at ``t0``,
``after`` at ``t1``), the time in the ongoing status counted up to each snapshot's time.
``production`` holds the machine and output KPIs (OEE and how it is computed), ``supply`` those
of orders and stock.
"""

from __future__ import annotations

from twin.kpi.production import (
    MachineWindow,
    Oee,
    OutputVsPlan,
    capped_performance,
    finishing_machines,
    machine_oee,
    machine_window,
    mtbf_h,
    mttr_h,
    oee,
    output_vs_plan,
    planned_units_to,
    scrap_rate,
    site_oee,
    site_windows,
    throughput_per_h,
    window_from_states,
)
from twin.kpi.supply import (
    MAX_COVER_D,
    Arrival,
    Backlog,
    ShipmentLateness,
    StockProjection,
    backlog,
    consumption_per_day,
    days_of_cover,
    order_slack_s,
    project_stock,
    remaining_units,
    shipment_lateness,
)

__all__ = [
    "MAX_COVER_D",
    "Arrival",
    "Backlog",
    "MachineWindow",
    "Oee",
    "OutputVsPlan",
    "ShipmentLateness",
    "StockProjection",
    "backlog",
    "capped_performance",
    "consumption_per_day",
    "days_of_cover",
    "finishing_machines",
    "machine_oee",
    "machine_window",
    "mtbf_h",
    "mttr_h",
    "oee",
    "order_slack_s",
    "output_vs_plan",
    "planned_units_to",
    "project_stock",
    "remaining_units",
    "scrap_rate",
    "shipment_lateness",
    "site_oee",
    "site_windows",
    "throughput_per_h",
    "window_from_states",
]

