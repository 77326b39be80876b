"""Builders shared by the simulation tests: queueing models and a tiny fleet."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from tests import fleets
from tests.fleets import codes, day_shift, demand, fleet, item, machine, product, site, template
from twin.sim.model import DemandData, MachineData, ModelData, ProductData
from twin.spec import FleetSpec, ItemKind, Role, Transport

AS_OF = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # a Monday, 07:00 in Berlin


def queue_model(lam: float, mus: list[float], servers: list[int], horizon_s: float) -> ModelData:
    """Poisson arrivals (rate lam) through stations in series, exponential service, FIFO, 24/7."""
    roles = ["print", "pack", "inspect", "assemble"][: len(mus)]
    machines = tuple(
        MachineData(id=f"{role}{i}", site="s", role=role, cycle_mean_s=1.0 / mu, cycle_cv=1.0)
        for role, mu, c in zip(roles, mus, servers, strict=True)
        for i in range(c)
    )
    return ModelData(
        horizon_s=horizon_s, bin_s=horizon_s, sites=("s",), machines=machines,
        products=(ProductData(id="p", routing=tuple(roles), due_s=math.inf),),
        demand=(DemandData(site="s", product="p", starts_s=(0.0,), rates_per_s=(lam,)),),
    )


def tiny_fleet(orders_per_day: float = 24.0, always_on: bool = False) -> FleetSpec:
    """One site: two printers (cycle 1 h, batch 4), one pack station; one product; two SKUs."""
    printer = template("printer", Role.PRINT, 3600.0, batch_size=4, mtbf_h=100.0, mttr_h=2.0, scrap_rate=0.02,
                       status_codes=codes(1, 2, 3), signals=())
    packer = template("packer", Role.PACK, 300.0, mtbf_h=1000.0, mttr_h=0.5, scrap_rate=0.0,
                      status_codes=codes(1, 2, 3), signals=())
    s1 = site(
        "s1", machine("P1", printer), machine("P2", printer), machine("PK1", packer),
        name="Site 1", timezone="Europe/Berlin", calendar=fleets.always_on() if always_on else day_shift(6, 22),
        inventory=(
            item("FIL", name="filament", unit="kg", reorder_point=10, reorder_qty=40, lead_time_d=2,
                 lead_time_sd_d=0.5, initial_on_hand=30),
            item("SUB", name="sub-assembly", kind=ItemKind.SUB_ASSEMBLY, reorder_point=50, reorder_qty=200,
                 supplier="overseas", lead_time_d=30, lead_time_sd_d=5, transport=Transport.SEA,
                 initial_on_hand=100),
        ),
        demand=(demand("widget", orders_per_day),),
    )
    widget = product("widget", (Role.PRINT, Role.PACK), {"FIL": 0.1, "SUB": 1.0}, batch_min=1, batch_max=3, due_h=48)
    return fleet(s1, id="tiny", products=(widget,))
