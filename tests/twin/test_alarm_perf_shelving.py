"""Shelving lifecycle (one-shot, timed with a maximum, out of service; who and why) and its effect on the figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.twin.test_alarm_perf import MAINTENANCE, STALE, T0, T1, _history
from twin.alarm_performance import performance
from twin.alarm_shelving import (
    ShelveKind,
    Shelving,
    advance,
    hidden_intervals,
    return_to_service,
    shelve,
    take_out_of_service,
    unshelve,
)
from twin.alarms import AlarmError
from twin.frozen import FrozenDict
from twin.spec import Priority
from twin.state import AlarmState

T = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def _alarm(active: bool) -> FrozenDict[str, AlarmState]:
    a = AlarmState(rule="hot", site="s1", asset="P1", priority=Priority.HIGH, message="hot", active=active,
                   raised_at=T - timedelta(minutes=5), cleared_at=None if active else T + timedelta(minutes=20))
    return FrozenDict({a.key: a})


def test_one_shot_ends_when_the_alarm_returns_to_normal() -> None:
    s, c = shelve(Shelving(), "hot:P1", kind=ShelveKind.ONE_SHOT, by="ana", comment="nozzle swap", at=T)
    assert (c.change, c.by, c.why) == ("shelved", "ana", "nozzle swap")
    s, changes = advance(s, _alarm(active=True), T + timedelta(minutes=10))
    assert changes == () and s.hidden("hot:P1") == "shelved"  # still active: still shelved
    s, changes = advance(s, _alarm(active=False), T + timedelta(minutes=20))
    assert [(c.change, c.by) for c in changes] == [("returned_to_normal", "system")]
    assert s.hidden("hot:P1") == ""


def test_timed_expires_at_its_end_and_not_before() -> None:
    s, _ = shelve(Shelving(), "hot:P1", kind=ShelveKind.TIMED, by="ana", comment="calibrating", at=T,
                  duration_s=1800)
    # a timed shelve does not end when the alarm clears, only at its end (08:30)
    s, changes = advance(s, {}, T + timedelta(minutes=29, seconds=59))
    assert changes == () and s.hidden("hot:P1") == "shelved"
    s, changes = advance(s, {}, T + timedelta(minutes=30))
    assert [(c.change, c.ts) for c in changes] == [("expired", T + timedelta(minutes=30))]


def test_refusals_name_what_is_wrong() -> None:
    with pytest.raises(AlarmError, match=r"at most 28800 s \(got 32400\)"):
        shelve(Shelving(), "hot:P1", kind=ShelveKind.TIMED, by="ana", comment="x", at=T, duration_s=9 * 3600)
    with pytest.raises(AlarmError, match="no duration"):
        shelve(Shelving(), "hot:P1", kind=ShelveKind.ONE_SHOT, by="ana", comment="x", at=T, duration_s=60)
    with pytest.raises(AlarmError, match="needs a comment"):
        shelve(Shelving(), "hot:P1", kind=ShelveKind.ONE_SHOT, by="ana", comment=" ", at=T)
    with pytest.raises(AlarmError, match="needs a user"):
        shelve(Shelving(), "hot:P1", kind=ShelveKind.ONE_SHOT, by="", comment="x", at=T)
    s, _ = shelve(Shelving(), "hot:P1", kind=ShelveKind.ONE_SHOT, by="ana", comment="x", at=T)
    with pytest.raises(AlarmError, match="already shelved by 'ana'"):
        shelve(s, "hot:P1", kind=ShelveKind.ONE_SHOT, by="bo", comment="y", at=T)
    with pytest.raises(AlarmError, match="is not shelved"):
        unshelve(Shelving(), "hot:P1", by="ana", comment="x", at=T)


def test_out_of_service_and_the_journal_of_every_change() -> None:
    s, _ = shelve(Shelving(), "hot:P1", kind=ShelveKind.ONE_SHOT, by="ana", comment="noisy", at=T)
    s, _ = take_out_of_service(s, "hot:P1", by="eng", comment="sensor replaced", at=T + timedelta(minutes=5))
    assert s.hidden("hot:P1") == "out_of_service"
    s, _ = unshelve(s, "hot:P1", by="ana", comment="done", at=T + timedelta(minutes=6))
    assert s.hidden("hot:P1") == "out_of_service"  # still out of service
    s, _ = return_to_service(s, "hot:P1", by="eng", comment="sensor back", at=T + timedelta(minutes=30))
    assert s.hidden("hot:P1") == ""
    assert [(c.change, c.by, c.why) for c in s.journal] == [
        ("shelved", "ana", "noisy"), ("out_of_service", "eng", "sensor replaced"), ("unshelved", "ana", "done"),
        ("in_service", "eng", "sensor back")]
    assert hidden_intervals(s.journal, T + timedelta(hours=1)) == {
        "hot:P1": [(T, T + timedelta(minutes=6)), (T + timedelta(minutes=5), T + timedelta(minutes=30))]}


def test_shelved_alarms_stay_in_the_journal_and_leave_the_figures() -> None:
    # hot:P2 (every 30 min from 06:05) shelved 09:00-11:00: its 09:05, 09:35, 10:05 and 10:35 alarms
    s, _ = shelve(Shelving(), "hot:P2", kind=ShelveKind.TIMED, by="ana", comment="known", at=T0 + timedelta(hours=3),
                  duration_s=7200)
    s, _ = advance(s, {}, T0 + timedelta(hours=5))
    perf = performance("s1", _history(), T0, T1, active_before=[STALE], suppress=MAINTENANCE,
                       shelved=hidden_intervals(s.journal, T1))
    assert perf.shelved == 4 and perf.suppressed == 1
    assert perf.annunciated == 50 - 4  # 46 of the 50 of test_alarm_perf
    assert sum(1 for a in perf.journal if a.shelved) == 4
    # the first flood period loses hot:P2's 09:05 alarm: 12 left, still a flood (more than 10)
    assert dict(perf.per_period)[T0 + timedelta(hours=3)] == 12
    assert [f.alarms for f in perf.floods] == [25]
    assert perf.bad_actors[0].key == "hot:P2" and perf.bad_actors[0].count == 12


def test_docstring_examples() -> None:
    import doctest

    import twin.alarm_shelving
    import twin.alarms

    for module in (twin.alarms, twin.alarm_shelving):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0
