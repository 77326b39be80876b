"""The Alarms page and the CSV export agree on suppression by design when the machine's status predates the window.

A real SQLite store (tmp_path) with a short history of Berlin: P3 goes into MAINTENANCE on Tuesday at 10:00
UTC and stays there; P1 runs. On Wednesday at 10:00 (``NOW`` - 2 h) an alarm is raised on each. The Alarms
page's window is the last 8 h (04:00..12:00): it holds no status change of P3, so only the status at the
window's start tells that P3 was in maintenance when its alarm came. ISA-18.2 (and ``twin.alarm_shelving``):
an alarm raised while its machine is in maintenance is suppressed by design; P1's, raised while running, is not.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

from conftest import NOW

from connectors.export import export_alarms
from connectors.store import SqliteHistorian
from dashboard.queries import QueryService
from twin import live
from twin.frozen import FrozenDict
from twin.readings import Reading
from twin.spec import FleetSpec, SiteId
from twin.state import Event, EventKind

SITE = SiteId("pod-berlin")
IN_MAINTENANCE = NOW - timedelta(hours=26)  # Tuesday 10:00 UTC, 18 h before the page's 8-hour window
RAISED = NOW - timedelta(hours=2)


def _history(path: Path, fleet: FleetSpec) -> SqliteHistorian:
    store = SqliteHistorian(path, fleet)
    state = live.initial_state(fleet, IN_MAINTENANCE - timedelta(minutes=1))
    # status codes of the example printers: 2 running, 4 maintenance; a reading every hour up to now
    t = IN_MAINTENANCE
    while t <= NOW:
        readings = [Reading(ts=t, site=SITE, asset="P3", signal="status", value=4),
                    Reading(ts=t, site=SITE, asset="P1", signal="status", value=2)]
        state, events = live.apply(fleet, state, readings, t)
        extra = []
        if t == RAISED:
            extra = [Event(ts=t, site=SITE, asset=m, kind=EventKind.ALARM_RAISED, message=f"{m} too hot",
                           data=FrozenDict({"rule": "hot", "key": f"hot:{m}", "priority": 3}))
                     for m in ("P3", "P1")]
        store.write(readings, [state.sites[SITE]], [*events, *extra])
        t += timedelta(hours=1)
    return store


def test_an_alarm_raised_in_maintenance_since_before_the_window_is_suppressed_on_the_page_and_in_the_csv(
        fleet: FleetSpec, tmp_path: Path) -> None:
    store = _history(tmp_path / "twin.sqlite", fleet)
    try:
        events = store.events("pod-berlin", NOW - timedelta(hours=8), NOW)
        # the window itself says nothing of P3's maintenance: its only status change is 18 h before
        assert not [e for e in events if e.kind is EventKind.STATUS_CHANGE and e.asset == "P3"]
        queries = QueryService(fleet=fleet, historian=store, clock=lambda: NOW)
        rows = queries.alarm_rows(sites=["pod-berlin"], priorities=None, states=None, hours=8)
        assert sorted((r.asset, r.suppressed) for r in rows if r.rule == "hot") == [("P1", False), ("P3", True)]

        out = io.StringIO()
        export_alarms(store, "pod-berlin", NOW - timedelta(hours=8), NOW, out)
        got = sorted((r["asset"], r["suppressed"]) for r in csv.DictReader(io.StringIO(out.getvalue()))
                     if r["message"].endswith("too hot"))
        assert got == [("P1", "no"), ("P3", "yes")]
    finally:
        store.close()
