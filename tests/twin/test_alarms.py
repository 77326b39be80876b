"""Alarm rules: duration, clear, acknowledge, stock below reorder point, machine down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from twin.alarms import AlarmError, acknowledge, condition, evaluate
from twin.live import apply, initial_state, refresh
from twin.readings import Quality
from twin.spec import Priority
from twin.state import EventKind


def at(dt_s: float) -> datetime:
    return datetime(2026, 1, 5, 8, 0, tzinfo=UTC) + timedelta(seconds=dt_s)


def kinds(events) -> list[tuple[EventKind, str]]:
    return [(e.kind, e.asset) for e in events if e.kind.value.startswith("alarm")]


def hot_state(fleet, rd):
    """P1's nozzle at 260 °C from t=0 to t=30: the 'hot' rule (above 250 for 30 s) raises at t=30."""
    state = initial_state(fleet, at(0))
    state, ev0 = apply(fleet, state, [rd(0, "P1", "nozzle_c", 260.0)])
    state, ev20 = apply(fleet, state, [rd(20, "P1", "nozzle_c", 262.0)])
    assert kinds(ev0) == kinds(ev20) == []  # not before for_s
    assert state.sites["s1"].pending == {"hot:P1": at(0)}
    assert state.sites["s1"].alarms == {}
    state, ev30 = apply(fleet, state, [rd(30, "P1", "nozzle_c", 265.0)])
    return state, ev30


def test_threshold_with_duration_raises_only_after_for_s(fleet, rd):
    state, ev = hot_state(fleet, rd)
    (raised,) = [e for e in ev if e.kind is EventKind.ALARM_RAISED]
    assert raised.asset == "P1" and raised.ts == at(30)
    assert dict(raised.data) == {"rule": "hot", "priority": int(Priority.HIGH), "value": 265.0}
    alarm = state.sites["s1"].alarms["hot:P1"]
    assert (alarm.active, alarm.acknowledged, alarm.raised_at, alarm.value) == (True, False, at(30), 265.0)
    assert state.sites["s1"].pending == {}


def test_condition_that_drops_before_for_s_restarts_the_timer(fleet, rd):
    state = initial_state(fleet, at(0))
    state, _ = apply(fleet, state, [rd(0, "P1", "nozzle_c", 260.0)])
    state, _ = apply(fleet, state, [rd(10, "P1", "nozzle_c", 240.0)])  # false: pending dropped
    assert state.sites["s1"].pending == {}
    state, _ = apply(fleet, state, [rd(20, "P1", "nozzle_c", 260.0)])
    state, ev = apply(fleet, state, [rd(40, "P1", "nozzle_c", 260.0)])  # only 20 s since t=20
    assert kinds(ev) == [] and state.sites["s1"].pending == {"hot:P1": at(20)}


def test_pending_alarm_is_raised_by_refresh_without_new_readings(fleet, rd):
    state = initial_state(fleet, at(0))
    state, _ = apply(fleet, state, [rd(0, "P1", "nozzle_c", 260.0)])
    state, _ = apply(fleet, state, [rd(28, "P1", "nozzle_c", 260.0)])
    state, ev = refresh(fleet, state, at(30))  # the t=28 sample is 2 s old, still GOOD
    assert kinds(ev) == [(EventKind.ALARM_RAISED, "P1")]


def test_stale_value_neither_raises_nor_clears(fleet, rd):
    state, _ = hot_state(fleet, rd)
    state, ev = refresh(fleet, state, at(100))
    assert state.sites["s1"].machines["P1"].signals["nozzle_c"].quality is Quality.STALE
    assert kinds(ev) == [] and state.sites["s1"].alarms["hot:P1"].active
    # and a stale value never starts a pending alarm
    state2 = initial_state(fleet, at(0))
    state2, _ = apply(fleet, state2, [rd(0, "P2", "nozzle_c", 240.0)])
    state2, ev = refresh(fleet, state2, at(100))
    assert state2.sites["s1"].pending == {} and kinds(ev) == []


def test_clear_then_acknowledge_removes_the_alarm(fleet, rd):
    state, _ = hot_state(fleet, rd)
    state, ev = apply(fleet, state, [rd(31, "P1", "nozzle_c", 240.0)])
    assert kinds(ev) == [(EventKind.ALARM_CLEARED, "P1")]
    alarm = state.sites["s1"].alarms["hot:P1"]
    assert (alarm.active, alarm.cleared_at, alarm.acknowledged) == (False, at(31), False)  # kept: not acked
    site, event = acknowledge(state.sites["s1"], "hot:P1", user="ana", comment="fan replaced", at=at(40))
    assert "hot:P1" not in site.alarms  # cleared + acknowledged: gone
    assert event.kind is EventKind.ALARM_ACKNOWLEDGED and event.ts == at(40)
    assert (event.data["user"], event.data["comment"], event.data["rule"]) == ("ana", "fan replaced", "hot")
    assert site.recent_events[-1] == event
    assert "hot:P1" in state.sites["s1"].alarms  # the input state is unchanged


