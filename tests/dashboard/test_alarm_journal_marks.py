"""The dashboard's alarm journal marks shelved and suppressed alarms, also one raised before the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboard.pages.alarms import hidden
from dashboard.views import alarm_journal
from twin.frozen import FrozenDict
from twin.spec import AlarmId, Priority, SiteId
from twin.state import AlarmState, Event, EventKind

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def ev(minute: int, kind: EventKind, asset: str, **data: object) -> Event:
    return Event(ts=T0 + timedelta(minutes=minute), site=SiteId("s1"), asset=asset, kind=kind, message=kind.value,
                 data=FrozenDict({"rule": "hot", "key": f"hot:{asset}", "priority": 2, **data}))  # type: ignore[arg-type]


def test_shelved_suppressed_and_raised_before_the_window() -> None:
    # hot:P9 raised at 07:00, before the window's events: it comes from the site's current alarms
    old = AlarmState(rule=AlarmId("hot"), site=SiteId("s1"), asset="P9", priority=Priority.HIGH, message="old",
                     active=True, raised_at=T0 - timedelta(hours=1))
    events = [
        # out of service at 08:05 by cy: the 07:00 instance, still active, is marked with it
        ev(5, EventKind.ALARM_SHELVING, "P9", change="out_of_service", user="cy", comment="probe broken"),
        # P1 OFF from 08:10, its alarm at 08:12: suppressed by design; P2's at 08:15: annunciated
        ev(10, EventKind.STATUS_CHANGE, "P1", to="off"), ev(12, EventKind.ALARM_RAISED, "P1"),
        ev(15, EventKind.ALARM_RAISED, "P2"),
    ]
    rows = alarm_journal([old], events)  # newest first
    assert [(r.asset, r.shelf, r.shelved_by, r.shelved_why, r.suppressed) for r in rows] == [
        ("P2", "", "", "", False), ("P1", "", "", "", True), ("P9", "out of service", "cy", "probe broken", False)]
    # the page's filter: hide shelved drops P9, hide suppressed drops P1, both leave P2
    assert [r.asset for r in hidden(rows, ["hide shelved"])] == ["P2", "P1"]
    assert [r.asset for r in hidden(rows, ["hide suppressed"])] == ["P2", "P9"]
    assert [r.asset for r in hidden(rows, ["hide shelved", "hide suppressed"])] == ["P2"]
