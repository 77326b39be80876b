"""Fixtures of the feeds tests: the example fleet, a ledger in a temporary folder, a collector without devices."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.collector import Collector, LoggingSink
from connectors.config import load
from connectors.feeds.intake import Intake
from connectors.feeds.ledger import Ledger
from tests.conftest import EXAMPLES
from twin.spec import FleetSpec

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def fleet() -> FleetSpec:
    return load(EXAMPLES / "fleet.toml").fleet


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = Ledger(tmp_path / "feeds.db")
    yield led
    led.close()


@pytest.fixture
def intake(fleet: FleetSpec, ledger: Ledger) -> Intake:
    return Intake(fleet, ledger)


@pytest.fixture
def collector(fleet: FleetSpec) -> Collector:
    return Collector(fleet, [], LoggingSink(), clock=lambda: T0)
