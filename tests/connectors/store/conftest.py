"""Fixtures of the embedded-historian tests: a small fleet and a store in a temporary file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.store import SqliteHistorian
from tests.fleets import EVERY_DAY, codes, day_shift, item, machine, rule, signal, site, template
from tests.fleets import fleet as fleet_of  # the fixture below is called fleet
from twin.spec import AlarmKind, FleetSpec, Priority, Role, SignalKind

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

PRINTER = template("printer", Role.PRINT, 60.0, status_codes=codes(0, 1, 2, 3), signals=(
    signal("status", SignalKind.STATUS), signal("good", SignalKind.GOOD_COUNT),
    signal("scrap", SignalKind.SCRAP_COUNT), signal("temp_c", SignalKind.TEMPERATURE, unit="°C"),
))


def make_fleet(machines: int = 2) -> FleetSpec:
    s1 = site("s1", *(machine(f"P{i + 1}", PRINTER) for i in range(machines)), name="Site 1",
              calendar=day_shift(0, 0, weekdays=EVERY_DAY),
              inventory=(item("PLA", name="PLA spool", unit="kg", reorder_point=5.0, reorder_qty=20.0,
                              lead_time_d=2.0, poll_interval_s=1.0),))
    alarms = (
        rule("hot", AlarmKind.ABOVE, priority=Priority.HIGH, message="too hot", signal="temp_c", threshold=240.0,
             for_s=3.0),
        rule("low", AlarmKind.STOCK_BELOW_REORDER, message="reorder"),
        rule("down", AlarmKind.MACHINE_DOWN, priority=Priority.URGENT, message="down", for_s=2.0),
    )
    return fleet_of(s1, name="Fleet", templates=(PRINTER,), alarms=alarms)


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
