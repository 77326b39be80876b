"""Fixtures of the embedded-historian tests: a small fleet and a store in a temporary file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from connectors.store import SqliteHistorian
from twin.frozen import FrozenDict
from twin.spec import (
    AlarmId,
    AlarmKind,
    AlarmRule,
    FleetSpec,
    InventoryItemSpec,
    ItemKind,
    MachineId,
    MachineSpec,
    MachineStatus,
    MachineTemplate,
    Priority,
    Role,
    Shift,
    ShiftCalendar,
    SignalKind,
    SignalName,
    SignalSpec,
    SiteId,
    SiteKind,
    SiteSpec,
    Sku,
    TemplateId,
)

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

PRINTER = MachineTemplate(
    id=TemplateId("printer"),
    role=Role.PRINT,
    ideal_cycle_time_s=60.0,
    status_codes=FrozenDict({0: MachineStatus.OFF, 1: MachineStatus.IDLE, 2: MachineStatus.RUNNING,
                             3: MachineStatus.FAULT}),
    signals=(
        SignalSpec(name=SignalName("status"), kind=SignalKind.STATUS),
        SignalSpec(name=SignalName("good"), kind=SignalKind.GOOD_COUNT),
        SignalSpec(name=SignalName("scrap"), kind=SignalKind.SCRAP_COUNT),
        SignalSpec(name=SignalName("temp_c"), kind=SignalKind.TEMPERATURE, unit="°C"),
    ),
)


def make_fleet(machines: int = 2) -> FleetSpec:
    site = SiteSpec(
        id=SiteId("s1"),
        name="Site 1",
        kind=SiteKind.POINT_OF_DEMAND,
        timezone="UTC",
        calendar=ShiftCalendar(shifts=(Shift(name="day", weekdays=frozenset(range(7)), start=time(0),
                                             end=time(0)),)),
        machines=tuple(MachineSpec(id=MachineId(f"P{i + 1}"), site=SiteId("s1"), template=PRINTER)
                       for i in range(machines)),
        inventory=(InventoryItemSpec(sku=Sku("PLA"), name="PLA spool", kind=ItemKind.RAW, unit="kg",
                                     reorder_point=5.0, reorder_qty=20.0, supplier="local", lead_time_d=2.0,
                                     poll_interval_s=1.0),),
    )
    alarms = (
        AlarmRule(id=AlarmId("hot"), kind=AlarmKind.ABOVE, priority=Priority.HIGH, message="too hot",
                  signal=SignalName("temp_c"), threshold=240.0, for_s=3.0),
        AlarmRule(id=AlarmId("low"), kind=AlarmKind.STOCK_BELOW_REORDER, priority=Priority.MEDIUM,
                  message="reorder"),
        AlarmRule(id=AlarmId("down"), kind=AlarmKind.MACHINE_DOWN, priority=Priority.URGENT,
                  message="down", for_s=2.0),
    )
    return FleetSpec(id="f", name="Fleet", sites=(site,), templates=(PRINTER,), alarms=alarms)


@pytest.fixture
def fleet() -> FleetSpec:
    return make_fleet()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "historian.sqlite"


@pytest.fixture
def store(store_path: Path, fleet: FleetSpec) -> Iterator[SqliteHistorian]:
    h = SqliteHistorian(store_path, fleet, rollup_interval_s=60, retention_raw_days=7)
    yield h
    h.close()
