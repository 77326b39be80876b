"""A predictive alarm in real headless Chromium: P3's risk on its page, in the attention list, raised, acked, cleared.

The history and the collector are ``tests/connectors/test_forecaster.py``'s: fourteen days of Berlin
with the degrading truth, a real collector (its feed endpoint, the forecaster as a source, the
fleet's ``failure-risk`` rule: threshold 0.3 within 8 h) with its clock at 24 November 08:00 UTC,
when P3's risk is about 47 %. The dashboard reads the store read-only and acknowledges through the
collector's endpoint. P3's page shows the risk, the attention list has P3's line, the Alarms page
has ``P3: Failure likely: 47 % chance of failure within 8 h``, unacknowledged; the user
acknowledges it on the page; the clock moves to 09:00 (P3 about 6 %, below 0.3 - 0.05): the next
forecast clears it and the page says cleared/acked. ``TWIN_SCREENSHOTS=1`` writes
``docs/screenshots/alarm-predictive.png`` (1440 x 900) and ``alarm-predictive-phone.png`` (390 x 844).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromium import available, launched, new_page
from serve import serving

from connectors.feeds.recorder import CollectorRecorder
from connectors.store import SqliteHistorian
from dashboard.app import PROTECTED_OUTPUTS, create_app
from dashboard.attention import AttentionService, AttentionSettings
from dashboard.auth import settings_for
from dashboard.health import HealthService, fmt_risk
from dashboard.queries import QueryService
from dashboard.services import Services
from tests.conftest import free_port
from tests.connectors.test_forecaster import CALM, SITE, TOKEN, WORN, _p3, collecting, stored  # noqa: F401
from twin.spec import FleetSpec

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

sync_api = pytest.importorskip("playwright.sync_api")
SHOTS = os.environ.get("TWIN_SCREENSHOTS") == "1"
ROOT = Path(__file__).resolve().parents[2]

if not available():
    pytest.skip("no /usr/bin/chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with launched(sync_api) as b:
        yield b


def test_the_predictive_alarm_rises_is_acknowledged_and_clears(  # type: ignore[no-untyped-def]
        browser, stored: tuple[FleetSpec, Path], tmp_path: Path) -> None:  # noqa: F811
    fleet, original = stored
    db = tmp_path / "history.db"
    shutil.copy(original, db)
    worn = _p3(fleet, db, WORN)
    assert worn > 0.3
    text = f"Failure likely: {round(100 * worn)} % chance of failure within 8 h"  # the asset in its own column
    now = [WORN]
    errors: list[str] = []
    with collecting(db, fleet, now, tmp_path) as (url, forecaster):
        reader = SqliteHistorian(db, fleet, readonly=True)
        health = HealthService(fleet=fleet, open_historian=lambda: SqliteHistorian(db, fleet, readonly=True),
                               clock=lambda: now[0])
        health.refresh()
        queries = QueryService(fleet=fleet, historian=reader, clock=lambda: now[0],
                               recorder=CollectorRecorder(url, TOKEN, timeout=10.0))
        attention = AttentionService(queries=queries, settings=AttentionSettings(enabled=False), health=health)
        attention.refresh()
        app = create_app(Services(queries=queries, extra={"health": health, "attention": attention}),
                         auth=settings_for("127.0.0.1", env={}, protected=PROTECTED_OUTPUTS), refresh_s=2.0)
        try:
            with serving(app, free_port()) as dash:
                page = new_page(browser, 1440, 900, errors)
                # the risk on P3's page and its line in the attention list
                page.goto(dash + f"/machine?site={SITE}&machine=P3")
                risk = page.locator(".health-risk-8h")
                risk.wait_for()
                assert risk.inner_text().strip() == fmt_risk(worn)
                page.goto(dash + "/attention")
                page.locator(".attention-link", has_text="P3:").wait_for()
                # the predictive alarm, raised by the collector's forecast
                page.goto(dash + f"/alarms?site={SITE}")
                row = page.locator(".ag-row", has_text="chance of failure").first
                row.wait_for()
                assert text in row.inner_text() and "active/unacked" in row.inner_text()
                row.locator("input[type=checkbox]").first.check()
                page.fill("#alarms-comment", "nozzle ordered")
                page.click("#alarms-ack")
                page.wait_for_selector("#alarms-ack-result:has-text('acknowledged by local')")
                page.wait_for_selector(".ag-row:has-text('chance of failure'):has-text('active/acked')")
                if SHOTS:
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=str(ROOT / "docs" / "screenshots" / "alarm-predictive.png"))
                    page.set_viewport_size({"width": 390, "height": 844})
                    page.wait_for_timeout(800)
                    page.screenshot(path=str(ROOT / "docs" / "screenshots" / "alarm-predictive-phone.png"),
                                    full_page=True)
                    scroll = page.evaluate("() => document.documentElement.scrollWidth")
                    assert scroll <= 390, scroll  # no horizontal scroll on a phone
                    page.set_viewport_size({"width": 1440, "height": 900})
                # an hour on, P3 calm: the next forecast clears it
                now[0] = CALM
                cycles = forecaster.cycles
                for _ in range(3000):  # at most 30 s
                    if forecaster.cycles >= cycles + 2:
                        break
                    threading.Event().wait(0.01)
                threading.Event().wait(0.3)
                queries.invalidate()
                page.goto(dash + f"/alarms?site={SITE}")
                page.wait_for_selector(".ag-row:has-text('chance of failure'):has-text('cleared/acked')",
                                       timeout=20_000)
                assert errors == []
                page.close()
        finally:
            attention.stop()
            queries.close()
            reader.close()
