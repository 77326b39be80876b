"""`twin backfill`: days of EMULATED history, orders and shipments included, written as the collector writes.

Real SQLite files (historian and feeds ledger), the real plant, the real intake: no mocks. The
reference every check compares with is the plant itself, run again with the same seed and start.
"""

from __future__ import annotations

import io
import tomllib
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tomli_w

from app import main
from connectors.config import load
from connectors.emulator.backfill import backfill, existing_data, sample_times
from connectors.emulator.feeds import FeedEmulator
from connectors.emulator.plant import Plant
from connectors.emulator.truth import parse_truth
from connectors.feeds.intake import Intake
from connectors.feeds.ledger import Ledger
from connectors.feeds.parse import parse_file
from connectors.store import SqliteHistorian
from twin.business import BusinessRecord, OrderRecord, OrderStatus, ShipmentRecord, ShipmentStatus, latest_records
from twin.spec import FleetSpec

from ..conftest import EXAMPLES

END = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a Thursday noon: the 3 days before hold two working days
DAYS = 3
STEP_S = 900.0  # 289 samples: coarse, but orders and shipments are exact at any moment whatever the step
SEED = 1  # a seed whose 3 days hold shipments announced, delayed (a second version) and arrived


def _config(folder: Path) -> Path:
    """The example fleet with its historian and feeds in ``folder``."""
    raw = tomllib.loads((EXAMPLES / "fleet.toml").read_text(encoding="utf-8"))
    raw["historian"]["path"] = str(folder / "history.db")
    raw["feeds"] = {"drop_dir": str(folder / "feeds" / "in"), "ledger": str(folder / "feeds.db")}
    path = folder / "fleet.toml"
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    return path


def _twin(*argv: str) -> tuple[int, str, str]:
    """Run the ``twin`` command in-process: (exit code, stdout, stderr); argparse's exits included."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


@dataclass(frozen=True, slots=True)
class Backfilled:
    config: Path
    fleet: FleetSpec
    output: str
    records: list[tuple[datetime, BusinessRecord]]  # the plant's own, from a second run


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Backfilled:
    folder = tmp_path_factory.mktemp("backfill")
    config = _config(folder)
    code, out, err = _twin("backfill", str(config), "--days", str(DAYS), "--seed", str(SEED),
                           "--end", END.isoformat(), "--step", str(STEP_S))
    assert code == 0, err
    fleet = load(config).fleet
    plant = Plant(fleet, seed=SEED, start=END - timedelta(days=DAYS))
    plant.advance(END)  # one jump: the order and stock processes do not depend on the sampling
    return Backfilled(config=config, fleet=fleet, output=out, records=plant.take_records())


@pytest.fixture
def store(backfilled: Backfilled) -> Iterator[SqliteHistorian]:
    cfg = load(backfilled.config)
    h = SqliteHistorian(cfg.historian.path, cfg.fleet, readonly=True)
    yield h
    h.close()


def _open_at(records: list[tuple[datetime, BusinessRecord]], site: str, t: datetime,
             ) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, datetime]]]:
    """What the plant's records had open at ``t``: orders (id, operation, done_qty), shipments (id, sku, eta)."""
    latest = latest_records([r for when, r in records if when <= t and r.site == site])
    orders = sorted((r.id, r.operation, r.done_qty) for r in latest
                    if isinstance(r, OrderRecord) and r.status is OrderStatus.OPEN)
    shipments = sorted((r.id, r.sku, r.eta) for r in latest
                       if isinstance(r, ShipmentRecord) and r.status is ShipmentStatus.IN_TRANSIT)
    return orders, shipments


def test_the_output_says_what_was_written_and_that_it_is_emulated(backfilled: Backfilled) -> None:
    out = backfilled.output
    assert "EMULATED" in out
    # 3 days every 900 s: 3 x 96 samples + the end itself
    assert "(289 samples)" in out
    orders = {r.id for _, r in backfilled.records if isinstance(r, OrderRecord)}
    assert f"orders: {len(orders):,} (" in out
    assert "--history-from 2026-11-23T12:00:00+00:00" in out  # how to continue it live
    assert "took" in out and "readings/s" in out


