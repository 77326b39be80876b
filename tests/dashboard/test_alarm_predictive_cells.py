"""A predictive alarm's probability and predicted time in the journal: the Alarms page's cells and the CSV's columns."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from connectors.export import ALARM_JOURNAL_FIELDS, journal_rows
from dashboard.pages.alarms import JOURNAL_COLUMNS, predictive_cells, summary
from dashboard.views import alarm_journal
from twin.frozen import FrozenDict
from twin.spec import AlarmId, Priority, SiteId
from twin.state import AlarmState, Event, EventKind

T0 = datetime(2026, 11, 26, 5, 5, tzinfo=UTC)
MESSAGE = "P1: Failure likely: 46 % chance of failure within 8 h"
# what twin.forecast puts in the raised event's data (probability rounded to 4 places, predicted_at UTC ISO)
PREDICTIVE = {"rule": "failure-risk", "key": "failure-risk:P1", "priority": 3, "probability": 0.4604,
              "horizon_h": 8.0, "threshold": 0.3, "predicted_at": "2026-11-26T11:10:00+00:00"}


def ev(minute: int, kind: EventKind, asset: str, message: str, **data: object) -> Event:
    return Event(ts=T0 + timedelta(minutes=minute), site=SiteId("pod-berlin"), asset=asset, kind=kind,
                 message=message, data=FrozenDict(data))  # type: ignore[arg-type]


EVENTS = [
    ev(0, EventKind.ALARM_RAISED, "P1", MESSAGE, **PREDICTIVE),
    ev(3, EventKind.ALARM_RAISED, "O1", "O1: hot", rule="hot", key="hot:O1", priority=2, value=251.5),
    # the clearing carries the risk then (6.5 %): the journal keeps the one it was raised with
    ev(295, EventKind.ALARM_CLEARED, "P1", "P1: cleared", **{**PREDICTIVE, "probability": 0.065, "predicted_at": ""}),
]


def test_the_page_shows_the_risk_and_the_predicted_time_in_cells_of_their_own() -> None:
    rows = alarm_journal([], EVENTS)  # newest first
    assert [r.asset for r in rows] == ["O1", "P1"]
    hot, p1 = rows
    assert (p1.probability, p1.horizon_h, p1.predicted_at) == (0.4604, 8.0, datetime(2026, 11, 26, 11, 10, tzinfo=UTC))
    assert (hot.probability, hot.horizon_h, hot.predicted_at) == (None, None, None)  # not a predictive alarm
    # 0.4604 -> "46 %" (rounded, no-break space); 11:10 UTC is 12:10 in Berlin in November (CET, UTC+1)
    assert predictive_cells(p1, "Europe/Berlin") == {"risk": "46\u00a0% within 8 h",
                                                     "predicted": "2026-11-26 12:10 CET",
                                                     "predicted_utc": "UTC 2026-11-26T11:10:00Z"}
    assert predictive_cells(hot, "Europe/Berlin") == {"risk": "", "predicted": "", "predicted_utc": ""}
    # no predicted time (a failure less than 50 % likely within its 8 h: twin.forecast gives none): beyond 8 h
    later = replace(p1, probability=0.2, predicted_at=None)
    assert predictive_cells(later, "Europe/Berlin") == {"risk": "20\u00a0% within 8 h", "predicted": "beyond 8 h",
                                                        "predicted_utc": ""}
    # the grid has them right after the message (which alone is cut short), the message whole on hover
    fields = [c["field"] for c in JOURNAL_COLUMNS]
    assert fields[fields.index("message"):fields.index("message") + 3] == ["message", "risk", "predicted"]
    assert next(c for c in JOURNAL_COLUMNS if c["field"] == "message")["tooltipField"] == "message"


def test_the_phone_stacks_the_risk_under_the_message() -> None:
    row = {"priority": "HIGH", "site": "pod-berlin", "asset": "P1", "state": "active/unacked", "message": MESSAGE,
           "raised": "2026-11-26 06:05:00 CET", "risk": "46\u00a0% within 8 h", "predicted": "2026-11-26 12:10 CET"}
    assert summary(row).splitlines() == ["HIGH · pod-berlin P1 · active/unacked", MESSAGE,
                                         "risk 46\u00a0% within 8 h, predicted 2026-11-26 12:10 CET",
                                         "raised 2026-11-26 06:05:00 CET"]
    beyond = summary({**row, "predicted": "beyond 8 h"}).splitlines()[2]
    assert beyond == "risk 46\u00a0% within 8 h, predicted beyond 8 h"
    # not predictive: no line
    assert "risk" not in summary({**row, "risk": "", "predicted": ""})


def test_a_current_alarm_gets_its_prediction_from_its_raised_event() -> None:
    # the site's current alarm state (no probability in it) and its raised event in the window: one row, with it
    current = AlarmState(rule=AlarmId("failure-risk"), site=SiteId("pod-berlin"), asset="P1", priority=Priority.HIGH,
                         message=MESSAGE, active=True, raised_at=T0, value=0.4604)
    [row] = alarm_journal([current], EVENTS[:1])
    assert (row.probability, row.horizon_h, row.predicted_at) == (0.4604, 8.0, datetime(2026, 11, 26, 11, 10,
                                                                                         tzinfo=UTC))


def test_the_csv_has_probability_and_predicted_at_columns() -> None:
    assert ALARM_JOURNAL_FIELDS[-2:] == ("probability", "predicted_at")
    p1, hot = journal_rows(EVENTS)  # oldest first
    # the raised event's values as stored (UTC ISO-8601), not the clearing's 0.065
    assert (p1["probability"], p1["predicted_at"], p1["state"]) == ("0.4604", "2026-11-26T11:10:00+00:00",
                                                                    "cleared/unacked")
    assert (hot["probability"], hot["predicted_at"]) == ("", "")
