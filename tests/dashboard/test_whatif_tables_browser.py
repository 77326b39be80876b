"""The what-if KPI table in real headless Chromium: hand-worked numbers, and a phone never scrolls sideways.

A small Dash app with the dashboard's own stylesheet (``dashboard/assets``) serves the deltas table
and the each-intervention-alone table in a card, as the what-if page does, for three hand-worked
KPI deltas. At 1440 px it is a table with its header; at 390 px each row folds into a block with
every value named (``Baseline 412 units``) and the bar across the card, and neither the page nor the
table inside its card is wider than the screen (the earlier table hid its Δ column behind a
sideways scroll).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dash
import pytest
from chromium import available, launched, new_page
from conftest import ROOT
from dash import html
from serve import serving

from dashboard.pages._shared import card
from dashboard.whatif_tables import deltas_table, effects_table
from dashboard.whatif_view import Effect, KpiDelta
from tests.conftest import free_port
from twin.sim.kpis import KPIS

pytestmark = [pytest.mark.browser, pytest.mark.server]

sync_api = pytest.importorskip("playwright.sync_api")

if not available():
    pytest.skip("no /usr/bin/chromium", allow_module_level=True)


def _delta(key: str, base: float, scen: float, lo: float, hi: float) -> KpiDelta:
    info = KPIS[key]
    k = info.scale
    return KpiDelta(kpi=info.label, unit=info.unit, baseline=base * k, scenario=scen * k, delta=(scen - base) * k,
                    ci_low=lo * k, ci_high=hi * k, higher_is_better=info.higher_is_better,
                    delta_unit=info.delta_unit, decimals=info.decimals)


# hand-worked (see test_whatif_results): 412 -> 380 units, CI [-45, -19] (26 wide: whole units);
# on-time 0.9123 -> 0.9181 = +0.58 pp, CI 1.56 pp wide -> 1 decimal; lead time 6.4 -> 5.1 h, CI 1.2 wide -> 1 decimal
UNITS = _delta("units_done", 412.0, 380.0, -45.0, -19.0)
ON_TIME = _delta("on_time_rate", 0.9123, 0.9181, -0.0018, 0.0138)
LEAD = _delta("lead_time_h", 6.4, 5.1, -1.9, -0.7)
EFFECTS = (Effect(intervention="machine CNC2 at Berlin: cycle time × 0.8 (a longer name that wraps on a phone)",
                  replications=50, on_time=ON_TIME, output=UNITS),
           Effect(intervention="overtime shift", replications=50, on_time=None, output=UNITS))


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = dash.Dash(__name__, assets_folder=str(ROOT / "dashboard" / "assets"))
    app.layout = html.Div([card("KPI deltas", html.Div(deltas_table((UNITS, ON_TIME, LEAD)), id="deltas")),
                           card("Each intervention alone", html.Div(effects_table(EFFECTS), id="effects"))],
                          style={"padding": "8px"})
    with serving(app, free_port()) as u:
        yield u


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched(sync_api) as b:
        yield b


def _cells(page: Any, table: str) -> list[list[str]]:
    return page.evaluate(f"""[...document.querySelectorAll('{table} tbody tr')].map(
        tr => [...tr.children].map(td => (td.dataset.label ? td.dataset.label + ' ' : '') + td.innerText
                                          .replace(/\\s+/g, ' ').trim()))""")


def test_wide_screen_shows_a_table_of_the_hand_worked_values(browser: Any, url: str) -> None:
    page = new_page(browser, 1440, 900)
    page.goto(url)
    page.wait_for_selector("#deltas table")
    assert page.locator("#deltas thead").is_visible()
    m = "\u2212"
    assert _cells(page, "#deltas") == [
        ["units finished", "Baseline 412 units", "Scenario 380 units", f"Δ (95 % CI) {m}32 units [{m}45, {m}19]", ""],
        ["on-time delivery", "Baseline 91.2 %", "Scenario 91.8 %", f"Δ (95 % CI) +0.6 pp [{m}0.2, +1.4]", ""],
        ["lead time", "Baseline 6.4 h", "Scenario 5.1 h", f"Δ (95 % CI) {m}1.3 h [{m}1.9, {m}0.7]", ""],
    ]
    page.close()


@pytest.mark.parametrize("table", ["#deltas", "#effects"])
def test_on_a_phone_each_row_folds_into_a_block_and_nothing_scrolls_sideways(browser: Any, url: str,
                                                                             table: str) -> None:
    page = new_page(browser, 390, 844)
    page.goto(url)
    page.wait_for_selector(f"{table} table")
    assert page.evaluate("document.documentElement.scrollWidth") == 390
    assert not page.locator(f"{table} thead").is_visible()  # the column names sit before each value instead
    # the table fits its card: no scroll inside it either (the Δ column was hidden behind one)
    box = page.evaluate(f"""(() => {{ const t = document.querySelector('{table} table');
        const c = t.closest('.card-body'); return [t.scrollWidth, c.clientWidth, c.scrollWidth]; }})()""")
    assert box[0] <= box[1] and box[2] <= box[1], box
    # every bar spans the row's width (the card is 390 - 2 x 8 px page padding - its own padding, ~340 px)
    widths = page.evaluate(f"[...document.querySelectorAll('{table} .wf-track')].map(e => e.clientWidth)")
    assert widths and min(widths) > 250, widths
    if table == "#deltas":
        # Baseline and Scenario on one line, side by side: the same top, the left one first
        tops = page.evaluate("""[...document.querySelectorAll('#deltas tbody tr:first-child td')].map(
            td => [td.getBoundingClientRect().top, td.getBoundingClientRect().left])""")
        assert tops[1][0] == tops[2][0] and tops[1][1] < tops[2][1]
        assert tops[0][0] < tops[1][0] < tops[3][0] < tops[4][0]  # KPI, then the values, Δ, bar
    page.close()
