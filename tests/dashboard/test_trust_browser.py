"""The model-trust page in real headless Chromium: the service scores stored history, the page shows its figures.

A real ``TrustService`` scores the conftest's SQLite history (10 h of the example fleet) with a small
rolling backtest (3 origins, 2 h horizon, 3 replications) before the dashboard serves; the page at
``/trust?site=pod-lyon`` must show that site's output coverage exactly as the service computed it,
fit a 390 px phone without horizontal scrolling, and log no console errors. ``TWIN_SCREENSHOTS=1``
writes ``docs/screenshots/trust.png`` (1440 × 900, full page).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromium import available, launched, new_page
from conftest import NOW, ROOT
from serve import serving

from connectors.store import SqliteHistorian
from dashboard.app import PROTECTED_OUTPUTS, create_app
from dashboard.auth import settings_for
from dashboard.pages.trust import pct
from dashboard.queries import QueryService
from dashboard.services import Services
from dashboard.trust import TrustService, TrustSettings
from tests.conftest import free_port
from twin.spec import FleetSpec

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

sync_api = pytest.importorskip("playwright.sync_api")
SHOTS = os.environ.get("TWIN_SCREENSHOTS") == "1"
SMALL = TrustSettings(days=0.4, every_h=3.0, horizon_h=2.0, replications=3, calibrate_days=0.1)

if not available():
    pytest.skip("no /usr/bin/chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def served(store_path: Path, fleet: FleetSpec) -> Iterator[tuple[str, TrustService]]:
    trust = TrustService(fleet=fleet, open_historian=lambda: SqliteHistorian(store_path, fleet, readonly=True),
                         clock=lambda: NOW, settings=SMALL)
    trust.run_now()  # what the scheduler does shortly after start, here before the first page is served
    historian = SqliteHistorian(store_path, fleet, readonly=True)
    queries = QueryService(fleet=fleet, historian=historian, clock=lambda: NOW, derived_alarms=trust)
    app = create_app(Services(queries=queries, extra={"trust": trust}),
                     auth=settings_for("127.0.0.1", env={}, protected=PROTECTED_OUTPUTS), refresh_s=2.0)
    try:
        with serving(app, free_port()) as url:
            yield url, trust
    finally:
        historian.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with launched(sync_api) as b:
        yield b


@pytest.mark.parametrize(("width", "height"), [(1440, 900), (390, 844)])
def test_the_trust_page_shows_the_services_coverage(browser, served, tmp_path: Path, width: int,  # type: ignore[no-untyped-def]
                                                    height: int) -> None:
    url, trust = served
    view = trust.view("pod-lyon")
    assert view.status == "ok"
    errors: list[str] = []
    page = new_page(browser, width, height, errors)
    page.goto(url + "/trust?site=pod-lyon")
    box = page.locator("[data-kpi=output-coverage] .kpi-big")
    box.wait_for()
    # the number on screen is the service's figure, in whole percent
    assert box.inner_text().strip() == pct(view.output_coverage)
    stock = page.locator("[data-kpi=stock-coverage] .kpi-big").inner_text().strip()
    assert stock == pct(view.stock_coverage)
    assert "3 origins every 3 h" in page.inner_text("#trust-header")
    page.wait_for_selector("#trust-coverage .main-svg")
    page.wait_for_selector("#trust-pit .main-svg")
    page.wait_for_load_state("networkidle")
    # a phone scrolls down, never sideways (tables scroll inside their cards)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{overflow} px of horizontal scroll at {width} px"
    shots = ROOT / "docs" / "screenshots" if SHOTS else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    name = ("trust.png" if width == 1440 else "trust-phone.png") if SHOTS else f"trust-{width}.png"
    page.screenshot(path=str(shots / name), full_page=True)
    page.screenshot(path=f"/tmp/trust-shot-{width}.png", full_page=True)  # to look at (outside the repo)
    for i in range(3):  # the first screens, one by one
        page.evaluate(f"window.scrollTo(0, {i * height})")
        page.screenshot(path=f"/tmp/trust-screen-{width}-{i}.png")
    page.close()
    assert errors == []


def test_the_site_page_links_to_its_trust_panel(browser, served) -> None:  # type: ignore[no-untyped-def]
    url, _trust = served
    page = new_page(browser, 1440, 900)
    page.goto(url + "/site?site=pod-lyon")
    link = page.locator("#site-trust-link")
    page.wait_for_function("() => (document.querySelector('#site-trust-link') || {}).href"
                           " && document.querySelector('#site-trust-link').href.includes('site=pod-lyon')")
    link.click()
    page.wait_for_url("**/trust?site=pod-lyon")
    page.locator("[data-kpi=output-coverage]").wait_for()
    page.close()
