"""End to end in real headless Chromium: emulated PLCs -> collector -> SQLite -> dashboard, on 127.0.0.1.

The PLC emulator and the collector run for real (Modbus TCP on free ports) after a short EMULATED
backfill; the dashboard serves them with the real what-if engine. Set ``TWIN_SCREENSHOTS=1`` to
write fleet-phone.png into ``docs/screenshots/`` (with 10 hours of history
instead of 15 minutes); every other page's picture there is written by that page's own test.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from chromium import available, launched, new_page
from conftest import ROOT
from plant import LOW_STOCK, RunningPlant, running_plant
from serve import serving
from werkzeug.security import generate_password_hash

from dashboard.app import PROTECTED_OUTPUTS, create_app
from dashboard.auth import settings_for
from tests.conftest import free_port
from twin.clock import utc_now

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

sync_api = pytest.importorskip("playwright.sync_api")
PAGES = [("fleet", "/"), ("site", "/site?site=pod-berlin"), ("machine", "/machine?site=pod-lyon&machine=CNC1"),
         ("whatif", "/whatif?site=pod-berlin"), ("replay", "/replay?site=pod-berlin"), ("alarms", "/alarms"),
         ("attention", "/attention")]
SHOTS = os.environ.get("TWIN_SCREENSHOTS") == "1"
INPUT_FMT = "%Y-%m-%dT%H:%M"
# each picture in docs/screenshots has one writer: the page's own test (site, replay, machine: test_replay_browser;
# what-if: test_whatif_browser; fleet, attention: test_attention_browser; alarms: test_alarms_browser); this
# tour of every page documents only the two nobody else takes
DOCUMENTED_HERE = ("fleet-phone",)  # machine-phone is test_stops_browser's

if not available():
    pytest.skip("no /usr/bin/chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlant]:
    def ports() -> Iterator[int]:
        while True:
            yield free_port()

    tmp = tmp_path_factory.mktemp("e2e")
    # screenshots: 10 h of history sampled every 10 s (a signal counts as stale after 15 polls of 1 s);
    # tests: 15 minutes every 2 s, stale after 3 polls
    # (screenshots: the plant runs at 2x only, so the minute of the run hardly inflates today's counts)
    history, step, stale, speed = ((timedelta(hours=10), 10.0, 15, 1.0) if SHOTS
                                   else (timedelta(minutes=15), 2.0, 3, 60.0))
    with running_plant(tmp, ports(), history=history, step_s=step, stale_after_polls=stale, speed=speed,
                       round_the_clock=not SHOTS) as p:  # tests: machines work whatever the time of week
        yield p
    assert p.emulator.writes_received == 0  # the product never writes to a PLC


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with launched(sync_api) as b:
        yield b


def _page(browser, errors: list[str]):  # type: ignore[no-untyped-def]
    return new_page(browser, 1400, 1000, errors)


def test_every_page_loads_without_console_errors(browser, plant: RunningPlant, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    docs = ROOT / "docs" / "screenshots"

    def shot(name: str) -> str:
        return str(docs / f"{name}.png" if SHOTS and name in DOCUMENTED_HERE else tmp_path / f"{name}.png")

    errors: list[str] = []
    page = _page(browser, errors)
    for name, path in PAGES:
        if name == "replay":  # two hours back: the cursor starts inside the recorded history
            path += "&start=" + (utc_now() - timedelta(hours=2)).strftime(INPUT_FMT)
        page.goto(plant.url + path)
        page.wait_for_selector("#_pages_content > *")
        if name == "fleet":
            page.wait_for_selector(".site-tile")
            assert page.locator(".site-tile").count() == 4
            if SHOTS:  # the picture shows the plant once its stores PLCs have been read, not while connecting
                page.wait_for_function("!document.querySelector('#fleet-tiles').innerText"
                                       ".includes('without stock data')", timeout=30_000)
        elif name == "site":
            page.wait_for_selector(".machine-tile")
            page.wait_for_selector("#site-timeline .main-svg")
            # drawn (attached): at night a flat envelope trace comes first and has no visible size
            page.wait_for_selector("#site-trend .scatterlayer .trace", state="attached")
        elif name == "machine":
            page.wait_for_selector("#machine-trend .scatterlayer .trace", state="attached")
        elif name == "replay":
            page.wait_for_selector(".machine-tile")
        elif name == "alarms":
            page.wait_for_selector(".ag-row")
        elif name == "attention":  # the service's first list (a pending line before it), then its lines
            page.wait_for_selector("#attention-list .attention-item, #attention-list .attention-calm")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=shot(name), full_page=True)
        if SHOTS:  # the same page on a phone (390 x 844): what a plant manager sees on the floor
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(800)  # charts redraw at the new width
            page.screenshot(path=shot(f"{name}-phone"), full_page=True)
            page.set_viewport_size({"width": 1400, "height": 1000})
        assert errors == [], f"{name}: {errors}"
    page.close()


def test_a_live_value_changes_on_screen(browser, plant: RunningPlant) -> None:  # type: ignore[no-untyped-def]
    if SHOTS:
        pytest.skip("the screenshot run keeps the plant at 1x (true KPIs): too slow for a visible change in 20 s")
    errors: list[str] = []
    page = _page(browser, errors)
    page.goto(plant.url + "/site?site=pod-berlin")
    page.wait_for_selector(".machine-tile .tile-meta")
    before = page.inner_text("#site-tiles")
    # the plant runs 60x faster than real time: statuses and counters move within seconds, and the
    # page shows them through its 1 s interval without a reload
    page.wait_for_function("b => document.querySelector('#site-tiles').innerText !== b", arg=before,
                           timeout=20_000)
    assert page.inner_text("#site-tiles") != before
    page.close()
    assert errors == []


def test_a_stale_device_turns_grey(browser, plant: RunningPlant) -> None:  # type: ignore[no-untyped-def]
    device = plant.device_of("lm-rotterdam")
    machines = [a for d in plant.config.modbus if d.id == device for a in d.assets]
    errors: list[str] = []
    page = _page(browser, errors)
    page.goto(plant.url + "/site?site=lm-rotterdam")
    tile = page.locator(".machine-tile", has_text=machines[0])
    tile.wait_for()
    assert "andon-unknown" not in (tile.get_attribute("class") or "")
    plant.emulator.fault(device).hang = True  # the PLC stops answering
    try:
        page.wait_for_function(
            "n => document.querySelectorAll('#site-tiles .machine-tile.andon-unknown').length >= n",
            arg=len(machines), timeout=25_000)
        text = tile.inner_text()
        assert "UNKNOWN" in text and re.search(r"stale \d+ s", text), text  # grey, in words, with its age
        # and the page says so above everything: the stores' PLC still answering is no news of the machines
        banner = page.locator("#site-header .stale-banner")
        banner.wait_for()
        assert re.search(r"DATA STALE: nothing current from any machine|\d+ of \d+ machine\(s\) without current",
                         banner.inner_text()), banner.inner_text()
    finally:
        plant.emulator.fault(device).hang = False
    page.close()
    assert errors == []


def test_orders_and_shipments_dropped_by_the_erp_show_on_the_site_page(  # type: ignore[no-untyped-def]
        browser, plant: RunningPlant) -> None:
    feeds = plant.config.feeds
    assert feeds is not None and feeds.drop_dir is not None
    now = utc_now().replace(microsecond=0)

    def iso(t: datetime) -> str:
        return t.isoformat().replace("+00:00", "Z")

    # an order due 3 h ago (overdue) and a shipment announced for tomorrow, now due in 3 days (late +2 d)
    order = {"id": "E2E-ORDER-1", "version": 1, "site": "pod-berlin", "product": "custom-bracket", "qty": 4,
             "created": iso(now - timedelta(hours=30)), "due": iso(now - timedelta(hours=3))}
    shipment = {"id": "E2E-SHIP-1", "version": 2, "site": "pod-berlin", "sku": "AL-BAR-6061", "qty": 80,
                "origin": "Metall Nord", "eta": iso(now + timedelta(days=3)),
                "planned_eta": iso(now + timedelta(days=1))}
    for name, record in (("orders-e2e.jsonl", order), ("shipments-e2e.jsonl", shipment)):
        tmp = feeds.drop_dir / f".{name}.part"  # written under a hidden name, then renamed: as an ERP export does
        tmp.write_text(json.dumps(record) + "\n")
        tmp.rename(feeds.drop_dir / name)
    errors: list[str] = []
    page = _page(browser, errors)
    page.goto(plant.url + "/site?site=pod-berlin")
    # file drop (0.5 s poll) -> ledger -> collector -> checkpoint -> dashboard refresh (1 s)
    page.wait_for_function("() => (document.querySelector('#site-orders')?.innerText || '').includes('E2E-ORDER-1')",
                           timeout=20_000)
    orders = page.inner_text("#site-orders")
    assert "OVERDUE" in orders, orders  # due 3 h ago: in words, not only in colour
    page.wait_for_function(
        "() => (document.querySelector('#site-shipments')?.innerText || '').includes('Metall Nord')", timeout=20_000)
    shipments = page.inner_text("#site-shipments")
    assert "LATE +2" in shipments, shipments  # ETA 3 days out against 1 day planned: 2 days late
    page.close()
    assert errors == []


def test_replay_cursor_changes_what_a_tile_shows(browser, plant: RunningPlant) -> None:  # type: ignore[no-untyped-def]
    start = (plant.history_start - timedelta(minutes=2)).strftime(INPUT_FMT)
    end = utc_now().strftime(INPUT_FMT)
    page = _page(browser, [])
    page.goto(plant.url + f"/replay?site=pod-berlin&start={start}&end={end}")
    page.wait_for_selector(".machine-tile")
    p1 = page.locator(".machine-tile", has_text="P1")
    assert "no data yet" in p1.inner_text()  # the cursor is before the history begins
    page.locator("#replay-speed").click()
    page.get_by_text("600×", exact=True).click()
    page.click("#replay-step")
    page.wait_for_function("!document.querySelector('#replay-tiles').innerText.includes('no data yet')")
    assert "no data yet" not in p1.inner_text()
    href = page.get_attribute("#replay-fork", "href") or ""
    assert "site=pod-berlin" in href and "at=" in href
    page.close()


def test_whatif_run_shows_bands(browser, plant: RunningPlant) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page = _page(browser, errors)
    page.goto(plant.url + "/whatif?site=pod-berlin")
    page.wait_for_selector("#whatif-interventions:has-text('No interventions')")
    page.fill("#whatif-name", "P3 maintenance")
    page.fill("#whatif-horizon", "24")
    page.fill("#whatif-replications", "6")
    machine = json.dumps({"field": "machine", "type": "whatif-choice"}, separators=(",", ":"))
    page.locator(f"[id='{machine}']").click()  # the machine picker (a pattern-matching id)
    page.locator(".dash-dropdown-option", has_text=re.compile("^P3$")).click()
    page.locator("#whatif-form input[type=number]:visible").nth(0).fill("2")
    page.locator("#whatif-form input[type=number]:visible").nth(1).fill("8")
    page.click("#whatif-add")
    page.wait_for_selector("#whatif-interventions li:has-text('machine P3')")
    page.click("#whatif-run")
    page.wait_for_selector("#whatif-status:has-text('Done')", timeout=40_000)
    page.wait_for_selector("#whatif-fan .legend:has-text('scenario P10–P90')")
    page.wait_for_selector("#whatif-fan .legend:has-text('actual')")
    assert page.locator("#whatif-deltas .point").count() >= 3
    page.close()  # (its picture, whatif-result.png, is test_whatif_browser's)
    assert errors == []


def test_an_alarm_is_acknowledged(browser, plant: RunningPlant) -> None:  # type: ignore[no-untyped-def]
    site, sku, _ = LOW_STOCK
    errors: list[str] = []
    page = _page(browser, errors)
    page.goto(plant.url + f"/alarms?site={site}")
    row = page.locator(".ag-row", has_text=sku).first
    row.wait_for()
    assert "active/unacked" in row.inner_text()
    row.locator("input[type=checkbox]").first.check()
    page.fill("#alarms-comment", "reorder placed")
    page.click("#alarms-ack")
    page.wait_for_selector("#alarms-ack-result:has-text('acknowledged by local')")
    page.wait_for_selector(f".ag-row:has-text('{sku}'):has-text('active/acked')")
    page.close()
    assert errors == []


def test_viewer_cannot_start_a_whatif(browser, plant: RunningPlant, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    users = tmp_path / "users.toml"
    users.write_text(f'[users.vera]\nrole = "viewer"\npassword_hash = "{generate_password_hash("pw")}"\n')
    auth = settings_for("0.0.0.0", env={"TWIN_SECRET_KEY": "browser-test-secret-0123456789abcdef"}, users_file=users,
                        protected=PROTECTED_OUTPUTS)
    statuses: list[int] = []
    with serving(create_app(plant.services, auth=auth, refresh_s=60), free_port()) as url:
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
        assert 403 in statuses  # refused on the server, before any callback code runs
        assert not re.search("Running|Done", page.inner_text("#whatif-status"))
        page.close()


def _settled(page, selector: str) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_selector(selector)
    page.wait_for_load_state("networkidle")


def test_the_machine_page_opens_the_machine_in_its_url(browser, plant: RunningPlant) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page = _page(browser, errors)
    page.goto(plant.url + "/site?site=pod-lyon")
    link = page.locator("#site-tiles .machine-tile", has_text="CNC2").locator("a").first
    link.wait_for()
    href = link.get_attribute("href") or ""
    assert href == "/machine?site=pod-lyon&machine=CNC2"  # the tile links to its own machine
    opened = []
    for how in ("tile link", "reload", "deep link"):
        if how == "tile link":
            link.click()
        elif how == "reload":
            page.reload()
        else:
            page.goto(plant.url + href)
        _settled(page, "#machine-header .machine-tile")
        # Lyon's CNC2 — not the first site's first machine (Berlin P1) nor Lyon's first (S1)
        opened.append((how, page.inner_text("#machine-site"), page.inner_text("#machine-header").split("\n")[0]))
    assert opened == [(how, "Lyon point-of-demand (pod-lyon)", "CNC2") for how in ("tile link", "reload", "deep link")]
    page.close()
    assert errors == []


def test_fork_from_a_lyon_replay_opens_whatif_at_lyon_and_that_time(  # type: ignore[no-untyped-def]
        browser, plant: RunningPlant) -> None:
    start = (utc_now() - timedelta(minutes=10)).strftime(INPUT_FMT)
    page = _page(browser, [])
    page.goto(plant.url + f"/replay?site=pod-lyon&start={start}")
    _settled(page, "#replay-tiles .machine-tile")
    href = page.get_attribute("#replay-fork", "href") or ""
    assert "site=pod-lyon" in href and f"at={start.replace(':', '%3A')}" in href, href  # cursor at 0: the start
    page.click("#replay-fork")
    _settled(page, "#whatif-interventions:has-text('No interventions')")
    assert page.inner_text("#whatif-site") == "Lyon point-of-demand (pod-lyon)"  # not Berlin, the first site
    # the fork time in Lyon's own time, 24 h (the URL's is UTC), the zone beside it and in the note
    lyon = datetime.strptime(start, INPUT_FMT).replace(tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    assert page.input_value("#whatif-at") == lyon.strftime("%Y-%m-%d %H:%M")
    assert page.inner_text("#whatif-at-zone") == lyon.tzname()
    assert f"{lyon.strftime('%Y-%m-%d %H:%M')} {lyon.tzname()}" in page.inner_text("#whatif-fork-note")
    page.close()


def test_on_a_phone_no_page_scrolls_sideways_and_the_menu_folds(browser, plant: RunningPlant) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page = new_page(browser, 390, 844)
    page.on("pageerror", lambda e: errors.append(str(e)))
    widths = {}
    for name, path in PAGES:
        page.goto(plant.url + path)
        _settled(page, "#_pages_content > *")
        page.wait_for_timeout(500)  # the first refresh has drawn its tables and charts
        widths[name] = page.evaluate("document.documentElement.scrollWidth")
        # the menu is one bar behind a button: a phone keeps its screen for the page, not a 250 px list
        assert page.evaluate("document.querySelector('.hmi-navbar').getBoundingClientRect().height") <= 60, name
    assert widths == {name: 390 for name, _ in PAGES}  # wide tables scroll inside their cards, never the page
    page.click("#shell-nav-toggle")  # the menu opens on its button
    page.get_by_role("link", name="Fleet", exact=True).click()
    page.wait_for_selector(".site-tile")
    # and folds again once a page is chosen (after its closing animation)
    page.wait_for_function("document.querySelector('.hmi-navbar').getBoundingClientRect().height <= 60")
    page.close()
    assert errors == []
