"""'Fork from here' in real headless Chromium, repeated: replay at Lyon -> what-if at Lyon and the cursor's time.

The same running plant as ``test_whatif_browser`` (emulated PLCs -> collector -> SQLite -> dashboard,
refresh every second). The fork once opened what-if with no site in 2 of 8 runs when the fork time was
a text field; this test repeats the fork ``RUNS`` times and asserts every one of them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
from chromium import available, launched, new_page
from plant import RunningPlant, running_plant

from tests.conftest import free_port
from twin.clock import utc_now

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

sync_api = pytest.importorskip("playwright.sync_api")

if not available():
    pytest.skip("no /usr/bin/chromium", allow_module_level=True)

RUNS = 10  # forks in a row; each must land on Lyon at the replay's cursor
RUN_BUDGET_S = 240.0  # and the loop stops (failing) if the ten take longer than this
LYON = ZoneInfo("Europe/Paris")


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlant]:
    def ports() -> Iterator[int]:
        while True:
            yield free_port()

    with running_plant(tmp_path_factory.mktemp("fork"), ports(), history=timedelta(minutes=20), step_s=2.0,
                       stale_after_polls=3, speed=60.0, round_the_clock=True) as p:
        yield p


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with launched(sync_api) as b:
        yield b


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_fork_from_here_opens_lyon_at_the_cursor_every_time(browser, plant: RunningPlant) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page = new_page(browser, 1440, 900, errors)
    began = time.monotonic()
    seen = []
    for k in range(RUNS):
        assert time.monotonic() - began < RUN_BUDGET_S, f"{k} forks in {RUN_BUDGET_S:g} s"
        # a different cursor each run (whole minutes, a few minutes back: inside the 20 min of history)
        at = (utc_now() - timedelta(minutes=3 + k % 5)).replace(second=0, microsecond=0)
        page.goto(plant.url + f"/replay?site=pod-lyon&from={_iso(at - timedelta(minutes=5))}&to={_iso(utc_now())}"
                  f"&at={_iso(at)}")
        page.wait_for_selector("#replay-tiles .machine-tile")
        page.wait_for_load_state("networkidle")
        href = page.get_attribute("#replay-fork", "href") or ""
        # the fork names Lyon and the cursor (UTC, to the minute)
        assert parse_qs(urlparse(href).query) == {"site": ["pod-lyon"], "at": [at.strftime("%Y-%m-%dT%H:%M")]}
        page.click("#replay-fork")
        page.wait_for_selector("#whatif-interventions:has-text('No interventions')")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)  # any late callback (a refresh tick) has had its say
        seen.append((page.inner_text("#whatif-site"), page.input_value("#whatif-at"),
                     page.inner_text("#whatif-at-zone")))
        # the cursor in Lyon's time, 24 h, with its zone next to the field (CET in winter, CEST in summer)
        local = at.astimezone(LYON)
        want = ("Lyon point-of-demand (pod-lyon)", local.strftime("%Y-%m-%d %H:%M"), local.tzname())
        assert seen[-1] == want, (k, seen)
    page.close()
    assert errors == []
