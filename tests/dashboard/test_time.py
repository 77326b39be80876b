"""Times as people read them (``dashboard.timefmt``) and the replay as the site page at a past moment.

Formatting is checked at the edges that go wrong: the hour after the clocks go forward, the hour
that happens twice when they go back, a day of 23 hours. The replay's view of a past moment must be
the live builders' view of that moment: what the site page would have shown then.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from conftest import NOW
from history import FAULT_FOR

from dashboard import components, figures, timefmt
from dashboard.queries import QueryService
from dashboard.timefmt import TimeChoice
from dashboard.viewmodels import AlarmRow, TimelineSegment
from twin.spec import MachineStatus, Priority, Shift, ShiftCalendar
from twin.state import Event, EventKind

PARIS, CHICAGO = "Europe/Paris", "America/Chicago"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(("ts", "tz", "text"), [
    # Paris goes from CET (+1) to CEST (+2) at 2026-03-29 01:00 UTC: 02:00 local becomes 03:00
    (utc(2026, 3, 29, 0, 30), PARIS, "2026-03-29 01:30 CET"),
    (utc(2026, 3, 29, 1, 30), PARIS, "2026-03-29 03:30 CEST"),  # the hour after the switch: +2, not +1
    # and back at 2026-10-25 01:00 UTC: 02:30 local happens twice, told apart by the zone's name
    (utc(2026, 10, 25, 0, 30), PARIS, "2026-10-25 02:30 CEST"),
    (utc(2026, 10, 25, 1, 30), PARIS, "2026-10-25 02:30 CET"),
    # Austin (Chicago's zone) goes from CST (-6) to CDT (-5) at 2026-03-08 08:00 UTC
    (utc(2026, 3, 8, 7, 30), CHICAGO, "2026-03-08 01:30 CST"),
    (utc(2026, 3, 8, 8, 30), CHICAGO, "2026-03-08 03:30 CDT"),
    (utc(2026, 11, 30, 13, 5), None, "2026-11-30 13:05 UTC"),  # a fleet-level time says UTC
])
def test_a_time_reads_in_its_sites_zone_with_the_zones_name(ts: datetime, tz: str | None, text: str) -> None:
    assert timefmt.fmt_datetime(ts, tz) == text
    assert timefmt.fmt_time(ts, tz) == text[11:]  # "14:05 CET": the time of day with its zone, 24 h


def test_the_same_instant_in_lyon_and_austin_and_utc_on_hover() -> None:
    t = utc(2026, 11, 30, 13, 5, 7)
    assert timefmt.fmt_datetime(t, PARIS, seconds=True) == "2026-11-30 14:05:07 CET"
    assert timefmt.fmt_datetime(t, CHICAGO, seconds=True) == "2026-11-30 07:05:07 CST"
    span = components.when(t, PARIS, seconds=True)
    assert span.children == "2026-11-30 14:05:07 CET" and span.title == "UTC 2026-11-30T13:05:07Z"


def test_typed_times_are_read_in_the_sites_zone_across_the_clock_changes() -> None:
    assert timefmt.parse_input("2026-11-30 14:05", PARIS) == utc(2026, 11, 30, 13, 5)
    assert timefmt.parse_input("2026-11-30T14:05:30", CHICAGO) == utc(2026, 11, 30, 20, 5, 30)
    assert timefmt.parse_input("2026-03-29 03:30", PARIS) == utc(2026, 3, 29, 1, 30)  # after the switch: +2
    # 02:30 on the night the clocks go back happens twice: the first (still CEST, +2)
    assert timefmt.parse_input("2026-10-25 02:30", PARIS) == utc(2026, 10, 25, 0, 30)
    assert timefmt.parse_input("2026-11-30 14:05Z", PARIS) == utc(2026, 11, 30, 14, 5)  # an explicit zone wins
    assert timefmt.parse_input("30/11/2026 2:05 PM", PARIS) is None  # not 24 h ISO: refused, not guessed
    # what an input shows, read back, is the same minute
    t = utc(2026, 10, 25, 1, 30)
    assert timefmt.fmt_input(t, CHICAGO) == "2026-10-24 20:30"
    assert timefmt.parse_input(timefmt.fmt_input(t, CHICAGO), CHICAGO) == t


def test_yesterday_is_the_sites_calendar_day_23_hours_after_the_switch() -> None:
    r = timefmt.preset_range("yesterday", utc(2026, 3, 30, 12, 0), PARIS)
    # Sunday 29 March in Paris: from 00:00 CET (23:00 UTC the day before) to 00:00 CEST (22:00 UTC): 23 hours
    assert (r.start, r.end) == (utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 22, 0))
    assert r.end is not None and r.start is not None and r.end - r.start == timedelta(hours=23)


def test_the_presets_and_this_shift_from_the_sites_calendar() -> None:
    now = utc(2026, 11, 30, 13, 5)
    hour = timefmt.preset_range("last-hour", now)
    assert (hour.start, hour.end) == (now - timedelta(hours=1), now)
    week = timefmt.preset_range("last-7-days", now)
    assert week.start == now - timedelta(days=7)
    day = ShiftCalendar(shifts=(Shift(name="day", weekdays=frozenset(range(7)), start=time(6), end=time(14)),))
    shift = timefmt.preset_range("this-shift", utc(2026, 11, 30, 12, 5), PARIS, day)  # 13:05 CET: in shift
    assert shift.start == utc(2026, 11, 30, 5, 0)  # 06:00 CET, when Lyon's day shift began
    idle = timefmt.preset_range("this-shift", utc(2026, 11, 30, 20, 0), PARIS, day)
    assert idle.start == utc(2026, 11, 30, 12, 0)  # no shift running: the last 8 hours
    assert timefmt.preset_range("live", now).live


def test_the_url_carries_the_choice_and_keeps_the_page_keys() -> None:
    choice = TimeChoice(start=utc(2026, 11, 30, 12, 0), end=utc(2026, 11, 30, 13, 0), preset="last-hour")
    search = choice.search("?site=pod-lyon&at=2026-01-01T00:00:00Z")
    assert search == "?site=pod-lyon&from=2026-11-30T12%3A00%3A00Z&to=2026-11-30T13%3A00%3A00Z&preset=last-hour"
    back = TimeChoice.from_search(search)
    assert (back.start, back.end, back.at, back.preset) == (choice.start, choice.end, None, "last-hour")
    assert TimeChoice().search(search) == "?site=pod-lyon"  # live: the time keys go, the site stays
    # the replay's older links (start= / end=, naive UTC to the minute) are read too
    old = TimeChoice.from_search("?site=pod-berlin&start=2026-11-30T12:00")
    assert old.start == utc(2026, 11, 30, 12, 0) and old.end is None
    now = utc(2026, 11, 30, 15, 0)
    assert TimeChoice(at=utc(2027, 1, 1)).moment(now) == now  # never after now


def test_alarm_rows_in_each_sites_zone_with_utc_tooltips() -> None:
    raised = utc(2026, 7, 1, 12, 0)
    rows = [AlarmRow(site=s, key="k", rule="r", asset="M", priority=Priority.HIGH, message="m", active=True,
                     raised_at=raised) for s in ("pod-lyon", "pod-austin")]
    out = components.alarm_table_rows(rows, zones={"pod-lyon": PARIS, "pod-austin": CHICAGO})
    assert [r["raised"] for r in out] == ["2026-07-01 14:00:00 CEST", "2026-07-01 07:00:00 CDT"]
    assert out[0]["raised_utc"] == "UTC 2026-07-01T12:00:00Z"


def test_status_change_noise_is_folded_under_one_line() -> None:
    t = utc(2026, 11, 30, 12, 0)
    events = [Event(ts=t + timedelta(minutes=i), site="pod-lyon", asset="CNC1", kind=EventKind.STATUS_CHANGE,
                    message="CNC1: running -> idle") for i in range(12)]
    events.append(Event(ts=t, site="pod-lyon", asset="CNC1", kind=EventKind.ALARM_RAISED, message="down"))
    html_ = components.event_table(events, PARIS)
    folded = html_.children[1]
    assert folded.children[0].children == "12 status changes"  # one line, opened on a click
    main = str(html_.children[0].to_plotly_json())
    assert "alarm raised" in main and "running -> idle" not in main
    assert "13:00:00 CET" in main  # the alarm's time in Lyon's time


def test_the_timeline_is_drawn_in_the_sites_wall_clock() -> None:
    t0 = utc(2026, 11, 30, 12, 0)
    seg = TimelineSegment(machine="CNC1", status=MachineStatus.RUNNING, start=t0, end=t0 + timedelta(hours=1))
    fig = figures.status_timeline([seg], t0, t0 + timedelta(hours=2), tz=PARIS, cursor=t0, clickable=True)
    bar = fig.data[0]
    assert bar.base[0].isoformat() == "2026-11-30T13:00:00+01:00"  # drawn at 13:00, Lyon's time
    assert list(bar.customdata[0][2:]) == ["13:00 CET", "14:00 CET"]
    assert fig.layout.xaxis.title.text == "time (CET)"
    grid = fig.data[-1]  # the invisible grid that makes the strip clickable, the bars leave it the pointer
    assert grid.marker.color == "rgba(0,0,0,0)" and bar.hoverinfo == "skip"
    assert list(grid.customdata[4]) == ["13:02 CET", "2026-11-30T12:02:00Z"]  # local on hover, UTC on a click


def test_the_replay_at_a_moment_is_the_site_view_built_at_that_moment(queries: QueryService) -> None:
    # an hour ago Lyon's CNC1 was not yet in FAULT (it failed FAULT_FOR = 40 min before NOW)
    past = NOW - timedelta(hours=1)
    view = queries.site_view_at("pod-lyon", past)
    assert not view.live and view.now == past and view.timezone == PARIS
    cnc = next(m for m in view.machines if m.machine == "CNC1")
    state = queries.historian.state_at("pod-lyon", past)
    assert state is not None
    m = state.machines["CNC1"]
    # the tile is the historian's state at that moment (what `twin replay` prints), not today's
    assert (cnc.reported, cnc.good_total, cnc.scrap_total) == (m.status, m.good_total, m.scrap_total)
    assert cnc.shown is not MachineStatus.FAULT and past < NOW - FAULT_FOR
    assert not [a for a in view.alarms if a.active and a.asset == "CNC1"]  # its alarm came later
    live = queries.site_view_at("pod-lyon", None)
    assert live.live and next(x for x in live.machines if x.machine == "CNC1").shown is MachineStatus.FAULT
    # the live view is the replay at now: the same builders, the same numbers
    assert queries.site_view_at("pod-lyon", NOW + timedelta(hours=1)).live


def test_the_header_control_writes_the_moment_typed_in_the_sites_zone(queries: QueryService) -> None:
    from dashboard.pages._shared import time_control_search, time_note

    # NOW is 12:00 UTC on 2026-01-07: 13:00 in Lyon (CET). A moment typed on a Lyon page is Lyon's time
    typed = time_control_search(queries, "?site=pod-lyon", None, "2026-01-07 12:30", typed_now=True)
    assert TimeChoice.from_search(typed).at == utc(2026, 1, 7, 11, 30)
    assert "site=pod-lyon" in (typed or "")
    # on a fleet-level page (no site) the same text is UTC, and the fleet page says it stays live
    fleet = time_control_search(queries, "", None, "2026-01-07 11:30", typed_now=True)
    assert TimeChoice.from_search(fleet).at == utc(2026, 1, 7, 11, 30)
    assert "fleet page shows live data only" in time_note(queries, "/", fleet)
    assert time_note(queries, "/site", typed) == "at 2026-01-07 12:30:00 CET"
    assert "this page shows live data only" in time_note(queries, "/alarms", typed)
    # a moment in the future is now; text that is not a 24 h ISO time changes nothing
    later = time_control_search(queries, "?site=pod-lyon", None, "2026-01-08 12:00", typed_now=True)
    assert TimeChoice.from_search(later).at == NOW
    assert time_control_search(queries, "?site=pod-lyon", None, "noon", typed_now=True) is None
    # "live" clears the time, keeping the site
    assert time_control_search(queries, typed, "live", None, typed_now=False) == "?site=pod-lyon"


BERLIN = "Europe/Berlin"


def _drawn(x: object) -> datetime:
    """Where plotly.js draws a date: the time written, its offset ignored (figures._wall)."""
    t = x if isinstance(x, datetime) else datetime.fromisoformat(str(x))
    return t.replace(tzinfo=None)


def _day(day: datetime, hours: int) -> list[TimelineSegment]:
    """A machine running the whole local day, then idle the first local hour of the next: ``hours`` long."""
    end = day + timedelta(hours=hours)
    return [TimelineSegment(machine="CNC1", status=MachineStatus.RUNNING, start=day, end=end),
            TimelineSegment(machine="CNC1", status=MachineStatus.IDLE, start=end, end=end + timedelta(hours=1))]


def test_the_25_hour_day_is_25_hours_wide_with_both_of_its_two_oclock_hours() -> None:
    # Berlin's clocks go back on Sunday 2026-10-25 at 03:00 CEST = 01:00 UTC (to 02:00 CET): the local day
    # runs from 00:00 CEST (22:00 UTC on the 24th) to 00:00 CET (23:00 UTC on the 25th), 25 hours
    day0, day1 = utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 23, 0)
    assert day1 - day0 == timedelta(hours=25)
    assert timefmt.preset_range("yesterday", utc(2026, 10, 26, 12, 0), BERLIN).end == day1  # the calendar day
    fig = figures.status_timeline(_day(day0, 25), day0, day1 + timedelta(hours=1), tz=BERLIN, clickable=True)
    bar = next(b for b in fig.data if b.name == "RUNNING")
    # the bar is the day's 25 hours of real time long (90,000,000 ms), not the 24 of its wall clock
    assert bar.x[0] == 25 * 3600 * 1000
    assert list(bar.customdata[0][1:]) == ["25.0 h", "00:00 CEST", "00:00 CET"]
    # drawn on one offset (+2, the range's first): the day ends 25 h after it began on the axis as well
    x0 = _drawn(fig.layout.xaxis.range[0])
    idle = next(b for b in fig.data if b.name == "IDLE")
    assert _drawn(idle.base[0]) - x0 == timedelta(hours=25)
    # the ticks are written in Berlin's time: every 3 h of 26 h, and 02:00 twice, told apart by the zone
    ax = fig.layout.xaxis
    assert ax.title.text == "time (CEST → CET)"
    texts = [t.split("<br>")[0] for t in ax.ticktext]
    assert texts[:3] == ["00:00 CEST", "03:00 CET", "06:00 CET"]  # 03:00 CEST never happens: 02:00 CET instead
    hourly = figures._Clock.over(utc(2026, 10, 24, 23, 0), utc(2026, 10, 25, 3, 0), BERLIN).axis()
    assert [t.split("<br>")[0] for t in hourly["ticktext"]] == [
        "01:00 CEST", "02:00 CEST", "02:00 CET", "03:00 CET", "04:00 CET"]
    gaps = {_drawn(b) - _drawn(a) for a, b in
            zip(hourly["tickvals"], hourly["tickvals"][1:], strict=False)}
    assert gaps == {timedelta(hours=1)}  # each hour an hour wide, the repeated one too
    # a click on the grid reports its UTC instant: a point in the second 02:xx hour (CET) is between
    # 01:00 and 02:00 UTC, an hour after the same wall-clock time in the first (CEST)
    grid = fig.data[-1]
    first = [c for c in grid.customdata if c[0].startswith("02:") and c[0].endswith("CEST")]
    second = [c for c in grid.customdata if c[0].startswith("02:") and c[0].endswith(" CET")]
    assert first and second
    assert all("2026-10-25T00:00:00Z" <= c[1] < "2026-10-25T01:00:00Z" for c in first)
    assert all("2026-10-25T01:00:00Z" <= c[1] < "2026-10-25T02:00:00Z" for c in second)
    from dashboard.pages.replay import strip_time

    # its x is the axis position (+2 h: 03:xx), yet the cursor goes to the UTC instant the point carries
    t = strip_time({"points": [{"x": "2026-10-25 03:35", "customdata": second[0]}]}, BERLIN)
    assert t == timefmt.parse_url_time(second[0][1]) and timefmt.fmt_time(t, BERLIN) == second[0][0]


def test_the_23_hour_day_is_23_hours_wide_and_skips_two_oclock() -> None:
    # Berlin's clocks go forward on Sunday 2026-03-29 at 02:00 CET = 01:00 UTC (to 03:00 CEST): 23 hours
    day0, day1 = utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 22, 0)
    assert timefmt.preset_range("yesterday", utc(2026, 3, 30, 12, 0), BERLIN).start == day0
    fig = figures.status_timeline(_day(day0, 23), day0, day1 + timedelta(hours=1), tz=BERLIN)
    bar = next(b for b in fig.data if b.name == "RUNNING")
    assert bar.x[0] == 23 * 3600 * 1000 and list(bar.customdata[0][1:]) == ["23.0 h", "00:00 CET", "00:00 CEST"]
    x0 = _drawn(fig.layout.xaxis.range[0])
    assert _drawn(next(b for b in fig.data if b.name == "IDLE").base[0]) - x0 == timedelta(hours=23)
    hourly = figures._Clock.over(utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 2, 0), BERLIN).axis()
    assert [t.split("<br>")[0] for t in hourly["ticktext"]] == ["01:00 CET", "03:00 CEST", "04:00 CEST"]
    assert hourly["title"]["text"] == "time (CET → CEST)"


def test_a_range_without_a_clock_change_keeps_plotlys_wall_clock_ticks() -> None:
    t0 = utc(2026, 11, 30, 12, 0)
    seg = TimelineSegment(machine="CNC1", status=MachineStatus.RUNNING, start=t0, end=t0 + timedelta(hours=1))
    ax = figures.status_timeline([seg], t0, t0 + timedelta(hours=2), tz=BERLIN).layout.xaxis
    assert ax.tickmode is None and ax.tickformat == "%H:%M\n%Y-%m-%d" and ax.title.text == "time (CET)"


def test_a_what_if_runs_order_due_times_in_its_sites_zone() -> None:
    from dashboard.whatif_tables import orders_table
    from dashboard.whatif_view import OrderChance, WhatIfResult

    due = utc(2026, 11, 30, 13, 5)
    result = WhatIfResult(name="x", site="pod-lyon", at=due, horizon_h=24.0, replications=10,
                          orders=(OrderChance(order="O-1", due=due, p_baseline=0.5, p_scenario=0.6, ci_low=0.4,
                                              ci_high=0.8),))
    cell = orders_table(result, PARIS).children.children[1].children[0].children[1]
    assert cell.children == "2026-11-30 14:05 CET" and cell.title == "UTC 2026-11-30T13:05:00Z"
