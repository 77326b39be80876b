"""The Shift page in real headless Chromium: classify a stop and shelve an alarm, both through a real collector.

The history is ``tests/dashboard/history.py``'s ten hours up to ``NOW`` (Wednesday 12:00 UTC); Berlin's early
shift runs 06:00-14:00 local (05:00-13:00 UTC), so the page opens on it "so far". Berlin's P3 stops reporting
at 11:44:03 UTC: from then on without a known status, the one stop of the shift that needs a person. The
collector (``running_collector``, the SQLite store's only writer) serves its endpoint on 127.0.0.1; the
dashboard reads the same file read-only, its clock stopped at ``NOW``: the shift in progress is shown to
just after now (a millisecond), so what is recorded at 12:00 is in it. ``TWIN_SCREENSHOTS=1`` writes
docs/screenshots/shift.png (1440x900) and shift-phone.png (390x844).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
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
STALE_START = "2026-01-07T11:44:03+00:00"  # P3's last report: from then on its status is unknown
STALE_S = 957.001  # to the end of the shift so far, a millisecond after 12:00:00


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not available():
        pytest.skip("no /usr/bin/chromium")
    with launched(sync_api) as b:
        yield b


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=30) as resp:  # the local dashboard, no login (loopback)
        return int(resp.status), str(resp.headers.get("Content-Type", "")), resp.read()


def test_classify_a_stop_and_shelve_an_alarm_then_see_both_in_the_journal_and_the_report(
        browser, store_path: Path, fleet: FleetSpec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    copy = tmp_path / "twin.sqlite"
    copy.write_bytes(store_path.read_bytes())

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
                page = new_page(browser, 1440, 900, errors)
                page.goto(url + "/shift?site=pod-berlin")
                page.wait_for_selector("#shift-tiles:has-text('Needs a person')")
                # before: the 957 s of P3 need a person (16 min on the tile), the Pareto names them so
                assert "Needs a person\n16 min" in page.inner_text("#shift-tiles")
                assert "early · Wed 2026-01-07 06:00" in page.inner_text("#shift-window")
                page.wait_for_selector("#shift-pareto .xtick:has-text('needs a person')")

                picker = json.dumps({"stop": f"P3|{STALE_START}", "type": "shift-reason"}, separators=(",", ":"))
                page.locator(f"[id='{picker}']").click()
                page.locator(".dash-dropdown-option", has_text=re.compile(r"^blocked \(unplanned\)$")).click()
                page.fill("#shift-stop-comment", "outfeed conveyor full")
                page.click("#shift-classify")
                page.wait_for_selector("#shift-classify-result:has-text('1 stop(s) classified by local.')")
                # read back from the history: nothing needs a person now, the stop says who and why
                page.wait_for_function("document.querySelector('#shift-tiles').innerText.includes('person\\n0 min')")
                page.wait_for_selector("#shift-stops tr:has-text('local'):has-text('outfeed conveyor full')")
                page.wait_for_selector("#shift-pareto .xtick:has-text('blocked')")

                page.locator("#shift-alarm-key").click()
                page.locator(".dash-dropdown-option", has_text="stock-below-reorder:PLA-1KG").click()
                page.locator("#shift-shelve-kind input[value='timed']").check()
                page.fill("#shift-shelve-min", "30")
                page.click("#shift-shelve")  # no comment: refused here, nothing recorded
                page.wait_for_selector("#shift-shelve-result:has-text('say why')")
                page.fill("#shift-shelve-comment", "reorder placed, truck due 14:00")
                page.click("#shift-shelve")
                page.wait_for_selector("#shift-shelve-result:has-text('shelved for 30 min by local')")
                page.wait_for_selector("#shift-shelving-table tr:has-text('stock-below-reorder:PLA-1KG')"
                                       ":has-text('shelved'):has-text('reorder placed, truck due 14:00')")
                if SHOTS:
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=str(ROOT / "docs" / "screenshots" / "shift.png"), full_page=True)
                    page.set_viewport_size({"width": 390, "height": 844})
                    page.wait_for_timeout(800)  # charts redraw at the new width
                    page.screenshot(path=str(ROOT / "docs" / "screenshots" / "shift-phone.png"), full_page=True)

                # the journal in the history: both events as the collector committed them
                mine = [e for e in reader.events("pod-berlin", NOW - timedelta(hours=1), clock())
                        if e.kind in (EventKind.STOP_CLASSIFIED, EventKind.ALARM_SHELVING)]
                assert [(e.kind, e.asset, e.data["user"]) for e in mine] == [
                    (EventKind.STOP_CLASSIFIED, "P3", "local"), (EventKind.ALARM_SHELVING, "PLA-1KG", "local")]
                assert (mine[0].data["start"], mine[0].data["reason"]) == (STALE_START, "blocked")
                assert (mine[1].data["shelve"], mine[1].data["duration_s"]) == ("timed", 1800.0)

                # the downloaded report: the same stop and shelving, and the Pareto's numbers
                html_link = page.get_attribute("#shift-report-html", "href")
                status, kind, body = _get(url + str(html_link))
                text = body.decode("utf-8")
                assert status == 200 and kind.startswith("text/html")
                assert f"<td>blocked</td><td>{STALE_S / 60:.1f}</td><td>1</td>" in text  # 15.95 min
                assert "Needs a person<b>0 min</b>" in text
                assert "<td>local, 2026-01-07 13:00: outfeed conveyor full</td>" in text  # who, when (CET), why
                assert ("<td>stock-below-reorder:PLA-1KG</td><td>shelved</td><td>local</td>"
                        "<td>reorder placed, truck due 14:00 (until 2026-01-07T12:30:00+00:00)</td>") in text
                if page.locator("#shift-report-pdf").count():
                    status, kind, pdf = _get(url + str(page.get_attribute("#shift-report-pdf", "href")))
                    assert status == 200 and kind == "application/pdf" and pdf.startswith(b"%PDF")
                    (tmp_path / "report.pdf").write_bytes(pdf)
                    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(tmp_path / "report.pdf"),
                                    str(tmp_path / "page")], check=True, timeout=60)
                    assert (tmp_path / "page-1.png").stat().st_size > 10_000
                else:
                    assert "WeasyPrint" in page.inner_text("#shift-report-no-pdf")
                page.close()
        finally:
            reports.close()
            queries.close()
            reader.close()
    assert errors == []
