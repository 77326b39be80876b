"""The Alarms page in real headless Chromium: a shelved alarm's row says who, why and until when.

The history is ``tests/dashboard/history.py``'s ten hours up to ``NOW`` (Wednesday 12:00 UTC), with four
alarm events of our own at Berlin written to a copy of the store, as the collector would have:

* ``nozzle-hot:P1`` raised at 11:00 UTC, shelved (timed, 3600 s) by ``ana`` at 11:10 with "known drift":
  until 12:10 UTC, shown as 13:10 CET in Berlin's zone (the CSV keeps UTC);
* P2 put in maintenance at 11:24:30 (the history's ticks are at even minutes: its next status is at 11:26),
  ``nozzle-hot:P2`` raised at 11:25: suppressed by design.

The dashboard reads the copy read-only, its clock stopped at ``NOW``. ``TWIN_SCREENSHOTS=1`` writes
docs/screenshots/alarms.png (1440x900) and alarms-phone.png (390x844: one stacked column per alarm).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from chromium import available, launched, new_page
from conftest import NOW, ROOT
from serve import serving

from connectors.export import ALARM_JOURNAL_FIELDS
from connectors.store import SqliteHistorian
from dashboard.app import create_app
from dashboard.queries import QueryService
from dashboard.services import Services
from tests.conftest import free_port
from twin.frozen import FrozenDict
from twin.spec import FleetSpec, SiteId
from twin.state import Event, EventKind

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

sync_api = pytest.importorskip("playwright.sync_api")
SHOTS = os.environ.get("TWIN_SCREENSHOTS") == "1"


def _ev(at: datetime, kind: EventKind, asset: str, message: str = "", **data: object) -> Event:
    return Event(ts=at, site=SiteId("pod-berlin"), asset=asset, kind=kind, message=message,
                 data=FrozenDict(data))  # type: ignore[arg-type]


def _ours() -> list[Event]:
    h = NOW - timedelta(hours=1)  # 11:00 UTC
    return [
        _ev(h, EventKind.ALARM_RAISED, "P1", "P1 nozzle too hot", rule="nozzle-hot", key="nozzle-hot:P1",
            priority=3),
        _ev(h + timedelta(minutes=10), EventKind.ALARM_SHELVING, "P1", rule="nozzle-hot", key="nozzle-hot:P1",
            change="shelved", shelve="timed", duration_s=3600.0, user="ana", comment="known drift"),
        _ev(h + timedelta(minutes=24, seconds=30), EventKind.STATUS_CHANGE, "P2", "P2 in maintenance",
            to="maintenance"),
        _ev(h + timedelta(minutes=25), EventKind.ALARM_RAISED, "P2", "P2 nozzle too hot", rule="nozzle-hot",
            key="nozzle-hot:P2", priority=2),
    ]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not available():
        pytest.skip("no /usr/bin/chromium")
    with launched(sync_api) as b:
        yield b


def test_a_shelved_alarm_says_who_why_and_until_and_the_filter_hides_it(
        browser, store_path: Path, fleet: FleetSpec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    copy = tmp_path / "twin.sqlite"
    copy.write_bytes(store_path.read_bytes())
    writer = SqliteHistorian(copy, fleet)
    writer.write([], events=_ours())
    writer.close()
    reader = SqliteHistorian(copy, fleet, readonly=True)
    queries = QueryService(fleet=fleet, historian=reader, clock=lambda: NOW)
    app = create_app(Services(queries=queries), refresh_s=60)
    errors: list[str] = []
    try:
        with serving(app, free_port()) as url:
            page = new_page(browser, 1440, 900, errors)
            page.goto(url + "/alarms")
            shelved = page.locator(".ag-row:has-text('P1 nozzle too hot')").first
            shelved.wait_for()
            # 11:10 + 3600 s = 12:10 UTC = 13:10 CET (Berlin is UTC+1 in January)
            assert shelved.locator("[col-id='shelved']").inner_text() == "timed until 2026-01-07 13:10 CET"
            assert shelved.locator("[col-id='shelved_by']").inner_text() == "ana"
            assert shelved.locator("[col-id='shelved_why']").inner_text() == "known drift"
            assert shelved.locator("[col-id='suppressed']").inner_text() == "no"
            hidden = page.locator(".ag-row:has-text('P2 nozzle too hot')").first
            assert hidden.locator("[col-id='suppressed']").inner_text() == "yes"  # raised in maintenance
            assert hidden.locator("[col-id='shelved']").inner_text() == "no"
            if SHOTS:
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(ROOT / "docs" / "screenshots" / "alarms.png"), full_page=True)

            # on a phone: one stacked column per alarm, the shelving and the suppression in it, no sideways scroll
            phone = new_page(browser, 390, 844, errors)
            phone.goto(url + "/alarms")
            cell = phone.locator(".ag-row:has-text('P1 nozzle too hot') [col-id='summary']").first
            cell.wait_for()
            assert "shelved: timed until 2026-01-07 13:10 CET by ana: known drift" in cell.inner_text()
            other = phone.locator(".ag-row:has-text('P2 nozzle too hot') [col-id='summary']").first
            assert "suppressed by design" in other.inner_text()
            assert phone.locator("[col-id='shelved_by']").count() == 0  # the secondary columns are folded in
            assert phone.evaluate("document.documentElement.scrollWidth") <= 390
            grid = phone.locator("#alarms-grid .ag-center-cols-viewport").first
            assert grid.evaluate("e => e.scrollWidth <= e.clientWidth + 1")  # nor inside the grid
            if SHOTS:
                phone.wait_for_load_state("networkidle")
                phone.screenshot(path=str(ROOT / "docs" / "screenshots" / "alarms-phone.png"), full_page=True)
            phone.locator("#alarms-details input[value='all']").check()  # every column, on request
            phone.locator(".ag-row:has-text('P1 nozzle too hot') [col-id='shelved_by']").first.wait_for()
            phone.close()

            # the page's CSV: the same columns as `twin export --what alarms`, the until in UTC
            with page.expect_download() as dl:
                page.click("#alarms-export")
            rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text(encoding="utf-8"))))
            mine = {r["message"]: r for r in rows if "nozzle too hot" in r["message"]}
            assert list(rows[0]) == list(ALARM_JOURNAL_FIELDS)
            p1, p2 = mine["P1 nozzle too hot"], mine["P2 nozzle too hot"]
            assert (p1["shelved"], p1["shelved_by"], p1["shelved_why"], p1["suppressed"]) == (
                "timed until 2026-01-07T12:10:00+00:00", "ana", "known drift", "no")
            assert (p2["shelved"], p2["suppressed"]) == ("no", "yes")

            page.locator("#alarms-hide input[value='hide shelved']").check()
            page.wait_for_selector(".ag-row:has-text('P1 nozzle too hot')", state="detached")
            assert page.locator(".ag-row:has-text('P2 nozzle too hot')").count() == 1  # only suppressed: kept
            page.locator("#alarms-hide input[value='hide suppressed']").check()
            page.wait_for_selector(".ag-row:has-text('P2 nozzle too hot')", state="detached")
            assert errors == []
    finally:
        reader.close()