def test_state_at_any_past_moment_holds_the_orders_and_shipments_the_plant_had_open(
        backfilled: Backfilled, store: SqliteHistorian) -> None:
    start = END - timedelta(days=DAYS)
    # every 97 minutes and 13 s: moments between samples (every 15 min), never on one
    moments = [start + timedelta(minutes=97 * k, seconds=13) for k in range(1, DAYS * 24 * 60 // 97)]
    seen_orders = seen_shipments = 0
    for t in moments:
        for site in backfilled.fleet.sites:
            orders, shipments = _open_at(backfilled.records, site.id, t)
            st = store.state_at(site.id, t)
            assert st is not None
            got_orders = sorted((o.id, o.operation, o.done_qty) for o in st.orders)
            got_shipments = sorted((s.id, str(s.sku), s.eta) for it in st.inventory.values()
                                   for s in it.in_transit if s.id)
            assert got_orders == orders, (site.id, t)
            assert got_shipments == shipments, (site.id, t)
            seen_orders += len(orders)
            seen_shipments += len(shipments)
    # not vacuous: orders were open at most moments, and shipments were in transit at some
    assert seen_orders > len(moments)
    assert seen_shipments > 0
    # a delayed shipment shows its later ETA once the plant re-announced it (its version 2)
    delayed = [r for _, r in backfilled.records if isinstance(r, ShipmentRecord) and r.version == 2
               and r.status is ShipmentStatus.IN_TRANSIT]
    assert delayed


def test_the_order_events_are_stored_at_the_time_each_change_happened(
        backfilled: Backfilled, store: SqliteHistorian) -> None:
    start = END - timedelta(days=DAYS)
    firsts = {r.id: when for when, r in backfilled.records if isinstance(r, OrderRecord) and r.version == 1}
    events = [e for e in store.events(None, start, END) if e.kind.value == "order_received"]
    assert len(events) == len(firsts)
    assert all(e.ts == firsts[str(e.data["order"])] for e in events)


def test_a_second_backfill_over_the_same_range_is_refused_saying_what_is_there(backfilled: Backfilled) -> None:
    cfg = load(backfilled.config)
    before = cfg.historian.path.stat().st_size
    code, out, err = _twin("backfill", str(backfilled.config), "--days", str(DAYS), "--seed", str(SEED),
                           "--end", END.isoformat(), "--step", str(STEP_S))
    assert code == 1
    assert "already holds data in 2026-11-23T12:00:00Z .. 2026-11-26T12:00:00Z" in err
    # what is there: 289 samples of every signal, from the first sample to the last
    assert "readings of" in err and "from 2026-11-23T12:00:00Z to 2026-11-26T12:00:00Z" in err
    assert "refusing" in err
    assert out == ""
    # a range that only touches its last sample is refused as well, naming that sample
    code, _, err = _twin("backfill", str(backfilled.config), "--days", "2", "--seed", str(SEED),
                         "--start", END.isoformat())
    assert code == 1 and "from 2026-11-26T12:00:00Z to 2026-11-26T12:00:00Z" in err
    assert cfg.historian.path.stat().st_size == before


def test_the_live_feed_of_the_same_records_is_a_duplicate_for_the_ledger(
        backfilled: Backfilled, tmp_path: Path) -> None:
    cfg = load(backfilled.config)
    assert cfg.feeds is not None
    # the live emulator: a plant of the sites with PLCs, from the same start, its records as feed files
    plant = Plant(cfg.fleet, seed=SEED, start=END - timedelta(days=DAYS), sites={d.site for d in cfg.modbus})
    feeds = FeedEmulator(cfg.fleet, plant, tmp_path / "in", seed=SEED)
    plant.advance(END)
    files = feeds.step(END)
    lines = [ln for f in files for ln in parse_file(f.name, f.read_bytes())[0]]
    assert len(lines) == len(backfilled.records)
    ledger = Ledger(cfg.feeds.ledger_path(cfg.historian.path))
    try:
        got = Intake(cfg.fleet, ledger).take(lines)
    finally:
        ledger.close()
    # the ledger keeps the highest version of every id: the feed's copy of that version is a
    # duplicate, its earlier versions are late; nothing is accepted (applied twice) or rejected
    ids = {(r.kind, r.id) for _, r in backfilled.records}
    assert (got.accepted, got.duplicates, got.late, got.rejected) == (0, len(ids), len(lines) - len(ids), [])


def test_the_same_seed_writes_the_same_rows_and_another_seed_does_not(tmp_path: Path) -> None:
    fleet = load(EXAMPLES / "fleet.toml").fleet
    start, end = END - timedelta(hours=12), END

    def run(name: str, seed: int) -> SqliteHistorian:
        h = SqliteHistorian(tmp_path / f"{name}.db", fleet)
        ledger = Ledger(tmp_path / f"{name}-feeds.db")
        try:
            backfill(fleet, h, start=start, end=end, step_s=STEP_S, seed=seed, intake=Intake(fleet, ledger))
        finally:
            ledger.close()
        return h

    a, b, c = run("a", 5), run("b", 5), run("c", 6)
    try:
        for site in fleet.sites:
            assert a.readings(site.id, None, end) == b.readings(site.id, None, end)
            assert a.state_at(site.id, end) == b.state_at(site.id, end)
        assert a.events(None, start, end) == b.events(None, start, end)
        assert a.readings("pod-berlin", None, end) != c.readings("pod-berlin", None, end)
    finally:
        for h in (a, b, c):
            h.close()


def test_the_truth_file_reaches_the_plant(tmp_path: Path) -> None:
    fleet = load(EXAMPLES / "fleet.toml").fleet
    start = END - timedelta(days=1)
    # Austin's demand x 4: the plant draws 4 times as many order arrivals there (Poisson), the other
    # sites' streams are their own and do not change
    truth = parse_truth('[[sites]]\nsite = "pod-austin"\ndemand_factor = 4.0\n', fleet, source="truth.toml")
    counts: dict[str, dict[str, int]] = {}
    for name, t in (("plain", None), ("truth", truth)):
        h = SqliteHistorian(tmp_path / f"{name}.db", fleet)
        try:
            backfill(fleet, h, start=start, end=END, step_s=3600.0, seed=SEED, truth=t)
            events = h.events(None, start, END)
        finally:
            h.close()
        counts[name] = {s.id: sum(1 for e in events if e.site == s.id and e.kind.value == "order_received")
                        for s in fleet.sites}
    assert counts["truth"]["pod-berlin"] == counts["plain"]["pod-berlin"]
    assert counts["truth"]["pod-austin"] > 2 * counts["plain"]["pod-austin"] > 0


def test_older_history_can_be_sampled_coarser() -> None:
    t0 = datetime(2026, 11, 20, tzinfo=UTC)
    times = list(sample_times(t0, t0 + timedelta(days=2), 60.0, older_step_s=300.0,
                              fine_from=t0 + timedelta(days=1)))
    # the first day every 300 s (288 samples), the second every 60 s (1440), and the end
    assert len(times) == 288 + 1440 + 1
    assert times[288] == t0 + timedelta(days=1) and times[-1] == t0 + timedelta(days=2)


def test_thinned_older_checkpoints_show_the_orders_at_most_one_window_late(tmp_path: Path) -> None:
    fleet = load(EXAMPLES / "fleet.toml").fleet
    start, fine_from = END - timedelta(days=1), END - timedelta(hours=6)
    h = SqliteHistorian(tmp_path / "h.db", fleet)
    try:
        backfill(fleet, h, start=start, end=END, step_s=STEP_S, seed=SEED, fine_from=fine_from,
                 older_orders_every_s=3600.0)
        plant = Plant(fleet, seed=SEED, start=start)
        plant.advance(END)
        records = plant.take_records()
        for k in range(1, 24 * 4):
            t = start + timedelta(minutes=15 * k, seconds=7)
            for site in fleet.sites:
                st = h.state_at(site.id, t)
                assert st is not None
                got = sorted((o.id, o.operation, o.done_qty) for o in st.orders)
                if t >= fine_from:
                    assert got == _open_at(records, site.id, t)[0]  # exact in the fine part
                    continue
                # thinned: the state of the last checkpoint, which is exact at its own time: at worst
                # the orders just before this hour's window began, or those after a change within it
                window_start = start + timedelta(hours=int((t - start).total_seconds() // 3600))
                allowed = [_open_at(records, site.id, window_start - timedelta(microseconds=1))[0]]
                allowed += [_open_at(records, site.id, when)[0] for when, r in records
                            if window_start <= when <= t and r.site == site.id]
                assert got in allowed, (site.id, t)
    finally:
        h.close()


def test_existing_data_is_found_exactly_at_its_edges(backfilled: Backfilled, store: SqliteHistorian) -> None:
    start = END - timedelta(days=DAYS)
    assert existing_data(store, backfilled.fleet, END + timedelta(microseconds=1), END + timedelta(days=1)).empty
    assert existing_data(store, backfilled.fleet, start - timedelta(days=1), start - timedelta(microseconds=1)).empty
    there = existing_data(store, backfilled.fleet, start - timedelta(days=1), start + timedelta(minutes=20))
    # the samples at start and start + 15 min
    assert (there.first, there.last) == (start, start + timedelta(minutes=15))
    assert there.readings == 2 * there.signals > 0


FUTURE = (datetime.now(UTC) + timedelta(days=2)).isoformat()


@pytest.mark.parametrize(("argv", "names"), [
    (["--days", "0"], ["--days", "'0'"]),
    (["--days", "abc"], ["--days", "'abc'"]),
    (["--days", "inf"], ["--days", "'inf'"]),
    (["--days", "3", "--step", "-5"], ["--step", "'-5'"]),
    (["--days", "3", "--older-step", "nan"], ["--older-step", "'nan'"]),
    (["--days", "3", "--seed", "x"], ["--seed", "'x'"]),
    (["--days", "3", "--older-orders-every", "-1"], ["--older-orders-every", "'-1'"]),
    (["--days", "3", "--start", "2026-11-20T00:00:00"], ["--start", "needs a UTC offset", "2026-11-20T00:00:00"]),
    (["--days", "3", "--end", "yesterday"], ["--end", "'yesterday'"]),
    (["--days", "3", "--start", "2026-11-20T00:00:00Z", "--end", "2026-11-23T00:00:00Z"],
     ["--end", "not allowed with", "--start"]),
    (["--days", "3", "--end", FUTURE], ["--end", "future", FUTURE]),
    (["--days", "30", "--start", (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="seconds")],
     ["--start", "ends in the future"]),
    (["--days", "3", "--truth", "no/such/truth.toml"], ["--truth", "no/such/truth.toml"]),
    ([], ["--days", "required"]),
])
def test_bad_arguments_exit_2_naming_the_flag_and_the_value(tmp_path: Path, argv: list[str],
                                                            names: list[str]) -> None:
    config = _config(tmp_path)
    code, out, err = _twin("backfill", str(config), *argv)
    assert code == 2, (out, err)
    for name in names:
        assert name in err
    assert not (tmp_path / "history.db").exists()  # checked before the historian is opened


def test_a_truth_file_with_errors_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = _config(tmp_path)
    bad = tmp_path / "truth.toml"
    bad.write_text('[[machines]]\nsite = "pod-berlin"\nmachine = "CNC1"\nmtbf_h = -3\n', encoding="utf-8")
    code, _, err = _twin("backfill", str(config), "--days", "1", "--truth", str(bad))
    assert code == 2
    assert "truth.toml" in err and "machines[0].mtbf_h" in err and "-3" in err


def test_twin_emulate_names_a_missing_truth_file(tmp_path: Path) -> None:
    config = _config(tmp_path)
    code, _, err = _twin("emulate", str(config), "--truth", str(tmp_path / "missing.toml"), "--duration", "0.1")
    assert code == 2 and "--truth" in err and "missing.toml" in err


def test_the_live_emulator_continues_the_backfilled_plant_where_it_ended(
        backfilled: Backfilled, store: SqliteHistorian) -> None:
    from connectors.emulator.server import Emulator

    cfg = load(backfilled.config)
    # what `twin emulate --seed S --history-from START` builds when started at the backfill's end
    # (its clock fixed there): the plant of the sites with PLCs, fast-forwarded from the same start
    emu = Emulator(cfg.fleet, cfg.modbus, seed=SEED, start=END - timedelta(days=DAYS), resume_at=END,
                   clock=lambda: END)
    live_values = emu.plant.values()
    stored = {(r.site, r.asset, r.signal): r.value for site in cfg.fleet.sites
              for r in store.readings(site.id, END - timedelta(microseconds=1), END)}
    # sensor noise (temperatures, power, vibration) is drawn per sample; everything else is the
    # plant's state: statuses, counters, jobs, levels, stock, ETAs
    noisy = ("_c", "_kw", "_mm_s")
    keys = [k for k in stored if not k[2].endswith(noisy)]
    assert len(keys) > 100
    assert {k: live_values[k] for k in keys} == {k: stored[k] for k in keys}
