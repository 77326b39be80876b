"""The reducer's hot path (big batches of in-order GOOD readings) and the fast ``Reading`` factories.

``twin.live.apply`` skips work for the common case: a status code that maps to the status the machine
is already in, a counter counting up, one ``SignalValue`` built straight into its slots. These tests
pin that the shortcuts give what the general rules say (the docstring of ``twin.live``), including
the cases right next to them, and that a batch gives the same state as the same readings applied in
consecutive batches.
"""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.twin.conftest import T0, build_fleet
from twin.live import apply, initial_state
from twin.readings import Quality, Reading
from twin.spec import FleetSpec, MachineStatus
from twin.state import EventKind, TwinState

S = MachineStatus
G, B = Quality.GOOD, Quality.BAD


def at(dt_s: float) -> datetime:
    return T0 + timedelta(seconds=dt_s)


def rd(dt_s: float, asset: str, signal: str, value: object, quality: Quality = G,
       reason: str = "") -> Reading:
    return Reading(ts=at(dt_s), site="s1", asset=asset, signal=signal, value=value,  # type: ignore[arg-type]
                   quality=quality, reason=reason)


# ------------------------------------------------------------------------------------------- Reading


def test_reading_new_is_the_constructor() -> None:
    t = datetime(2026, 1, 5, 8, 0, 0, 123456, tzinfo=UTC)
    fast = Reading.new(t, "s1", "P1", "temp", 41.5, B, "sensor fault")
    slow = Reading(ts=t, site="s1", asset="P1", signal="temp", value=41.5, quality=B, reason="sensor fault")
    assert fast == slow and hash(repr(fast)) == hash(repr(slow))
    assert pickle.loads(pickle.dumps(fast)) == slow
    assert Reading.new(t, "s1", "P1", "status", 2) == Reading(ts=t, site="s1", asset="P1", signal="status",
                                                              value=2)
    with pytest.raises(AttributeError):  # still frozen
        fast.value = 1.0  # type: ignore[misc]


def test_reading_new_validates_any_other_timestamp() -> None:
    naive = datetime(2026, 1, 5, 8, 0)
    with pytest.raises(ValueError, match="timezone-aware UTC"):
        Reading.new(naive, "s1", "P1", "temp", 1.0)
    with pytest.raises(ValueError, match="timezone-aware UTC"):
        Reading.good_many(naive, "s1", [("P1", "temp")], [1.0])
    with pytest.raises(ValueError, match="timezone-aware UTC"):
        Reading.new(naive.replace(tzinfo=timezone(timedelta(hours=1))), "s1", "P1", "temp", 1.0)
    other_utc = naive.replace(tzinfo=timezone(timedelta(0)))  # UTC, but not datetime.UTC itself: accepted
    assert Reading.new(other_utc, "s1", "P1", "temp", 1.0).ts == other_utc


def test_good_many_is_one_good_reading_per_key() -> None:
    keys = [("P1", "status"), ("P1", "good"), ("P2", "nozzle_c")]
    got = Reading.good_many(at(0), "s1", keys, [2, 10, 215.5])
    assert got == [Reading(ts=at(0), site="s1", asset=a, signal=s, value=v)
                   for (a, s), v in zip(keys, [2, 10, 215.5], strict=True)]
    with pytest.raises(ValueError):  # a value for every key, no more, no less
        Reading.good_many(at(0), "s1", keys, [2, 10])


# ------------------------------------------------------------------------------------------- apply


def test_the_same_status_again_changes_nothing_but_the_signal() -> None:
    fleet = build_fleet()
    state, events = apply(fleet, initial_state(fleet, at(0)), [rd(1, "P1", "status", 2)])
    assert [e.data["to"] for e in events] == ["running"]
    batch = [rd(1 + i * 0.1, "P1", "status", 2) for i in range(1, 30)]
    new, events = apply(fleet, state, batch)
    m = new.sites["s1"].machines["P1"]
    assert events == () and m.status is S.RUNNING and m.status_since == at(1)
    assert m.signals["status"].ts == batch[-1].ts and m.status_quality is G


