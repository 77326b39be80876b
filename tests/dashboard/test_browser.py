"""The dashboard in real headless Chromium against a real SQLite history.

Set ``TWIN_SCREENSHOTS=1`` to write the screenshots of every page into ``docs/screenshots/``.
(The end-to-end run against emulator + collector is added when those land: see the report.)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT
from serve import serving
from werkzeug.security import generate_password_hash

from dashboard.app import PROTECTED_OUTPUTS, create_app
from dashboard.auth import settings_for
from dashboard.services import Services

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]
PAGES = [("fleet", "/"), ("site", "/site?site=pod-berlin"), ("machine", "/machine?site=pod-lyon&machine=CNC1"),
         ("whatif", "/whatif?site=pod-berlin"), ("replay", "/replay?site=pod-berlin"), ("alarms", "/alarms")]
TIMEOUT_MS = 15_000

if not Path(CHROMIUM).exists():
    pytest.skip("no /usr/bin/chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _page(browser, errors: list[str]):  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page


def test_every_page_loads_without_console_errors(browser, services: Services, port: int, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shots = ROOT / "docs" / "screenshots" if os.environ.get("TWIN_SCREENSHOTS") else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    app = create_app(services, refresh_s=60)
    errors: list[str] = []
    with serving(app, port) as url:
        page = _page(browser, errors)
        for name, path in PAGES:
            page.goto(url + path)
            page.wait_for_selector("#_pages_content > *")
            if name == "fleet":
                page.wait_for_selector(".site-tile")
                assert page.locator(".site-tile").count() == 4
            elif name == "site":
                page.wait_for_selector(".machine-tile")
                page.wait_for_selector("#site-timeline .main-svg")
            elif name == "machine":
                page.wait_for_selector("#machine-trend .scatterlayer .trace")
            elif name == "replay":
                page.wait_for_selector(".machine-tile")
            elif name == "alarms":
                page.wait_for_selector(".ag-row")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
            assert errors == [], f"{name}: {errors}"
        page.close()


def test_stale_device_is_grey_with_its_age(browser, services: Services, port: int) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    with serving(create_app(services, refresh_s=60), port) as url:
        page = _page(browser, errors)
        page.goto(url + "/site?site=pod-berlin")
        tile = page.locator(".machine-tile", has_text="P3")
        tile.wait_for()
        assert "andon-unknown" in (tile.get_attribute("class") or "")
        assert "UNKNOWN" in tile.inner_text() and "stale 16 min" in tile.inner_text()
        running = page.locator(".machine-tile", has_text="P1")
        assert "andon-unknown" not in (running.get_attribute("class") or "")
        page.close()
    assert errors == []


def test_replay_cursor_changes_what_a_tile_shows(browser, services: Services, port: int) -> None:  # type: ignore[no-untyped-def]
    with serving(create_app(services, refresh_s=60), port) as url:
        page = _page(browser, [])
        page.goto(url + "/replay?site=pod-berlin")
        page.wait_for_selector("#replay-time:has-text('04:00:00')")
        p1 = page.locator(".machine-tile", has_text="P1")
        assert "OFF" in p1.inner_text()  # 05:00 Berlin: before the early shift
        page.locator("#replay-speed").click()
        page.get_by_text("3600×", exact=True).click()
        page.click("#replay-step")
        page.click("#replay-step")
        page.wait_for_selector("#replay-time:has-text('06:00:00')")
        page.wait_for_function("!document.querySelector('#replay-tiles').innerText.includes('P1\\nOFF')")
        assert "OFF" not in p1.inner_text().split("\n")[1]
        href = page.get_attribute("#replay-fork", "href") or ""
        assert "site=pod-berlin" in href and "at=2026-01-07T06%3A00" in href
        page.close()


def test_whatif_run_shows_bands_and_an_alarm_is_acknowledged(browser, services: Services, port: int) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    with serving(create_app(services, refresh_s=60), port) as url:
        page = _page(browser, errors)
        page.goto(url + "/whatif?site=pod-berlin")
        page.wait_for_selector("#whatif-interventions:has-text('No interventions')")
        page.fill("#whatif-replications", "8")
        page.click("#whatif-run")
        page.wait_for_selector("#whatif-status:has-text('Done')", timeout=30_000)
        page.wait_for_selector("#whatif-fan .legend:has-text('scenario P10–P90')")
        assert page.locator("#whatif-orders td", has_text="O-1").count() == 1
        if os.environ.get("TWIN_SCREENSHOTS"):
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(ROOT / "docs" / "screenshots" / "whatif-result.png"), full_page=True)
        page.goto(url + "/alarms")
        row = page.locator(".ag-row", has_text="CNC1")
        row.wait_for()
        row.locator("input[type=checkbox]").first.check()
        page.fill("#alarms-comment", "spindle swapped")
        page.click("#alarms-ack")
        page.wait_for_selector("#alarms-ack-result:has-text('acknowledged by local')")
        page.wait_for_selector(".ag-row:has-text('active/acked')")
        page.close()
    assert errors == []


def test_viewer_cannot_start_a_whatif(browser, services: Services, port: int, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    users = tmp_path / "users.toml"
    users.write_text(f'[users.vera]\nrole = "viewer"\npassword_hash = "{generate_password_hash("pw")}"\n')
    auth = settings_for("0.0.0.0", env={"TWIN_SECRET_KEY": "k" * 32}, users_file=users, protected=PROTECTED_OUTPUTS)
    statuses: list[int] = []
    with serving(create_app(services, auth=auth, refresh_s=60), port) as url:
        page = _page(browser, [])
        page.goto(url + "/whatif")
        page.fill("input[name=username]", "vera")
        page.fill("input[name=password]", "pw")
        page.click("button[type=submit]")
        page.wait_for_selector("#whatif-interventions:has-text('No interventions')")
        assert "vera · viewer" in page.inner_text("#shell-user")
        page.on("response", lambda r: statuses.append(r.status) if "_dash-update-component" in r.url else None)
        page.click("#whatif-run")
        page.wait_for_timeout(1500)
        assert 403 in statuses
        assert not re.search("Running|Done", page.inner_text("#whatif-status"))
        page.close()
