"""The emulated ERP/logistics exports: deterministic for a seed, and consumed by the file drop into the twin."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.collector import Collector
from connectors.emulator.feeds import FeedEmulator
from connectors.emulator.plant import Plant
from connectors.feeds.drop import FileDrop
from connectors.feeds.intake import Intake
from connectors.feeds.parse import parse_file
from twin.business import BusinessRecord, OrderRecord
from twin.spec import FleetSpec

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday


def run_feeds(fleet: FleetSpec, folder: Path, seed: int, hours: int) -> FeedEmulator:
    plant = Plant(fleet, seed=seed, start=START)
    feeds = FeedEmulator(fleet, plant, folder, seed=seed)
    for h in range(1, hours + 1):
        t = START + timedelta(hours=h)
        plant.advance(t)
        feeds.step(t)
    return feeds


def contents(folder: Path) -> list[tuple[str, str]]:
    return sorted((p.name, p.read_text()) for p in folder.iterdir())


def test_same_seed_same_files(fleet: FleetSpec, tmp_path: Path) -> None:
    a = run_feeds(fleet, tmp_path / "a", seed=5, hours=24)
    run_feeds(fleet, tmp_path / "b", seed=5, hours=24)
    assert contents(tmp_path / "a") == contents(tmp_path / "b")
    assert not any(p.name.startswith(".") for p in (tmp_path / "a").iterdir())  # no temporary file left
    run_feeds(fleet, tmp_path / "c", seed=6, hours=24)
    assert contents(tmp_path / "a") != contents(tmp_path / "c")
    # Berlin alone expects 14 + 6 = 20 orders on a Monday (weekday factors 1): a day of the fleet
    # brings tens of orders, each written at least once
    assert a.orders_written >= 20


def test_the_files_hold_the_plants_records(fleet: FleetSpec, tmp_path: Path) -> None:
    # The files of a day, read back, are the very record versions the plant emitted (a second plant of
    # the same seed gives them to compare), in the same order, done_by_step included
    run_feeds(fleet, tmp_path, seed=5, hours=24)
    read: list[BusinessRecord] = []
    for p in sorted(tmp_path.iterdir()):  # kind, then step time, then a running number: in time order per kind
        lines, unreadable = parse_file(p.name, p.read_bytes())
        assert unreadable == "" and all(line.reason == "" for line in lines), p.name
        read += [line.record for line in lines if line.record is not None]
    plant = Plant(fleet, seed=5, start=START)
    plant.advance(START + timedelta(hours=24))
    emitted = [r for _, r in plant.take_records()]

    def orders(records: list[BusinessRecord]) -> list[BusinessRecord]:
        return [r for r in records if isinstance(r, OrderRecord)]

    def others(records: list[BusinessRecord]) -> list[BusinessRecord]:
        return [r for r in records if not isinstance(r, OrderRecord)]

    # one file per kind and step, orders before shipments: the order within each kind is kept
    assert orders(read) == orders(emitted) and others(read) == others(emitted)
    assert any(isinstance(r, OrderRecord) and 0 < r.done_by_step[0] < r.qty for r in read)  # part through step 1


def test_emulated_feeds_flow_into_the_twin(fleet: FleetSpec, tmp_path: Path, intake: Intake,
                                           collector: Collector) -> None:
    folder = tmp_path / "in"
    # nine days: stock is drawn only as units are made (weekdays at Berlin and Rotterdam), so it takes
    # a week or so until replenishments are ordered, some of them late and announced so
    feeds = run_feeds(fleet, folder, seed=7, hours=24 * 9)
    watcher = FileDrop(folder, intake, collector.submit)
    reports = watcher.scan()
    assert reports and all(r.rejected == 0 for r in reports)  # the emulator writes only valid records
    collector.apply_pending()
    state = collector.state
    open_orders = [o for s in state.sites.values() for o in s.orders]
    # orders close when the plant has made them: the last days' orders are still open, most others not
    assert 0 < len(open_orders) < feeds.orders_written
    # an open order is where the plant has it: part done at most, at a step of its routing (once the
    # plant moves it along, its versions go past 1)
    for o in open_orders:
        product = fleet.product(o.product)
        assert product is not None and 0 <= o.done_qty < o.qty
        assert o.operation in {r.value for r in product.routing}
        assert len(o.done_by_step) == len(product.routing) and o.done_by_step[-1] == o.done_qty
    assert any(o.version > 1 for o in open_orders)
    transit = [shp for s in state.sites.values() for inv in s.inventory.values() for shp in inv.in_transit if shp.id]
    assert transit, "nine days of consumption place replenishment orders still on their way"
    for shp in transit:
        assert shp.planned_eta is not None and shp.eta >= shp.planned_eta - timedelta(hours=1)
    # some shipments were announced delayed: a version 2 still in transit, with an ETA after the planned one
    files = (folder / "processed").glob("shipments-*.csv")
    rows = [r for p in files for r in csv.DictReader(io.StringIO(p.read_text()))]
    delayed = [r for r in rows if r["version"] == "2" and r["status"] == "in_transit"]
    assert delayed and all(r["eta"] > r["planned_eta"] for r in delayed)
    # the same files again change nothing
    for p in (folder / "processed").iterdir():
        p.rename(folder / p.name)
    again = watcher.scan()
    assert sum(r.accepted for r in again) == 0
    collector.apply_pending()
    assert collector.state.sites == state.sites
