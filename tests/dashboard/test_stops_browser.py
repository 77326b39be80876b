"""The Site and Machine pages' "stops needing a reason" in real headless Chromium, through a real collector.

The history is ``tests/dashboard/history.py``'s ten hours up to ``NOW`` (Wednesday 12:00 UTC). Berlin's P3
stops reporting at 11:44:03 UTC: the one stop of today's shifts that no rule explains (its status is
unknown), 957 s so far, 16 min rounded. Both pages list it; the Machine page records a reason for it
through the collector (``running_collector``, the store's only writer), as the Shift page does, and both
lists are then empty. No horizontal page scroll at 390 px. ``TWIN_SCREENSHOTS=1`` writes
docs/screenshots/site.png, site-phone.png, machine.png and machine-phone.png.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from chromium import available, launched, new_page
from conftest import NOW, ROOT
from serve import serving
from test_ack_via_collector import TOKEN, running_collector

from app.report import DashboardReports
from connectors.feeds.recorder import CollectorRecorder
from connectors.store import SqliteHistorian
from dashboard.app import create_app
from dashboard.queries import QueryService
from dashboard.services import Services
from dashboard.shift_view import ShiftService
from tests.conftest import free_port
from twin.spec import FleetSpec
from twin.state import EventKind

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

sync_api = pytest.importorskip("playwright.sync_api")
SHOTS = os.environ.get("TWIN_SCREENSHOTS") == "1"
STALE_START = "2026-01-07T11:44:03+00:00"
EARLY = "2026-01-07T05:00:00+00:00"  # Berlin's early shift, 06:00 CET


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not available():
        pytest.skip("no /usr/bin/chromium")
    with launched(sync_api) as b:
        yield b


def _no_sideways_scroll(page) -> bool:  # type: ignore[no-untyped-def]
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_site_and_machine_pages_list_the_stop_and_the_machine_page_records_its_reason(
        browser, store_path: Path, fleet: FleetSpec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    copy = tmp_path / "twin.sqlite"
    copy.write_bytes(store_path.read_bytes())
    shots = ROOT / "docs" / "screenshots"

    def clock() -> datetime:
        return NOW

    with running_collector(copy, fleet, tmp_path) as collector_url:
        reader = SqliteHistorian(copy, fleet, readonly=True)
        queries = QueryService(fleet=fleet, historian=reader, clock=clock,
                               recorder=CollectorRecorder(collector_url, TOKEN, timeout=10.0))
        reports = DashboardReports(lambda: SqliteHistorian(copy, fleet, readonly=True), fleet)
        shifts = ShiftService(queries=queries, reports=reports, ttl_s=0.5)
        app = create_app(Services(queries=queries, extra={"shift": shifts}), refresh_s=60)
        errors: list[str] = []
        try:
            with serving(app, free_port()) as url:
                for width, height, suffix in ((1440, 900, ""), (390, 844, "-phone")):
                    page = new_page(browser, width, height, errors)
                    page.goto(url + "/site?site=pod-berlin")
                    row = page.locator("#site-stops .stop-needs-person")
                    row.first.wait_for()
                    # one stop: P3 from 12:44 CET, 16 min so far, status unknown, in the early shift
                    assert row.count() == 1
                    assert re.search(r"P3 .*12:44.* · 16 min · unknown · early", row.first.inner_text())
                    assert "1 stop(s), 16 min, need a reason" in page.inner_text("#site-stops")
                    assert _no_sideways_scroll(page)
                    if SHOTS:
                        page.wait_for_load_state("networkidle")
                        page.screenshot(path=str(shots / f"site{suffix}.png"), full_page=True)
                    page.goto(url + "/machine?site=pod-berlin&machine=P3")
                    page.locator("#machine-stops .stop-needs-person").first.wait_for()
                    assert _no_sideways_scroll(page)
                    if SHOTS:
                        page.wait_for_load_state("networkidle")
                        page.screenshot(path=str(shots / f"machine{suffix}.png"), full_page=True)
                    page.close()

                page = new_page(browser, 1440, 900, errors)
                page.goto(url + "/machine?site=pod-berlin&machine=P3")
                picker = json.dumps({"scope": "machine", "stop": f"P3|{STALE_START}|{EARLY}", "type": "stop-reason"},
                                    separators=(",", ":"))
                page.locator(f"[id='{picker}']").click()
                page.locator(".dash-dropdown-option", has_text=re.compile(r"^blocked \(unplanned\)$")).click()
                page.fill("#machine-stop-comment", "outfeed conveyor full")
                page.click("#machine-classify")
                page.wait_for_selector("#machine-classify-result:has-text('1 stop(s) classified by local.')")
                page.wait_for_selector("#machine-stops:has-text(\"No stop of today's shifts needs a reason.\")")
                page.goto(url + "/site?site=pod-berlin")
                page.wait_for_selector("#site-stops:has-text(\"No stop of today's shifts needs a reason.\")")
                page.close()

                mine = [e for e in reader.events("pod-berlin", NOW.replace(hour=11), clock())
                        if e.kind is EventKind.STOP_CLASSIFIED]
                assert [(e.asset, e.data["start"], e.data["reason"], e.data["user"], e.data["comment"])
                        for e in mine] == [("P3", STALE_START, "blocked", "local", "outfeed conveyor full")]
        finally:
            reports.close()
            queries.close()
            reader.close()
    assert errors == []
