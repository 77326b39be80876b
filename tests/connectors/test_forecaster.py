"""The forecaster in a real collector over a real SQLite store of emulated history with degradation.

Fourteen days of Berlin backfilled with the degrading truth (``tests/twin/health/degrading_truth.toml``,
the store of ``tests/dashboard/test_health.py``). The fleet keeps only the ``failure-risk`` rule
(threshold 0.3 within 8 h). A collector runs with its feed endpoint and the forecaster as one of its
sources (first forecast at once), its clock fixed: at 24 November 08:00 UTC printer P3's risk, from
a ``HealthMonitor`` of the test's own over the same history (fitted then, refitted every 6 h), is
about 47 % (above 0.3): the collector
raises ``failure-risk:P3`` carrying that probability, and only that alarm (the other machines are
below 6 %). The dashboard's ``QueryService`` acknowledges it through the collector's endpoint. The
clock moves to 09:00: P3's risk is about 6 % (the same monitor), below 0.3 - 0.05: the collector's
next forecast clears it.
The journal (``connectors.export.journal_rows``) shows raised, acknowledged, cleared.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.collector import Collector, resume_state
from connectors.config import load
from connectors.config.forecaster import ForecasterConfig
from connectors.emulator.backfill import backfill
from connectors.emulator.truth import load_truth
from connectors.export import journal_rows
from connectors.feeds.endpoint import FeedEndpoint
from connectors.feeds.intake import Intake
from connectors.feeds.ledger import Ledger
from connectors.feeds.recorder import CollectorRecorder
from connectors.forecaster import Forecaster
from connectors.store import SqliteHistorian
from dashboard.queries import QueryService
from twin.health.monitor import HealthMonitor
from twin.spec import FleetSpec
from twin.state import EventKind

pytestmark = [pytest.mark.server, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TRUTH = ROOT / "tests" / "twin" / "health" / "degrading_truth.toml"
END = datetime(2026, 11, 30, 6, tzinfo=UTC)
SITE = "pod-berlin"
WORN = datetime(2026, 11, 24, 8, tzinfo=UTC)  # P3 worn: ~47 % within 8 h
CALM = WORN + timedelta(hours=1)  # ~6 %
TOKEN = "forecaster-test-token"
KEY = "failure-risk:P3"


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[FleetSpec, Path]:
    full = load(ROOT / "examples" / "fleet.toml").fleet
    fleet = dataclasses.replace(full, sites=(full.site(SITE),),
                                alarms=tuple(r for r in full.alarms if r.id == "failure-risk"))
    db = tmp_path_factory.mktemp("forecaster") / "history.db"
    store = SqliteHistorian(db, fleet)
    try:
        backfill(fleet, store, start=END - timedelta(days=14), end=END, step_s=300.0, seed=7,
                 truth=load_truth(TRUTH, fleet))
    finally:
        store.close()
    return fleet, db


@contextmanager
def collecting(db: Path, fleet: FleetSpec, now: list[datetime], tmp: Path) -> Iterator[tuple[str, Forecaster]]:
    """A collector at ``now[0]`` (resumed from the store), its endpoint and a forecaster every 0.2 s; yields the URL.

    The clock is ``now[0]``: the test moves it (the history already holds the readings up to then).
    This collector gets no readings (they are in the history already), so it must not record what
    it would make of their absence: its fleet never goes stale and it writes a site's checkpoint
    only with the site's events.
    """
    store = SqliteHistorian(db, fleet)
    ledger = Ledger(tmp / "feeds.db")
    collector = Collector(dataclasses.replace(fleet, stale_after_polls=1e9), [], store, clock=lambda: now[0],
                          flush_interval_s=0.05, checkpoint_interval_s=1e9, state=resume_state(fleet, store, now[0]))
    forecaster = Forecaster(fleet, ForecasterConfig(enabled=True, first_delay_s=0.0, every_s=0.2),
                            lambda: SqliteHistorian(db, fleet, readonly=True), deliver=collector.submit_forecast,
                            current=lambda: collector.state, clock=lambda: now[0])
    endpoint = FeedEndpoint(Intake(fleet, ledger), collector.submit, token=TOKEN, port=0, record=collector.record)
    collector.add_source(endpoint)
    collector.add_source(forecaster)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    errors: list[BaseException] = []

    def main() -> None:
        try:
            loop.run_until_complete(collector.run(stop))
        except BaseException as exc:
            errors.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=main, name="collector", daemon=True)
    thread.start()
    try:
        for _ in range(3000):  # at most 30 s: the endpoint is up and the first forecast is committed
            if errors or (endpoint.port and forecaster.cycles and collector.flushes >= 2
                          and collector._pending_forecast is None):
                break
            threading.Event().wait(0.01)
        assert endpoint.port and forecaster.cycles >= 1 and not errors, errors
        threading.Event().wait(0.2)  # one more flush: the batch with the forecast's events is written
        yield f"http://127.0.0.1:{endpoint.port}", forecaster
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        ledger.close()
        store.close()
    assert not errors, errors


def _p3(fleet: FleetSpec, db: Path, *at: datetime) -> float:
    """P3's risk from a monitor of the test's own refreshed at each of ``at`` (fitted at the first: 6 h refits)."""
    store = SqliteHistorian(db, fleet, readonly=True)
    try:
        monitor = HealthMonitor(fleet)
        return [next(h.risk.p for h in monitor.refresh(store, t).machines if h.machine == "P3") for t in at][-1]
    finally:
        store.close()


def test_raised_acknowledged_through_the_collector_cleared(stored: tuple[FleetSpec, Path], tmp_path: Path) -> None:
    fleet, original = stored
    db = tmp_path / "history.db"
    shutil.copy(original, db)
    worn, calm = _p3(fleet, db, WORN), _p3(fleet, db, WORN, CALM)
    assert worn > 0.3 and calm < 0.25  # the history does what the test needs (~0.47, ~0.06)

    now = [WORN]
    with collecting(db, fleet, now, tmp_path) as (url, forecaster):
        assert forecaster.last is not None
        risks = {r.asset: r.probability for r in forecaster.last.risks}
        assert risks["P3"] == pytest.approx(worn)
        assert [a for a, p in risks.items() if p > 0.3] == ["P3"]
        reader = SqliteHistorian(db, fleet, readonly=True)
        queries = QueryService(fleet=fleet, historian=reader, clock=lambda: now[0],
                               recorder=CollectorRecorder(url, TOKEN, timeout=10.0))
        try:
            raised = [e for e in reader.events(SITE, WORN, WORN) if e.kind is EventKind.ALARM_RAISED]
            assert [(e.asset, e.data["key"]) for e in raised] == [("P3", KEY)]  # once, however many cycles
            assert raised[0].data["probability"] == round(worn, 4)
            assert raised[0].message == f"P3: Failure likely: {round(100 * worn)} % chance of failure within 8 h"
            [row] = queries.alarm_rows(sites=[SITE], priorities=None, states=["unacked"], hours=24)
            assert row.key == KEY and row.active
            queries.acknowledge(site=SITE, key=KEY, user="erin", comment="nozzle ordered")
            [row] = queries.alarm_rows(sites=[SITE], priorities=None, states=["acked"], hours=24)
            assert (row.key, row.acked_by) == (KEY, "erin")
        finally:
            queries.close()
            reader.close()
        now[0] = CALM  # an hour on: the next forecasts see P3 calm
        cycles = forecaster.cycles
        for _ in range(3000):  # at most 30 s: two cycles at the new time, the clearing written
            if forecaster.cycles >= cycles + 2:
                break
            threading.Event().wait(0.01)
        threading.Event().wait(0.2)
        assert forecaster.last is not None and forecaster.last.at == CALM
        assert {r.asset: r.probability for r in forecaster.last.risks}["P3"] == pytest.approx(calm)

    reader = SqliteHistorian(db, fleet, readonly=True)
    try:
        events = reader.events(SITE, WORN, CALM)
        [cleared] = [e for e in events if e.kind is EventKind.ALARM_CLEARED]
        assert cleared.ts == CALM and cleared.asset == "P3" and cleared.data["probability"] == round(calm, 4)
        [journal] = journal_rows(events)
        assert journal["state"] == "cleared/acked" and journal["acked_by"] == "erin"
        assert journal["raised"].startswith("2026-11-24T08:00") and journal["cleared"].startswith("2026-11-24T09:00")
    finally:
        reader.close()