def test_acknowledge_active_then_clear_removes_it(fleet, rd):
    state, _ = hot_state(fleet, rd)
    site, _ = acknowledge(state.sites["s1"], "hot:P1", user="ben", comment="", at=at(31))
    alarm = site.alarms["hot:P1"]
    assert (alarm.active, alarm.acknowledged, alarm.acked_by, alarm.acked_at) == (True, True, "ben", at(31))
    state = state.__class__(fleet=state.fleet, as_of=state.as_of, sites=state.sites.set("s1", site))
    state, ev = apply(fleet, state, [rd(32, "P1", "nozzle_c", 200.0)])
    assert kinds(ev) == [(EventKind.ALARM_CLEARED, "P1")]
    assert state.sites["s1"].alarms == {}


@pytest.mark.parametrize(
    ("key", "user", "message"),
    [("nope:P1", "ana", "no alarm"), ("hot:P1", "", "needs a user"), ("hot:P1", "  ", "needs a user")],
)
def test_acknowledge_errors(fleet, rd, key, user, message):
    state, _ = hot_state(fleet, rd)
    with pytest.raises(AlarmError, match=message):
        acknowledge(state.sites["s1"], key, user=user, comment="", at=at(31))


def test_acknowledge_twice_is_an_error(fleet, rd):
    state, _ = hot_state(fleet, rd)
    site, _ = acknowledge(state.sites["s1"], "hot:P1", user="ana", comment="", at=at(31))
    with pytest.raises(AlarmError, match="already acknowledged by 'ana'"):
        acknowledge(site, "hot:P1", user="ben", comment="", at=at(32))


def test_stock_below_reorder_point(fleet, rd):
    state = initial_state(fleet, at(0))
    state, ev = apply(fleet, state, [rd(0, "FIL", "on_hand", 12.0)])
    assert kinds(ev) == []  # 12 >= 10
    state, ev = apply(fleet, state, [rd(1, "FIL", "on_hand", 8.0)])
    assert kinds(ev) == [(EventKind.ALARM_RAISED, "FIL")]  # for_s = 0: at once
    alarm = state.sites["s1"].alarms["low:FIL"]
    assert (alarm.value, alarm.priority) == (8.0, Priority.MEDIUM)
    state, ev = apply(fleet, state, [rd(2, "FIL", "on_hand", 108.0)])
    assert kinds(ev) == [(EventKind.ALARM_CLEARED, "FIL")]


def test_machine_down_for_ten_minutes(fleet, rd):
    state = initial_state(fleet, at(0))
    state, ev = apply(fleet, state, [rd(0, "P2", "status", 3)])
    assert kinds(ev) == []
    state, ev = apply(fleet, state, [rd(599, "P2", "status", 3)])
    assert kinds(ev) == []  # 599 s < 600 s
    state, ev = apply(fleet, state, [rd(600, "P2", "status", 3)])
    assert kinds(ev) == [(EventKind.ALARM_RAISED, "P2")]
    assert state.sites["s1"].alarms["down:P2"].priority is Priority.URGENT
    state, ev = apply(fleet, state, [rd(700, "P2", "status", 2)])
    assert kinds(ev) == [(EventKind.ALARM_CLEARED, "P2")]
    # the rule is limited to site s1: C1 at s2 in FAULT for an hour raises nothing
    state, ev = apply(fleet, state, [rd(700, "C1", "status", 3, site="s2")])
    state, ev = apply(fleet, state, [rd(4300, "C1", "status", 3, site="s2")])
    assert kinds(ev) == [] and state.sites["s2"].alarms == {}


def test_incremental_evaluation_matches_full_evaluation(fleet, rd):
    state = initial_state(fleet, at(0))
    state, _ = apply(fleet, state, [rd(0, "P1", "nozzle_c", 260.0), rd(0, "FIL", "on_hand", 3.0),
                                    rd(0, "P2", "status", 3)])
    site_spec = fleet.site("s1")
    full, full_events = evaluate(fleet, site_spec, state.sites["s1"], at(0))
    assert full == state.sites["s1"] and full_events == ()  # nothing left that a full pass would change
    assert condition(fleet.alarms[0], site_spec, state.sites["s1"], "P1") == (True, 260.0)
    assert condition(fleet.alarms[1], site_spec, state.sites["s1"], "FIL") == (True, 3.0)
    assert condition(fleet.alarms[2], site_spec, state.sites["s1"], "B1") == (None, "unknown")