def test_a_good_status_after_a_bad_one_restores_the_quality() -> None:
    fleet = build_fleet()
    state, _ = apply(fleet, initial_state(fleet, at(0)), [rd(1, "P1", "status", 2)])
    # BAD status: UNKNOWN with the reason; then the same code GOOD again: RUNNING, quality GOOD
    new, events = apply(fleet, state, [rd(2, "P1", "status", None, B, "exception 4: device failure"),
                                       rd(3, "P1", "status", 2)])
    m = new.sites["s1"].machines["P1"]
    assert [(e.data["from"], e.data["to"]) for e in events] == [("running", "unknown"),
                                                                ("unknown", "running")]
    assert (m.status, m.status_quality, m.status_reason, m.status_since) == (S.RUNNING, G, "", at(3))
    # a code out of the map right after a known one: UNKNOWN and BAD, not skipped
    new, events = apply(fleet, new, [rd(4, "P1", "status", 2), rd(5, "P1", "status", 9)])
    m = new.sites["s1"].machines["P1"]
    assert (m.status, m.status_quality, m.status_reason) == (S.UNKNOWN, B, "status code 9 not in map")
    # True is not the code 1: a bool status is not in the map either
    new, _ = apply(fleet, new, [rd(6, "P1", "status", 1), rd(7, "P1", "status", True)])
    assert new.sites["s1"].machines["P1"].status is S.UNKNOWN


def test_counters_in_one_batch_count_up_wrap_and_reset() -> None:
    fleet = build_fleet()  # P1: good is 32-bit, scrap 16-bit
    state = initial_state(fleet, at(0))
    batch = [rd(1, "P1", "good", 100), rd(2, "P1", "good", 103), rd(3, "P1", "good", 103),
             rd(4, "P1", "good", 110),
             rd(1, "P1", "scrap", 65530), rd(2, "P1", "scrap", 65535),
             rd(3, "P1", "scrap", 4),  # wraps at 2**16
             rd(5, "P1", "good", 7),  # a PLC restart: 7 parts since
             rd(6, "P1", "good", 9.0), rd(7, "P1", "good", 12, B)]  # a whole float counts; BAD never does
    new, events = apply(fleet, state, batch)
    m = new.sites["s1"].machines["P1"]
    # good: baseline 100, +3 +0 +7 = 10, restart +7, +2 (9.0) = 19; scrap: baseline 65530, +5, wrap +5 = 10
    assert (m.good_total, m.last_raw_good, m.scrap_total, m.last_raw_scrap) == (19, 9, 10, 4)
    assert [e.kind for e in events] == [EventKind.COUNTER_RESET]


def _no_alarms() -> FleetSpec:
    return replace(build_fleet(), alarms=())


STEP = st.fixed_dictionaries({
    "status": st.sampled_from([1, 2, 2, 2, 3, 4, 9]),
    "good": st.integers(0, 3),
    "scrap": st.integers(0, 1),
    "restart": st.booleans(),
    "nozzle_c": st.floats(150, 300) | st.none(),
    "bad": st.booleans(),
})


@settings(max_examples=60, deadline=None)
@given(st.lists(STEP, min_size=1, max_size=25), st.data())
def test_one_batch_is_the_same_as_consecutive_batches(steps: list[dict[str, object]],
                                                       data: st.DataObject) -> None:
    # Dense sampling (every 0.5 s: nothing goes stale) of P1, P2 and B1; no alarm rules (their
    # duration timers start at evaluation time, which batching moves). Whatever the split, the state
    # and the events are the same.
    fleet = _no_alarms()
    readings: list[Reading] = []
    good = {"P1": 0, "P2": 0}
    for i, step in enumerate(steps):
        t = 1 + 0.5 * i
        for asset in ("P1", "P2"):
            restart = step["restart"] and asset == "P2"
            good[asset] = 0 if restart else good[asset] + int(step["good"])  # type: ignore[call-overload]
            quality = B if step["bad"] and asset == "P1" else G
            why = "exception 2" if quality is B else ""
            readings += [rd(t, asset, "status", step["status"], quality, why),
                         rd(t, asset, "good", good[asset]), rd(t, asset, "scrap", step["scrap"]),
                         rd(t, asset, "nozzle_c", step["nozzle_c"])]
        readings.append(rd(t, "B1", "status", step["status"]))
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(readings) - 1), max_size=6), label="cuts")))
    # whole steps per batch (a cut inside one instant would only move that instant's events)
    per_step = len(readings) // len(steps)
    cuts = sorted({c - c % per_step for c in cuts} - {0})
    start = initial_state(fleet, at(0))
    whole, whole_events = apply(fleet, start, readings)
    state: TwinState = start
    events: list[object] = []
    for lo, hi in zip([0, *cuts], [*cuts, len(readings)], strict=True):
        state, ev = apply(fleet, state, readings[lo:hi])
        events.extend(ev)
    assert state == whole
    assert events == list(whole_events)
