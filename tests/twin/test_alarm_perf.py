"""ISA-18.2 figures on a generated shift of alarms with a known flood, chatter, a stale and a suppressed alarm.

The shift is 06:00-14:00 (48 periods of 10 minutes). What it holds, and so what the figures must be:

* ``hot:P2`` (low) every 30 min from 06:05: 16 alarms, each acknowledged by ana 2 min after it rose;
* a flood: 12 ``low:F*`` (medium) alarms in 09:00-09:10 and 13 more in 09:10-09:20 (25 in all);
* ``vib:P3`` (high) raised at 11:00:00, 11:00:20, 11:00:40 and 11:05:00: chattering (3 within 60 s);
* ``door:P4`` (low) at 12:00:00, 12:01:30, 12:03:00: never 3 within 60 s, not chattering;
* ``leak:P8`` (medium) at 06:10, never cleared (7 h 50 min: not stale);
* ``down:P7`` (urgent) at 07:00;
* ``hot:P5`` at 10:00 while P5 was in maintenance (09:50-10:30): suppressed by design;
* ``door:P6`` raised the day before at 05:00 and still active: stale (33 h at the end).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from twin.alarm_performance import activations, performance
from twin.frozen import FrozenDict
from twin.spec import Priority
from twin.state import AlarmState, Event, EventKind

T0 = datetime(2026, 1, 5, 6, tzinfo=UTC)
T1 = T0 + timedelta(hours=8)


def _ev(kind: EventKind, t: datetime, rule: str, asset: str, priority: Priority, **data: str) -> Event:
    return Event(ts=t, site="s1", asset=asset, kind=kind, message=f"{rule} on {asset}",
                 data=FrozenDict({"rule": rule, "priority": int(priority), **data}))


def _raised(t: datetime, rule: str, asset: str, priority: Priority) -> Event:
    return _ev(EventKind.ALARM_RAISED, t, rule, asset, priority)


def _history() -> list[Event]:
    ev: list[Event] = []
    for i in range(16):
        t = T0 + timedelta(minutes=5 + 30 * i)
        ev.append(_raised(t, "hot", "P2", Priority.LOW))
        ev.append(_ev(EventKind.ALARM_CLEARED, t + timedelta(minutes=1), "hot", "P2", Priority.LOW))
        ev.append(_ev(EventKind.ALARM_ACKNOWLEDGED, t + timedelta(minutes=2), "hot", "P2", Priority.LOW, user="ana",
                      comment="known"))
    flood = T0 + timedelta(hours=3)
    for i in range(25):  # 12 in the first period (every 50 s), 13 in the next
        t = flood + timedelta(seconds=50 * i) if i < 12 else flood + timedelta(minutes=10, seconds=40 * (i - 12))
        ev.append(_raised(t, "low", f"F{i + 1}", Priority.MEDIUM))
    for s in (0, 20, 40, 300):
        t = T0 + timedelta(hours=5, seconds=s)
        ev.append(_raised(t, "vib", "P3", Priority.HIGH))
        ev.append(_ev(EventKind.ALARM_CLEARED, t + timedelta(seconds=10), "vib", "P3", Priority.HIGH))
    for s in (0, 90, 180):
        ev.append(_raised(T0 + timedelta(hours=6, seconds=s), "door", "P4", Priority.LOW))
    ev.append(_raised(T0 + timedelta(minutes=10), "leak", "P8", Priority.MEDIUM))
    ev.append(_raised(T0 + timedelta(hours=1), "down", "P7", Priority.URGENT))
    ev.append(_raised(T0 + timedelta(hours=4), "hot", "P5", Priority.LOW))
    return ev


STALE = AlarmState(rule="door", site="s1", asset="P6", priority=Priority.LOW, message="door open", active=True,
                   raised_at=T0 - timedelta(hours=25))
MAINTENANCE = {"P5": [(T0 + timedelta(hours=3, minutes=50), T0 + timedelta(hours=4, minutes=30))]}


@pytest.fixture(scope="module")
def perf():  # type: ignore[no-untyped-def]
    return performance("s1", _history(), T0, T1, active_before=[STALE], suppress=MAINTENANCE)


def test_rate_against_the_benchmarks(perf) -> None:  # type: ignore[no-untyped-def]
    # 16 + 25 + 4 + 3 + 1 + 1 = 50 annunciated in 48 periods: 1.04 per 10 min, "manageable" (between 1 and 2)
    assert perf.annunciated == 50 and perf.suppressed == 1
    assert len(perf.per_period) == 48
    assert perf.average_per_10_min == pytest.approx(50 / 48)
    assert perf.benchmark == "manageable"
    # the busiest period 09:10-09:20 holds 13 flood alarms (09:00-09:10: 12 and hot:P2 at 09:05, also 13)
    assert dict(perf.per_period)[T0 + timedelta(hours=3)] == 13
    assert dict(perf.per_period)[T0 + timedelta(hours=3, minutes=10)] == 13
    assert perf.peak_per_10_min == 13


def test_floods_and_time_in_flood(perf) -> None:  # type: ignore[no-untyped-def]
    # two consecutive periods over 10 alarms: one flood 09:00-09:20 of 26 alarms, 1200 s = 4.17 % of 8 h
    assert [(f.start, f.end, f.alarms) for f in perf.floods] == [
        (T0 + timedelta(hours=3), T0 + timedelta(hours=3, minutes=20), 26)]
    assert perf.time_in_flood_s == 1200
    assert perf.flood_share == pytest.approx(1200 / 28800)


def test_chattering_stale_and_suppressed(perf) -> None:  # type: ignore[no-untyped-def]
    assert [(c.key, c.activations, c.most_in_window) for c in perf.chattering] == [("vib:P3", 4, 3)]
    assert [a.key for a in perf.stale] == ["door:P6"]  # leak:P8, 7 h 50 min active, is not stale
    suppressed = [a for a in perf.journal if a.suppressed]
    assert [a.key for a in suppressed] == ["hot:P5"]  # kept in the journal, in no figure


def test_bad_actors_and_priorities(perf) -> None:  # type: ignore[no-untyped-def]
    top = perf.bad_actors
    assert len(top) == 10
    assert [(b.key, b.count) for b in top[:3]] == [("hot:P2", 16), ("vib:P3", 4), ("door:P4", 3)]
    assert top[0].share == pytest.approx(16 / 50)
    assert (top[0].acknowledged, top[0].median_ack_s) == (16, 120.0)
    assert top[1].acknowledged == 0 and top[1].median_ack_s is None
    # low 16 + 3, medium 25 + 1, high 4, urgent 1
    assert [(p.name, n) for p, n, _ in perf.priorities] == [("LOW", 19), ("MEDIUM", 26), ("HIGH", 4), ("URGENT", 1)]
    assert sum(share for _, _, share in perf.priorities) == pytest.approx(1.0)


def test_journal_pairs_clearing_and_acknowledgement() -> None:
    rows = activations(_history())
    first = rows[0]
    assert (first.key, first.cleared, first.acked_by, first.comment) == (
        "hot:P2", T0 + timedelta(minutes=6), "ana", "known")
    assert first.active_s(T1) == 60


def test_docstring_examples() -> None:
    import doctest

    import twin.alarm_performance

    result = doctest.testmod(twin.alarm_performance)
    assert result.failed == 0 and result.attempted > 0
