"""A small fleet built in code for the live twin, alarm, calendar and KPI tests.

Site ``s1`` (Europe/Berlin, Mon-Fri 06:00-14:00): printers P1, P2 (poll 1 s, so stale after 3 s) and a
sensor box B1 without counters (poll 2 s); stock item FIL (reorder point 10, poll 5 s, lead time 2 d).
Site ``s2`` (America/New_York, night shift 22:00-06:00 every day): printer C1.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.fleets import EVERY_DAY, codes, day_shift, item, machine, rule, signal, site, template
from tests.fleets import fleet as fleet_of  # the fixture below is called fleet
from twin.readings import Quality, Reading, Value
from twin.spec import AlarmKind, FleetSpec, Priority, Role, SignalKind

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # a Monday, 09:00 in Berlin

STATUS_CODES = codes(0, 1, 2, 3, 4, 5)

PRINTER = template(
    "printer", Role.PRINT, 60.0,
    status_codes=STATUS_CODES,
    signals=(
        signal("status", SignalKind.STATUS),
        signal("good", SignalKind.GOOD_COUNT, counter_bits=32),
        signal("scrap", SignalKind.SCRAP_COUNT, counter_bits=16),
        signal("nozzle_c", SignalKind.TEMPERATURE, unit="°C"),
        signal("job", SignalKind.JOB),
    ),
)

SENSOR_BOX = template("sensorbox", Role.INSPECT, 120.0, status_codes=STATUS_CODES,
                      signals=(signal("status", SignalKind.STATUS),))


def build_fleet() -> FleetSpec:
    s1 = site(
        "s1", machine("P1", PRINTER), machine("P2", PRINTER), machine("B1", SENSOR_BOX, poll_interval_s=2.0),
        name="Berlin print shop", timezone="Europe/Berlin", calendar=day_shift(6, 14),
        inventory=(item("FIL", name="PLA filament", unit="kg", reorder_point=10.0, reorder_qty=100.0,
                        lead_time_d=2.0),),
        daily_plan_units=400,
    )
    s2 = site("s2", machine("C1", PRINTER), name="Newark night shop", timezone="America/New_York",
              calendar=day_shift(22, 6, weekdays=EVERY_DAY, name="night"))
    alarms = (
        rule("hot", AlarmKind.ABOVE, priority=Priority.HIGH, message="nozzle too hot", signal="nozzle_c",
             threshold=250.0, for_s=30.0, templates={"printer"}),
        rule("low", AlarmKind.STOCK_BELOW_REORDER, message="stock below reorder point"),
        rule("down", AlarmKind.MACHINE_DOWN, priority=Priority.URGENT, message="machine down for 10 min",
             for_s=600.0, sites={"s1"}),
    )
    return fleet_of(s1, s2, id="test", name="Test fleet", alarms=alarms)


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
