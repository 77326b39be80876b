"""The what-if page in real headless Chromium over a running emulated plant: two interventions, the
table of each one alone, baseline and scenario side by side, the result's link opened in a new page
with the same numbers, and the scenario saved on the server. ``TWIN_SCREENSHOTS=1`` writes
docs/screenshots/whatif.png, whatif-result.png (1440x900), whatif-phone.png (the form) and whatif-result-phone.png
(390x844)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from chromium import available, launched, new_page
from conftest import ROOT
from plant import RunningPlant, running_plant

from tests.conftest import free_port

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

    tmp = tmp_path_factory.mktemp("wif")
    with running_plant(tmp, ports(), history=timedelta(hours=2 if SHOTS else 0.25), step_s=10.0 if SHOTS else 2.0,
                       stale_after_polls=15 if SHOTS else 3, speed=1.0 if SHOTS else 60.0,
                       round_the_clock=True) as p:
        yield p


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with launched(sync_api) as b:
        yield b


def _pick(page, field: str, option: str) -> None:  # type: ignore[no-untyped-def]
    wid = json.dumps({"field": field, "type": "whatif-choice"}, separators=(",", ":"))
    page.locator(f"[id='{wid}']").click()  # a picker of the intervention form (a pattern-matching id)
    page.locator(".dash-dropdown-option", has_text=re.compile(f"^{re.escape(option)}$")).click()


def _value(page, field: str, text: str) -> None:  # type: ignore[no-untyped-def]
    wid = json.dumps({"field": field, "type": "whatif-value"}, separators=(",", ":"))
    page.locator(f"[id='{wid}']").fill(text)


def _rows(page, table: str) -> list[list[str]]:  # type: ignore[no-untyped-def]
    return page.eval_on_selector_all(f"{table} tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.innerText))")


def test_two_interventions_each_alone_side_by_side_and_a_result_link(browser, plant: RunningPlant) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page = new_page(browser, 1440, 900, errors)
    page.goto(plant.url + "/whatif?site=pod-berlin")
    page.wait_for_selector("#whatif-interventions:has-text('No interventions')")
    page.fill("#whatif-name", "P3 down and P1 faster")
    page.fill("#whatif-horizon", "24")
    page.fill("#whatif-replications", "300")
    _pick(page, "machine", "P3")
    _value(page, "start_in_h", "2")
    _value(page, "duration_h", "8")
    page.click("#whatif-add")
    page.wait_for_selector("#whatif-interventions li:has-text('machine P3')")
    page.locator("#whatif-kind").click()
    page.locator(".dash-dropdown-option", has_text="Cycle-time factor").click()
    _pick(page, "machine", "P1")  # P1 20 % faster (the picker still holds P3 from the first one)
    _value(page, "factor", "0.8")
    page.click("#whatif-add")
    page.wait_for_selector("#whatif-interventions li:has-text('factor 0.8')")
    assert page.locator("#whatif-interventions li").count() == 2
    # saved on the server with its author (login is off on loopback: the local admin) and listed
    page.click("#whatif-save-server")
    page.wait_for_selector("#whatif-store-note:has-text('Saved')")
    assert "P3 down and P1 faster" in page.inner_text("#whatif-saved")
    # every text the status shows, with its time after the click on Run (the early bands may show only briefly)
    page.evaluate("""() => { window.seen = []; for (const id of ['whatif-status', 'whatif-early']) {
        const el = document.getElementById(id);
        new MutationObserver(() => window.seen.push([performance.now() - window.t0, el.innerText]))
            .observe(el, {childList: true, subtree: true, characterData: true}); } }""")
    page.evaluate("() => { window.t0 = performance.now(); document.getElementById('whatif-run').click(); }")
    page.wait_for_selector("#whatif-status:has-text('Done')", timeout=90_000)
    seen = page.evaluate("window.seen")
    early = [t for t, text in seen if "early bands" in text]
    print("status texts after Run (ms):", [(round(t), text.split(":")[0]) for t, text in seen])
    # the first bands (a few of the 300 replications) are drawn while the run goes on: an early-bands text
    # comes before the run is done, showing fewer replications than the run's. How soon is a speed
    # figure (target 1 s, 0.87 s measured quiet), measured by bench/dashboard_bench.py, not asserted here.
    done = [t for t, text in seen if "Done" in text]
    assert early and done and early[0] < done[0], seen
    first = next(text for t, text in seen if "early bands" in text)
    shown = int(first.split("the first ")[1].split(" ")[0])
    assert 0 < shown < 300, first
    deltas = _rows(page, "#whatif-deltas")
    effects = _rows(page, "#whatif-effects")
    by_kpi = {r[0]: r for r in deltas}
    # baseline and scenario side by side, the on-time difference in percentage points
    on_time = by_kpi["on-time delivery"]
    assert on_time[1].endswith(" %") and on_time[2].endswith(" %") and " pp\n[" in on_time[3]
    units = by_kpi["units finished"]
    assert units[1].endswith(" units") and units[2].endswith(" units")
    # the scenario's Δ is scenario − baseline as shown (whole units here: rounding to the CI's width)
    b, s = (float(x.split()[0].replace(",", "").replace("\u2212", "-")) for x in units[1:3])
    d = float(units[3].split()[0].replace(",", "").replace("\u2212", "-").replace("+", ""))  # "+0.36 units\n[…]"
    assert abs((s - b) - d) <= 1.0 + 1e-9  # each of the three rounded to the same decimals
    # one row per intervention alone, in the order they were added
    assert [r[0].split(":")[0] for r in effects] == ["Machine down (maintenance, breakdown)",
                                                     "Cycle-time factor"]  # of P1: no "whole site" hint
    # each row: the intervention, Δ on-time over its interval (pp), its bar, Δ output over its interval (units)
    assert all(" pp\n[" in r[1] and " units\n[" in r[3] for r in effects), effects
    link = page.get_attribute("#whatif-link-a", "href") or ""
    assert re.fullmatch(r"/whatif\?result=[0-9a-f]{16}", link)
    if SHOTS:
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(ROOT / "docs" / "screenshots" / "whatif.png"), full_page=True)
    # the link in a new page: the same run from the server's store, the same numbers
    other = new_page(browser, 1440, 900, errors)
    other.goto(plant.url + link)
    other.wait_for_selector("#whatif-status:has-text('Stored run')", timeout=20_000)
    assert _rows(other, "#whatif-deltas") == deltas and _rows(other, "#whatif-effects") == effects
    other.wait_for_selector("#whatif-fan .legend:has-text('scenario P10–P90')")
    if SHOTS:
        other.wait_for_load_state("networkidle")
        other.locator("#whatif-effects").scroll_into_view_if_needed()
        other.wait_for_timeout(300)
        other.screenshot(path=str(ROOT / "docs" / "screenshots" / "whatif-result.png"))
    other.close()
    phone = new_page(browser, 390, 844, errors)
    phone.goto(plant.url + link)
    phone.wait_for_selector("#whatif-status:has-text('Stored run')", timeout=20_000)
    phone.wait_for_load_state("networkidle")
    assert phone.evaluate("document.documentElement.scrollWidth") == 390  # tables scroll in their cards
    if SHOTS:  # the form as a phone opens it (top of the page), then the stored run's results below it
        phone.wait_for_timeout(300)
        phone.screenshot(path=str(ROOT / "docs" / "screenshots" / "whatif-phone.png"))
        phone.locator("#whatif-link").scroll_into_view_if_needed()
        phone.wait_for_timeout(300)
        phone.screenshot(path=str(ROOT / "docs" / "screenshots" / "whatif-result-phone.png"))
    phone.close()
    page.close()
    assert errors == []


def test_cancel_leaves_no_running_panel_and_no_stale_count(browser, plant: RunningPlant) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page = new_page(browser, 1440, 900, errors)
    page.goto(plant.url + "/whatif?site=pod-berlin")
    page.wait_for_selector("#whatif-interventions:has-text('No interventions')")
    page.fill("#whatif-horizon", "72")
    page.fill("#whatif-replications", "500")
    page.click("#whatif-run")
    page.wait_for_selector("#whatif-early:has-text('early bands')", timeout=20_000)
    # while the run goes, the fan chart already has both bands and the KPI table its rows
    page.wait_for_selector("#whatif-fan .legend:has-text('scenario P10–P90')")
    assert page.locator("#whatif-deltas tbody tr").count() >= 5 and "Done" not in page.inner_text("#whatif-status")
    page.click("#whatif-cancel")
    page.wait_for_selector("#whatif-status:has-text('Cancelled')")
    page.wait_for_timeout(1_000)  # a second later: still cancelled, not "Running… 2/500" forever
    assert "Cancelled" in page.inner_text("#whatif-status") and page.inner_text("#whatif-progress") == ""
    assert page.inner_text("#whatif-early") == ""  # the cancelled run's early bands are gone
    assert page.is_enabled("#whatif-run")
    # the next run starts from an empty bar and finishes
    page.fill("#whatif-replications", "6")
    page.click("#whatif-run")
    page.wait_for_selector("#whatif-status:has-text('Done: 6 replications')", timeout=60_000)
    assert page.inner_text("#whatif-progress") == "6/6"
    page.close()
    assert errors == []
