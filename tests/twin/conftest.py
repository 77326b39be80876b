"""A small fleet built in code for the live twin, alarm, calendar and KPI tests.

Site ``s1`` (Europe/Berlin, Mon-Fri 06:00-14:00): printers P1, P2 (poll 1 s, so stale after 3 s) and a
sensor box B1 without counters (poll 2 s); stock item FIL (reorder point 10, poll 5 s, lead time 2 d).
Site ``s2`` (America/New_York, night shift 22:00-06:00 every day): printer C1.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta

import pytest

from twin.frozen import FrozenDict
from twin.readings import Quality, Reading, Value
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
    Transport,
)

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # a Monday, 09:00 in Berlin

STATUS_CODES = FrozenDict(
    {
        0: MachineStatus.OFF,
        1: MachineStatus.IDLE,
        2: MachineStatus.RUNNING,
        3: MachineStatus.FAULT,
        4: MachineStatus.MAINTENANCE,
        5: MachineStatus.SETUP,
    }
)

PRINTER = MachineTemplate(
    id=TemplateId("printer"),
    role=Role.PRINT,
    ideal_cycle_time_s=60.0,
    status_codes=STATUS_CODES,
    signals=(
        SignalSpec(name=SignalName("status"), kind=SignalKind.STATUS),
        SignalSpec(name=SignalName("good"), kind=SignalKind.GOOD_COUNT, counter_bits=32),
        SignalSpec(name=SignalName("scrap"), kind=SignalKind.SCRAP_COUNT, counter_bits=16),
        SignalSpec(name=SignalName("nozzle_c"), kind=SignalKind.TEMPERATURE, unit="°C"),
        SignalSpec(name=SignalName("job"), kind=SignalKind.JOB),
    ),
)

SENSOR_BOX = MachineTemplate(
    id=TemplateId("sensorbox"),
    role=Role.INSPECT,
    ideal_cycle_time_s=120.0,
    status_codes=STATUS_CODES,
    signals=(SignalSpec(name=SignalName("status"), kind=SignalKind.STATUS),),
)

WEEKDAYS = frozenset(range(5))
EVERY_DAY = frozenset(range(7))


def _machine(mid: str, site: str, template: MachineTemplate, poll_s: float = 1.0) -> MachineSpec:
    return MachineSpec(id=MachineId(mid), site=SiteId(site), template=template, poll_interval_s=poll_s)


def build_fleet() -> FleetSpec:
    s1 = SiteSpec(
        id=SiteId("s1"),
        name="Berlin print shop",
        kind=SiteKind.POINT_OF_DEMAND,
        timezone="Europe/Berlin",
        calendar=ShiftCalendar(shifts=(Shift(name="day", weekdays=WEEKDAYS, start=time(6), end=time(14)),)),
        machines=(
            _machine("P1", "s1", PRINTER),
            _machine("P2", "s1", PRINTER),
            _machine("B1", "s1", SENSOR_BOX, poll_s=2.0),
        ),
        inventory=(
            InventoryItemSpec(
                sku=Sku("FIL"), name="PLA filament", kind=ItemKind.RAW, unit="kg", reorder_point=10.0,
                reorder_qty=100.0, supplier="local", lead_time_d=2.0, transport=Transport.LOCAL,
                poll_interval_s=5.0,
            ),
        ),
        daily_plan_units=400,
    )
    s2 = SiteSpec(
        id=SiteId("s2"),
        name="Newark night shop",
        kind=SiteKind.POINT_OF_DEMAND,
        timezone="America/New_York",
        calendar=ShiftCalendar(shifts=(Shift(name="night", weekdays=EVERY_DAY, start=time(22), end=time(6)),)),
        machines=(_machine("C1", "s2", PRINTER),),
    )
    alarms = (
        AlarmRule(
            id=AlarmId("hot"), kind=AlarmKind.ABOVE, priority=Priority.HIGH, message="nozzle too hot",
            signal=SignalName("nozzle_c"), threshold=250.0, for_s=30.0,
            templates=frozenset({TemplateId("printer")}),
        ),
        AlarmRule(id=AlarmId("low"), kind=AlarmKind.STOCK_BELOW_REORDER, priority=Priority.MEDIUM,
                  message="stock below reorder point"),
        AlarmRule(id=AlarmId("down"), kind=AlarmKind.MACHINE_DOWN, priority=Priority.URGENT,
                  message="machine down for 10 min", for_s=600.0, sites=frozenset({SiteId("s1")})),
    )
    return FleetSpec(id="test", name="Test fleet", sites=(s1, s2), templates=(PRINTER, SENSOR_BOX),
                     alarms=alarms, stale_after_polls=3.0)


ReadingFactory = Callable[..., Reading]


@pytest.fixture
def fleet() -> FleetSpec:
    return build_fleet()


@pytest.fixture
def t0() -> datetime:
    return T0


@pytest.fixture
def rd() -> ReadingFactory:
    """``rd(seconds_after_T0, asset, signal, value, quality=GOOD, reason="", site="s1")``."""

    def make(
        dt_s: float,
        asset: str,
        signal: str,
        value: Value,
        quality: Quality = Quality.GOOD,
        reason: str = "",
        site: str = "s1",
    ) -> Reading:
        return Reading(ts=T0 + timedelta(seconds=dt_s), site=site, asset=asset, signal=signal, value=value,
                       quality=quality, reason=reason)

    return make
