"""Fixtures of the Modbus tests: the small Modbus fleet with free ports."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.config import PlantConfig, load_text
from tests.conftest import free_port

HERE = Path(__file__).resolve().parent
FLEET = HERE / "fleet_modbus.toml"
IN_SHIFT = datetime(2026, 1, 5, 13, 0, tzinfo=UTC)
"""A plant start for tests that count production: Monday 14:00 in Berlin, 07:00 in Chicago, so both
sites are inside their shifts (pod-a 06-22, pod-b 06-14 local) for the next 7 hours (pod-a's next 8).
Outside its shifts a machine is OFF and makes nothing: a test starting the plant at the wall clock's
now would fail on nights and weekends."""


def fleet_text(**ports: int) -> str:
    """The test fleet's TOML with ports 15020/15021/15022 replaced."""
    text = FLEET.read_text()
    for old, new in ports.items():
        text = text.replace(f"port = {old.removeprefix('p')}", f"port = {new}")
    return text


@pytest.fixture
def modbus_cfg() -> PlantConfig:
    text = fleet_text(p15020=free_port(), p15021=free_port(), p15022=free_port())
    return load_text(text, source=FLEET)
