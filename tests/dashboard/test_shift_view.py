"""The Shift page's service on the dashboard history (``history.py``, up to ``NOW``, Wednesday 12:00 UTC): its
shifts, and what it refuses before anything is recorded. The collector's own checks and the way through it
are ``tests/connectors/test_operator_events.py`` and ``test_shift_browser.py``."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from conftest import NOW

from app.report import DashboardReports
from connectors.store import SqliteHistorian
from dashboard.queries import QueryService
from dashboard.shift_view import SO_FAR_MARGIN, ShiftService
from twin.errors import AlarmError
from twin.spec import FleetSpec
from twin.state import EventKind

P3_STALE = datetime.fromisoformat("2026-01-07T11:44:03+00:00")


@pytest.fixture
def shifts(queries: QueryService, historian: SqliteHistorian, fleet: FleetSpec) -> ShiftService:
    return ShiftService(queries=queries, reports=DashboardReports(lambda: historian, fleet))


def test_the_shifts_offered_newest_first_the_current_one_so_far(shifts: ShiftService) -> None:
    shown = shifts.windows("pod-berlin")
    # Berlin: early 06:00-14:00 and late 14:00-22:00 local (CET: UTC+1), Monday to Friday
    assert [(w.name, w.start.isoformat(), w.end) for w in shown[:3]] == [
        ("early", "2026-01-07T05:00:00+00:00", NOW + SO_FAR_MARGIN),
        ("late", "2026-01-06T13:00:00+00:00", NOW - timedelta(hours=15)),
        ("early", "2026-01-06T05:00:00+00:00", NOW - timedelta(hours=23))]
    assert shifts.window("pod-berlin", "2026-01-06T13:00:00+00:00") == shown[1]
    assert shifts.window("pod-berlin", "not a time") == shown[0]


def test_what_is_refused_before_anything_is_recorded(shifts: ShiftService, historian: SqliteHistorian) -> None:
    w = shifts.windows("pod-berlin")[0]
    with pytest.raises(AlarmError, match=r"^reason: 'coffee' is not in the downtime tree of pod-berlin \("):
        shifts.classify(site="pod-berlin", window=w, machine="P3", start=P3_STALE, reason="coffee", user="ana",
                        comment="")
    with pytest.raises(AlarmError, match=r"no stop of P1 at 2026-01-07T11:44:03\+00:00 that needs a person"):
        shifts.classify(site="pod-berlin", window=w, machine="P1", start=P3_STALE, reason="blocked", user="ana",
                        comment="")
    key = "stock-below-reorder:PLA-1KG"
    with pytest.raises(AlarmError, match=r"^comment: say why"):
        shifts.shelve(site="pod-berlin", window=w, key=key, change="shelved", user="ana", comment=" ")
    with pytest.raises(AlarmError, match=r"^duration: more than 0 and at most 480 min \(got 481\)"):
        shifts.shelve(site="pod-berlin", window=w, key=key, change="shelved", user="ana", comment="x", timed_min=481)
    with pytest.raises(AlarmError, match=r"^no alarm 'hot:P9' at pod-berlin in this shift or active now"):
        shifts.shelve(site="pod-berlin", window=w, key="hot:P9", change="shelved", user="ana", comment="x")
    assert not [e for e in historian.events("pod-berlin", NOW - timedelta(hours=8), NOW + timedelta(hours=1))
                if e.kind in (EventKind.STOP_CLASSIFIED, EventKind.ALARM_SHELVING)]


def test_a_classification_changes_the_report(shifts: ShiftService) -> None:
    w = shifts.windows("pod-berlin")[0]
    before = shifts.report("pod-berlin", w)
    # P3 unknown from 11:44:03 to just after 12:00: 957 s that need a person
    assert [(r.reason, round(r.seconds)) for r in before.pareto if r.reason in (None, "blocked")] == [(None, 957)]
    event = shifts.classify(site="pod-berlin", window=w, machine="P3", start=P3_STALE, reason="blocked",
                            user="ana", comment="outfeed full")
    assert event.data["start"] == "2026-01-07T11:44:03+00:00"
    after = shifts.report("pod-berlin", w)  # the cache was dropped: read again
    assert [(r.reason, round(r.seconds)) for r in after.pareto if r.reason in (None, "blocked")] == [("blocked", 957)]
    stop = next(s for s in after.stops if s.machine == "P3" and s.start == P3_STALE)
    assert (stop.by, stop.classified_at, stop.comment) == ("ana", NOW, "outfeed full")
