"""An acknowledgement goes from the dashboard to the collector's endpoint and back through the history.

A real collector (``connectors.collector.Collector``, the SQLite store's only writer) serves its
feed endpoint on 127.0.0.1 from an event loop on a thread; the dashboard's ``QueryService`` reads
the same file read-only and records through ``CollectorRecorder`` (urllib), as ``twin dashboard``
does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import NOW

from connectors.collector import Collector
from connectors.feeds.endpoint import FeedEndpoint
from connectors.feeds.intake import Intake
from connectors.feeds.ledger import Ledger
from connectors.feeds.recorder import CollectorRecorder
from connectors.store import SqliteHistorian
from dashboard.queries import QueryService
from tests.conftest import free_port
from twin.errors import AlarmError, HistorianError
from twin.spec import FleetSpec, SiteId
from twin.state import Event, EventKind

pytestmark = [pytest.mark.server]

TOKEN = "collector-s3cret"
KEY = "machine-down:CNC1"  # CNC1 at pod-lyon is in FAULT for the last 40 minutes (history.py)


@contextmanager
def running_collector(path: Path, fleet: FleetSpec, tmp: Path) -> Iterator[str]:
    """The collector over the store at ``path``, with its endpoint; yields the endpoint's URL."""
    store = SqliteHistorian(path, fleet)
    ledger = Ledger(tmp / "feeds.db")
    collector = Collector(fleet, [], store, flush_interval_s=0.05)
    endpoint = FeedEndpoint(Intake(fleet, ledger), collector.submit, token=TOKEN, port=0, record=collector.record)
    collector.add_source(endpoint)
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
        for _ in range(500):
            if endpoint.port or errors:
                break
            threading.Event().wait(0.01)
        assert endpoint.port and not errors, errors
        yield f"http://127.0.0.1:{endpoint.port}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        ledger.close()
        store.close()
    assert not errors, errors


@pytest.fixture
def history_copy(store_path: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "twin.sqlite"
    copy.write_bytes(store_path.read_bytes())
    return copy


def test_an_acknowledgement_goes_through_the_collector_and_comes_back_from_history(
        history_copy: Path, fleet: FleetSpec, tmp_path: Path) -> None:
    with running_collector(history_copy, fleet, tmp_path) as url:
        reader = SqliteHistorian(history_copy, fleet, readonly=True)  # the dashboard's: it cannot write
        recorder = CollectorRecorder(url, TOKEN, timeout=10.0)
        queries = QueryService(fleet=fleet, historian=reader, clock=lambda: NOW, recorder=recorder)
        try:
            assert [r.key for r in queries.alarm_rows(sites=["pod-lyon"], priorities=None, states=["unacked"],
                                                      hours=24)] == [KEY]
            event = queries.acknowledge(site="pod-lyon", key=KEY, user="erin", comment="spindle swapped")
            # read back right after: the collector answered only once it had committed the event
            [row] = queries.alarm_rows(sites=["pod-lyon"], priorities=None, states=["acked"], hours=24)
            assert (row.key, row.acked_by, row.ack_comment) == (KEY, "erin", "spindle swapped")
            assert queries.alarm_rows(sites=["pod-lyon"], priorities=None, states=["unacked"], hours=24) == []
            stored = [e for e in reader.events("pod-lyon", NOW, NOW) if e.kind is EventKind.ALARM_ACKNOWLEDGED]
            assert stored == [event]

            # the collector's reason reaches the user: an event the dashboard would never send
            with pytest.raises(AlarmError, match=r"^not recorded: the collector rejected it: unknown site 'pod-x'$"):
                recorder.record((replace(event, site=SiteId("pod-x")),))
            wrong = CollectorRecorder(url, "not-the-token")
            with pytest.raises(HistorianError, match=r"refused the token \(401\)") as refused:
                wrong.record((event,))
            assert "not-the-token" not in str(refused.value) and "not-the-token" not in repr(wrong)
            assert TOKEN not in repr(recorder)
        finally:
            queries.close()
            reader.close()


def test_a_collector_that_is_not_running_is_said_so(fleet: FleetSpec) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    event = Event(ts=NOW, site=SiteId("pod-lyon"), asset="CNC1", kind=EventKind.ALARM_ACKNOWLEDGED,
                  message="acknowledged by erin")
    with pytest.raises(HistorianError, match=r"^not recorded: the collector at .*/api/v1/events cannot be "
                                             r"reached \(.*\); is twin collect running with \[feeds.http\]\?$"):
        CollectorRecorder(url, TOKEN, timeout=2.0).record((event,))


def test_without_a_recorder_acknowledging_says_what_it_needs(history_copy: Path, fleet: FleetSpec) -> None:
    reader = SqliteHistorian(history_copy, fleet, readonly=True)
    queries = QueryService(fleet=fleet, historian=reader, clock=lambda: NOW)
    try:
        with pytest.raises(AlarmError, match=r"needs the collector's endpoint \(\[feeds.http\] in the plant file\)"):
            queries.acknowledge(site="pod-lyon", key=KEY, user="erin", comment="")
        with pytest.raises(AlarmError, match="no alarm 'nope:X'"):  # the checks come first, as before
            queries.acknowledge(site="pod-lyon", key="nope:X", user="erin", comment="")
    finally:
        reader.close()
