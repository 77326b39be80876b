"""The live feed skips what a backfill already committed (``FeedEmulator(after=...)``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.config import load
from connectors.emulator.feeds import FeedEmulator
from connectors.emulator.plant import Plant

FLEET = load("examples/fleet.toml").fleet
START = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday


def test_records_at_or_before_after_are_not_written(tmp_path: Path) -> None:
    end, after = START + timedelta(days=2), START + timedelta(days=1)
    # the same seed makes the same records: count, on a twin plant, those later than `after`
    reference = Plant(FLEET, seed=3, start=START)
    reference.advance(end)
    timed = reference.take_records()
    later = sum(1 for t, _ in timed if t > after)
    assert 0 < later < len(timed)
    plant = Plant(FLEET, seed=3, start=START)
    feeds = FeedEmulator(FLEET, plant, tmp_path, seed=3, after=after)
    plant.advance(end)
    feeds.step(end)
    assert feeds.orders_written + feeds.shipments_written == later
