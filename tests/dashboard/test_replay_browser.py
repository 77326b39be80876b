"""Replay and time in real headless Chromium: the whole site page at a past moment, local times, the time control.

The same running plant as ``test_browser`` (emulated PLCs -> collector -> SQLite -> dashboard). The
replay at a moment must show what ``twin replay --json`` prints for that moment (the CLI's own
function, run here on the same store); every time must read in its site's zone; the header's
time control must move the cursor and the URL. ``TWIN_SCREENSHOTS=1`` writes the replay
screenshots (desktop 1440×900, phone 390×844) into ``docs/screenshots/``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
from chromium import available, launched, new_page
from conftest import ROOT
from plant import RunningPlant, running_plant

from app.replay import replay
from connectors.store import SqliteHistorian
from tests.conftest import free_port
from twin.clock import utc_now

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

sync_api = pytest.importorskip("playwright.sync_api")
SHOTS = os.environ.get("TWIN_SCREENSHOTS") == "1"

if not available():
    pytest.skip("no /usr/bin/chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlant]:
    def ports() -> Iterator[int]:
        while True:
            yield free_port()

    # screenshots: 10 h of history at 1x (the pictures show a working day); tests: 20 min at 60x
    history, step, stale, speed = ((timedelta(hours=10), 10.0, 15, 1.0) if SHOTS
                                   else (timedelta(minutes=20), 2.0, 3, 60.0))
    with running_plant(tmp_path_factory.mktemp("replay"), ports(), history=history, step_s=step,
                       stale_after_polls=stale, speed=speed, round_the_clock=not SHOTS) as p:
        yield p


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with launched(sync_api) as b:
        yield b


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _settled(page, selector: str) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_selector(selector)
    page.wait_for_load_state("networkidle")


def _json_at(plant: RunningPlant, site: str, at: datetime) -> dict:  # type: ignore[type-arg]
    store = SqliteHistorian(plant.config.historian.path, plant.config.fleet, readonly=True)
    try:
        return json.loads(replay(store, site, at, as_json=True))  # what `twin replay --json` prints
    finally:
        store.close()


def test_replay_at_a_past_moment_is_the_site_page_with_twin_replays_values(  # type: ignore[no-untyped-def]
        browser, plant: RunningPlant) -> None:
    # a moment of the live run, settled in the store: the plant has run at 60x since, and parts have been made
    at = (utc_now() - timedelta(seconds=10)).replace(microsecond=0)
    errors: list[str] = []
    page = new_page(browser, 1400, 1000, errors)
    page.goto(plant.url + f"/replay?site=pod-lyon&from={_iso(at - timedelta(minutes=5))}&to={_iso(utc_now())}"
              f"&at={_iso(at)}")
    _settled(page, "#replay-tiles .machine-tile")
    page.wait_for_function("document.querySelector('#replay-time').innerText.includes(':')")
    expected = _json_at(plant, "pod-lyon", at)["machines"]
    shown = {}
    for tile in page.locator("#replay-tiles .machine-tile").all():
        text = tile.inner_text()
        machine = text.split("\n")[0]
        status = tile.get_attribute("data-status") or ""
        last = re.search(r"last reported (\w+)", text)  # a tile grey for stale data still names what was reported
        good = re.search(r"good ([\d,]+) · scrap ([\d,]+)", text)
        assert good, text
        shown[machine] = ((last.group(1) if last else status).lower(), int(good.group(1).replace(",", "")),
                          int(good.group(2).replace(",", "")))
    # every tile equals the CLI's state at that moment: status word, good and scrap counters
    assert shown == {m: (d["status"], d["good_total"], d["scrap_total"]) for m, d in expected.items()}
    # a working plant's state, not an empty one: machines report a status (counters start at 0 in a
    # 20-minute history: Lyon's first builds take hours, so their equality above is the check)
    assert any(status != "unknown" for status, _g, _x in shown.values()), shown
    # the whole site page is there, at the cursor: timeline, OEE, trend, orders, stock, alarms
    for part in ("#replay-timeline .main-svg", "#replay-oee .main-svg", "#replay-trend .main-svg",
                 "#replay-orders", "#replay-stock table", "#replay-alarms"):
        page.wait_for_selector(part, state="attached")
    # and the fork keeps the site and the cursor's time (to the minute, UTC: the what-if page's format)
    href = page.get_attribute("#replay-fork", "href") or ""
    assert parse_qs(urlparse(href).query) == {"site": ["pod-lyon"], "at": [at.strftime("%Y-%m-%dT%H:%M")]}
    page.close()
    assert errors == []


def test_the_same_instant_reads_in_each_sites_own_time(browser, plant: RunningPlant) -> None:  # type: ignore[no-untyped-def]
    at = (plant.history_start + timedelta(minutes=8)).replace(microsecond=0)
    page = new_page(browser, 1400, 1000, [])
    seen = {}
    for site, zone in (("pod-lyon", "Europe/Paris"), ("pod-austin", "America/Chicago")):
        page.goto(plant.url + f"/replay?site={site}&from={_iso(at - timedelta(minutes=5))}&at={_iso(at)}")
        _settled(page, "#replay-tiles .machine-tile")
        stamp = page.locator("#replay-time .ts")
        local = at.astimezone(ZoneInfo(zone))
        want = local.strftime("%Y-%m-%d %H:%M:%S ") + str(local.tzname())
        page.wait_for_function("w => (document.querySelector('#replay-time .ts') || {}).innerText === w", arg=want)
        # Lyon in CET/CEST, Austin in CST/CDT: the wall time of that zone, 24 h, with its abbreviation
        assert stamp.inner_text() == local.strftime("%Y-%m-%d %H:%M:%S ") + str(local.tzname())
        assert stamp.get_attribute("title") == "UTC " + _iso(at)  # the same instant, in UTC, on hover
        seen[site] = local.tzname()
        # the site page header at that moment says it in the site's zone too
        page.goto(plant.url + f"/site?site={site}&at={_iso(at)}")
        page.wait_for_function("(document.querySelector('#site-header') || {}).innerText?.includes('as it was at')")
        assert local.strftime("%Y-%m-%d %H:%M:%S ") + str(local.tzname()) in page.inner_text("#site-header")
        # and the machine page charts the hours before that moment, its span in the site's time
        page.goto(plant.url + f"/machine?site={site}&machine=CNC1&at={_iso(at)}")
        page.wait_for_function("(document.querySelector('#machine-header') || {}).innerText?.includes(' to ')")
        assert page.inner_text("#machine-header").endswith("to " + local.strftime("%Y-%m-%d %H:%M ")
                                                           + str(local.tzname()))
    assert seen["pod-lyon"] in ("CET", "CEST") and seen["pod-austin"] in ("CST", "CDT")
    page.close()


def test_the_header_preset_moves_the_cursor_and_the_url(browser, plant: RunningPlant) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page = new_page(browser, 1400, 1000, errors)
    page.goto(plant.url + "/replay?site=pod-berlin")
    _settled(page, "#replay-tiles .machine-tile")
    before = page.inner_text("#replay-time")
    page.locator("#shell-time-preset").click()
    page.get_by_text("Last hour", exact=True).click()
    page.wait_for_url(re.compile(r"preset=last-hour"))  # (the cursor puts a from= in the address already)
    q = parse_qs(urlparse(page.url).query)
    start, end = (datetime.fromisoformat(q[k][0].replace("Z", "+00:00")) for k in ("from", "to"))
    assert end - start == timedelta(hours=1) and q["site"] == ["pod-berlin"]  # the site kept, the range in the URL
    assert abs((utc_now() - end).total_seconds()) < 60
    # the replay starts the chosen range: its cursor is at the range's start, in Berlin's time
    local = start.astimezone(ZoneInfo("Europe/Berlin"))
    want = local.strftime("%Y-%m-%d %H:%M:%S ") + str(local.tzname())
    page.wait_for_function("w => document.querySelector('#replay-time').innerText.includes(w)", arg=want)
    assert page.inner_text("#replay-time") != before
    # a reload keeps it: the choice lives in the URL
    page.reload()
    page.wait_for_function("w => (document.querySelector('#replay-time')||{}).innerText?.includes(w)", arg=want)
    # the 15 min step moves the cursor by 15 minutes
    page.get_by_role("button", name="15 min ▶").click()
    later = (local + timedelta(minutes=15)).strftime("%H:%M:%S")
    page.wait_for_function("w => document.querySelector('#replay-time').innerText.includes(w)", arg=later)
    # a click on the strip moves the cursor to the time clicked: three quarters of the way along the
    # plot area (the axis spans the range exactly) is 45 minutes into the hour, to the grid's 15 s
    area = page.locator("#replay-strip .nsewdrag").first
    box = area.bounding_box()
    assert box is not None
    area.hover(position={"x": box["width"] * 0.75, "y": box["height"] * 0.5})
    page.wait_for_selector("#replay-strip .hoverlayer :text('click to move the cursor here')")
    area.click(position={"x": box["width"] * 0.75, "y": box["height"] * 0.5})
    page.wait_for_function("w => !document.querySelector('#replay-time').innerText.includes(w)", arg=later)
    text = page.inner_text("#replay-time .ts")
    clicked = datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Europe/Berlin"))
    assert abs((clicked - (start + timedelta(minutes=45))).total_seconds()) <= 60, text
    # the range's events download as the CLI's CSV: UTC ISO-8601 times, all inside the range
    with page.expect_download() as got:
        page.click("#replay-export")
    rows = Path(got.value.path()).read_text().splitlines()
    assert rows[0] == "ts,site,asset,kind,message,data" and len(rows) > 1
    stamps = [datetime.fromisoformat(r.split(",", 1)[0]) for r in rows[1:]]
    assert all(t.utcoffset() == timedelta(0) and start <= t <= end for t in stamps)
    # the fleet page stays live, and the header says so while a past moment is chosen
    page.goto(plant.url + "/?at=" + _iso(start))
    page.wait_for_selector("#shell-time-note:has-text('fleet page shows live data only')")
    page.close()
    assert errors == []


def test_site_replay_and_machine_pages_fit_a_phone(browser, plant: RunningPlant, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shots = ROOT / "docs" / "screenshots" if SHOTS else tmp_path
    if SHOTS:  # the screenshot replays Berlin's evening shift (the example's shifts): a working plant
        now = utc_now()
        replayed = (f"/replay?site=pod-berlin&from={_iso(now - timedelta(hours=9))}&to={_iso(now - timedelta(hours=6))}"
                    f"&at={_iso(now - timedelta(hours=8))}")
    else:
        replayed = f"/replay?site=pod-lyon&from={_iso(plant.history_start + timedelta(minutes=10))}"
    pages = {"site": "/site?site=pod-lyon", "replay": replayed,
             "machine": "/machine?site=pod-lyon&machine=CNC2"}
    ready = {"site": "#site-tiles .machine-tile", "replay": "#replay-tiles .machine-tile",
             "machine": "#machine-header .machine-tile"}
    for width, height, suffix in ((1440, 900, ""), (390, 844, "-phone")):
        page = new_page(browser, width, height, [])
        for name, path in pages.items():
            page.goto(plant.url + path)
            _settled(page, ready[name])
            page.wait_for_timeout(1500)  # the first refresh has drawn its tables and charts
            # no sideways scroll: wide tables scroll inside their cards, never the page
            assert page.evaluate("document.documentElement.scrollWidth") == width, (name, width)
            # the replay pictures are this test's; site and machine are test_stops_browser's (with a stop to classify)
            folder = shots if name == "replay" else tmp_path
            page.screenshot(path=str(folder / f"{name}{suffix}.png"), full_page=suffix == "")
        page.close()


def test_a_drag_along_the_strip_moves_the_cursor_into_the_address_and_presets_still_work(  # type: ignore[no-untyped-def]
        browser, plant: RunningPlant) -> None:
    errors: list[str] = []
    page = new_page(browser, 1400, 1000, errors)
    end = utc_now().replace(microsecond=0)
    start = end - timedelta(hours=1)
    page.goto(plant.url + f"/replay?site=pod-berlin&from={_iso(start)}&to={_iso(end)}")
    _settled(page, "#replay-strip .nsewdrag")
    berlin = ZoneInfo("Europe/Berlin")
    first = start.astimezone(berlin).strftime("%Y-%m-%d %H:%M:%S")
    page.wait_for_function("w => document.querySelector('#replay-time').innerText.includes(w)", arg=first)
    # press at a fifth of the plot area and drag to 60 %: the axis spans the hour exactly, so the cursor goes
    # 36 minutes into it (to the pixel: 60 min over ~1,300 px is ~3 s a pixel)
    box = page.locator("#replay-strip .nsewdrag").first.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] * 0.5
    page.mouse.move(box["x"] + box["width"] * 0.2, y)
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(box["x"] + box["width"] * (0.2 + 0.04 * k), y)
    page.mouse.up()
    page.wait_for_function("w => !document.querySelector('#replay-time').innerText.includes(w)", arg=first)
    text = page.inner_text("#replay-time .ts")
    dragged = datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=berlin)
    assert abs((dragged - (start + timedelta(minutes=36))).total_seconds()) <= 30, text
    # the address now names that moment (UTC), with the range: a reload opens the same moment
    page.wait_for_function("() => window.location.search.includes('at=')")
    q = parse_qs(urlparse(page.url).query)
    assert q["site"] == ["pod-berlin"] and q["from"] == [_iso(start)] and q["to"] == [_iso(end)]
    at = datetime.fromisoformat(q["at"][0].replace("Z", "+00:00"))
    assert at == dragged.astimezone(UTC)
    page.reload()
    page.wait_for_function("w => (document.querySelector('#replay-time .ts')||{}).innerText?.startsWith(w)",
                           arg=text[:19])
    # a step from there moves it and the address follows
    page.get_by_role("button", name="1 min ▶").click()
    later = (dragged + timedelta(minutes=1)).astimezone(UTC)
    page.wait_for_function("w => decodeURIComponent(window.location.search).includes('at=' + w)", arg=_iso(later))
    # the header's "Last hour" preset still works after the cursor went into the address: a new range
    # ending now, the cursor at its start, the stale at= gone, the preset named
    page.locator("#shell-time-preset").click()
    page.get_by_text("Last hour", exact=True).click()
    page.wait_for_url(re.compile(r"preset=last-hour"))
    q = parse_qs(urlparse(page.url).query)
    new_start = datetime.fromisoformat(q["from"][0].replace("Z", "+00:00"))
    assert new_start > start and q["site"] == ["pod-berlin"]
    want = new_start.astimezone(berlin).strftime("%Y-%m-%d %H:%M:%S")
    page.wait_for_function("w => document.querySelector('#replay-time').innerText.includes(w)", arg=want)
    page.wait_for_function("() => new URLSearchParams(window.location.search).get('at') !== null")
    assert parse_qs(urlparse(page.url).query)["at"] == [_iso(new_start)]  # the cursor at the range's start
    assert page.inner_text("#shell-time-preset").strip().startswith("Last hour")
    page.close()
    assert errors == []
