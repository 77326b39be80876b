"""The fleet page's site tiles name a high failure risk (and only then), linked to that machine.

The store is ``test_health.py``'s fourteen days of Berlin with the degrading truth; at ``WORN``
(24 November 08:00 UTC) printer P3 is worn: about 47 % within 8 h from the Cox model, every other
machine below 1 % (``test_health_browser``'s numbers). The fleet tiles drawn from that health view
say so under Berlin's tile and nowhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_health import SITE, WORN, counting_opener, stored  # noqa: F401 (the store, a module fixture)

from connectors.store import SqliteHistorian
from dashboard.health import HealthService, fmt_risk
from dashboard.pages import fleet as fleet_page
from dashboard.queries import QueryService
from twin.health.monitor import HealthMonitor
from twin.spec import FleetSpec


def _walk(c: Any) -> list[Any]:
    kids = getattr(c, "children", None)
    if kids is None or isinstance(kids, str):
        return [c]
    return [c, *[x for k in (kids if isinstance(kids, list | tuple) else [kids]) for x in _walk(k)]]


def test_only_the_site_with_a_worn_machine_says_its_risk_and_links_to_it(stored: tuple[FleetSpec, Path]) -> None:  # noqa: F811
    fleet, db = stored
    open_reader, _opened = counting_opener(fleet, db)
    health = HealthService(fleet=fleet, open_historian=open_reader, clock=lambda: WORN)
    view = health.refresh()
    store = SqliteHistorian(db, fleet, readonly=True)
    try:
        # the number a person would check: a monitor of its own over the same history at the same moment
        p3 = next(h for h in HealthMonitor(fleet).refresh(store, WORN).machines if h.machine == "P3")
        tiles = QueryService(fleet=fleet, historian=store, clock=lambda: WORN).fleet_tiles()
        cols, _summary = fleet_page.render_tiles(tiles, view)
    finally:
        store.close()
    assert p3.risk.p >= view.high  # P3 is high (about 47 %): the premise of this test
    risks = {}
    for tile, col in zip(tiles, cols, strict=True):
        links = [c for c in _walk(col) if "site-risk" in (getattr(c, "className", "") or "")]
        risks[tile.site] = [(c.children, c.href) for c in links]
    # Berlin's tile: one line, P3's 8 h risk as the machine page shows it, opening P3's page
    assert risks[SITE] == [(f"P3 risk {fmt_risk(p3.risk.p)} / 8 h", f"/machine?site={SITE}&machine=P3")]
    # every other site is calm: no line at all (ISA-101: normal is quiet)
    assert all(v == [] for s, v in risks.items() if s != SITE), risks
    # without a health view (the service off, or before its first result) no tile has one
    calm, _ = fleet_page.render_tiles(tiles, None)
    assert not [c for col in calm for c in _walk(col) if "site-risk" in (getattr(c, "className", "") or "")]
