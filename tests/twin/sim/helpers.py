"""Builders shared by the simulation tests: queueing models and a tiny fleet."""

from __future__ import annotations

import math
from datetime import UTC, datetime, time

from twin.frozen import FrozenDict
from twin.sim.model import DemandData, MachineData, ModelData, ProductData
from twin.spec import (
    DemandSpec,
    FleetSpec,
    InventoryItemSpec,
    ItemKind,
    MachineId,
    MachineSpec,
    MachineStatus,
    MachineTemplate,
    ProductFamily,
    ProductId,
    Role,
    Shift,
    ShiftCalendar,
    SiteId,
    SiteKind,
    SiteSpec,
    Sku,
    TemplateId,
    Transport,
)

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


def _template(tid: str, role: Role, cycle_s: float, batch: int = 1, mtbf_h: float = 200.0,
              mttr_h: float = 1.0, scrap: float = 0.0) -> MachineTemplate:
    return MachineTemplate(
        id=TemplateId(tid), role=role, ideal_cycle_time_s=cycle_s, batch_size=batch, mtbf_h=mtbf_h, mttr_h=mttr_h,
        scrap_rate=scrap, status_codes=FrozenDict({1: MachineStatus.IDLE, 2: MachineStatus.RUNNING,
                                                   3: MachineStatus.FAULT}),
        signals=(),
    )


def tiny_fleet(orders_per_day: float = 24.0, always_on: bool = False) -> FleetSpec:
    """One site: two printers (cycle 1 h, batch 4), one pack station; one product; two SKUs."""
    printer = _template("printer", Role.PRINT, 3600.0, batch=4, mtbf_h=100.0, mttr_h=2.0, scrap=0.02)
    packer = _template("packer", Role.PACK, 300.0, mtbf_h=1000.0, mttr_h=0.5)
    calendar = ShiftCalendar(shifts=() if always_on else (
        Shift(name="day", weekdays=frozenset(range(5)), start=time(6), end=time(22)),
    ))
    site = SiteSpec(
        id=SiteId("s1"), name="Site 1", kind=SiteKind.POINT_OF_DEMAND, timezone="Europe/Berlin",
        calendar=calendar,
        machines=(
            MachineSpec(id=MachineId("P1"), site=SiteId("s1"), template=printer),
            MachineSpec(id=MachineId("P2"), site=SiteId("s1"), template=printer),
            MachineSpec(id=MachineId("PK1"), site=SiteId("s1"), template=packer),
        ),
        inventory=(
            InventoryItemSpec(sku=Sku("FIL"), name="filament", kind=ItemKind.RAW, unit="kg", reorder_point=10,
                              reorder_qty=40, supplier="local", lead_time_d=2, lead_time_sd_d=0.5,
                              initial_on_hand=30),
            InventoryItemSpec(sku=Sku("SUB"), name="sub-assembly", kind=ItemKind.SUB_ASSEMBLY, unit="pcs",
                              reorder_point=50, reorder_qty=200, supplier="overseas", lead_time_d=30,
                              lead_time_sd_d=5, transport=Transport.SEA, initial_on_hand=100),
        ),
        demand=(DemandSpec(product=ProductId("widget"), orders_per_day=orders_per_day),),
    )
    product = ProductFamily(id=ProductId("widget"), name="Widget", routing=(Role.PRINT, Role.PACK),
                            bom=FrozenDict({Sku("FIL"): 0.1, Sku("SUB"): 1.0}), batch_min=1, batch_max=3, due_h=48)
    return FleetSpec(id="tiny", name="Tiny", sites=(site,), templates=(printer, packer), products=(product,))
