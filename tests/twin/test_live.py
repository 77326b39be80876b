"""The live reducer: status, counters, staleness, inventory, unknown data, immutability."""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from twin.live import RECENT_EVENTS, apply, apply_detailed, apply_site, initial_state, refresh
from twin.readings import Quality, Reading
from twin.spec import FleetSpec, MachineStatus
from twin.state import EventKind, TwinState

S = MachineStatus


def at(dt_s: float) -> datetime:
    return datetime(2026, 1, 5, 8, 0, tzinfo=UTC) + timedelta(seconds=dt_s)


def run(fleet: FleetSpec, batches: list[list[Reading]], state: TwinState | None = None) -> tuple[TwinState, list]:
    """Apply each batch in turn (``now`` = its newest reading); return the last state and all events."""
    state = state or initial_state(fleet, at(0))
    events: list = []
    for batch in batches:
        state, ev = apply(fleet, state, batch)
        events.extend(ev)
    return state, events


def test_initial_state_has_every_machine_and_item_unknown(fleet, t0):
    state = initial_state(fleet, t0)
    assert set(state.sites) == {"s1", "s2"}
    s1 = state.sites["s1"]
    assert set(s1.machines) == {"P1", "P2", "B1"}
    assert set(s1.inventory) == {"FIL"}
    for m in s1.machines.values():
        assert (m.status, m.status_quality, m.status_reason, m.status_since) == (
            S.UNKNOWN, Quality.STALE, "no data yet", t0)
    assert s1.inventory["FIL"].quality is Quality.STALE and s1.inventory["FIL"].on_hand is None


# (status codes applied one batch each at the given second, expected final status, failures, repairs,
#  status_seconds). Worked out by hand: initial UNKNOWN since t=0.
STATUS_CASES = [
    pytest.param([(0, 2)], S.RUNNING, 0, 0, {S.UNKNOWN: 0.0}, id="unknown-to-running"),
    # RUNNING 0..2 (2 s), FAULT 2..6 (the repeated 3 at t=4 is no change: 4 s), then RUNNING.
    pytest.param([(0, 2), (2, 3), (4, 3), (6, 2)], S.RUNNING, 1, 1,
                 {S.UNKNOWN: 0.0, S.RUNNING: 2.0, S.FAULT: 4.0}, id="fault-and-repair"),
    # IDLE 0..1, SETUP 1..2, RUNNING 2..3 then MAINTENANCE: no fault, no failure.
    pytest.param([(0, 1), (1, 5), (2, 2), (3, 4)], S.MAINTENANCE, 0, 0,
                 {S.UNKNOWN: 0.0, S.IDLE: 1.0, S.SETUP: 1.0, S.RUNNING: 1.0}, id="no-fault"),
    # FAULT at once (first data): a failure; OFF after it is a repair (a known status).
    pytest.param([(0, 3), (2, 0)], S.OFF, 1, 1, {S.UNKNOWN: 0.0, S.FAULT: 2.0}, id="fault-then-off"),
]


@pytest.mark.parametrize(("codes", "status", "failures", "repairs", "seconds"), STATUS_CASES)
def test_status_changes(fleet, rd, codes, status, failures, repairs, seconds):
    state, events = run(fleet, [[rd(t, "P1", "status", code)] for t, code in codes])
    m = state.sites["s1"].machines["P1"]
    assert m.status is status
    assert m.status_quality is Quality.GOOD and m.status_reason == ""
    assert m.status_since == at(codes[-1][0])
    assert (m.failures, m.repairs) == (failures, repairs)
    assert dict(m.status_seconds) == seconds
    changes = [e for e in events if e.kind is EventKind.STATUS_CHANGE]
    # one event per actual change of status (repeats produce none)
    distinct = [c for i, (_, c) in enumerate(codes) if i == 0 or codes[i - 1][1] != c]
    assert len(changes) == len(distinct)
    assert changes[-1].data["to"] == status.value and changes[-1].asset == "P1"


def test_status_code_not_in_map_is_unknown_bad(fleet, rd):
    state, events = run(fleet, [[rd(0, "P1", "status", 2)], [rd(1, "P1", "status", 9)]])
    m = state.sites["s1"].machines["P1"]
    assert (m.status, m.status_quality, m.status_reason) == (S.UNKNOWN, Quality.BAD, "status code 9 not in map")
    assert m.status_since == at(1)
    assert events[-1].data == {"from": "running", "to": "unknown", "reason": "status code 9 not in map"}


def test_bad_status_reading_is_unknown_with_its_reason(fleet, rd):
    state, _ = run(fleet, [[rd(0, "P1", "status", 2)],
                           [rd(1, "P1", "status", None, Quality.BAD, "modbus exception 2")]])
    m = state.sites["s1"].machines["P1"]
    assert (m.status, m.status_quality, m.status_reason) == (S.UNKNOWN, Quality.BAD, "modbus exception 2")
    # the last known raw value is kept, marked BAD
    assert m.signals["status"].value == 2 and m.signals["status"].quality is Quality.BAD


# (signal, raw values one batch each, expected total, expected COUNTER_RESET events)
COUNTER_CASES = [
    pytest.param("good", [100], 0, 0, id="first-reading-is-baseline"),
    pytest.param("good", [100, 105, 110], 10, 0, id="increments"),
    pytest.param("good", [100, 100], 0, 0, id="no-change"),
    # 2**32 - 3 -> 2: 3 steps to wrap to 0, then 2 more = 5
    pytest.param("good", [2**32 - 3, 2], 5, 0, id="wrap-32-bit"),
    # 16-bit scrap: 65530 -> 4: 6 to 65536 (=0), then 4 = 10
    pytest.param("scrap", [65530, 4], 10, 0, id="wrap-16-bit"),
    # 5000 -> 12 is not a wrap (5000 is not in the top quarter): PLC restart, 12 parts since then
    pytest.param("good", [5000, 12, 20], 20, 1, id="reset-after-plc-restart"),
    # a restart to 0 counts nothing, never negative
    pytest.param("good", [700, 0], 0, 1, id="reset-to-zero"),
    # top quarter but the new value is not in the bottom quarter: a reset, 2**31 parts since restart
    pytest.param("good", [2**32 - 10, 2**31], 2**31, 1, id="top-quarter-to-middle-is-reset"),
    # 16-bit: 40000 is below the top quarter (49152): reset, 3 parts
    pytest.param("scrap", [40000, 3], 3, 1, id="reset-16-bit"),
]


@pytest.mark.parametrize(("signal", "raws", "total", "resets"), COUNTER_CASES)
def test_counters(fleet, rd, signal, raws, total, resets):
    state, events = run(fleet, [[rd(i, "P1", signal, raw)] for i, raw in enumerate(raws)])
    m = state.sites["s1"].machines["P1"]
    assert (m.good_total if signal == "good" else m.scrap_total) == total
    assert (m.last_raw_good if signal == "good" else m.last_raw_scrap) == raws[-1]
    assert len([e for e in events if e.kind is EventKind.COUNTER_RESET]) == resets


def test_bad_counter_readings_never_touch_the_baseline(fleet, rd):
    state, _ = run(fleet, [
        [rd(0, "P1", "good", 100)],
        [rd(1, "P1", "good", None, Quality.BAD, "timeout")],
        [rd(2, "P1", "good", 0, Quality.STALE, "device unreachable")],
        [rd(3, "P1", "good", 103)],
    ])
    m = state.sites["s1"].machines["P1"]
    assert (m.good_total, m.last_raw_good) == (3, 103)  # 100 -> 103, the BAD/STALE in between ignored


def test_counter_value_out_of_range_is_bad_and_ignored(fleet, rd):
    state, _ = run(fleet, [[rd(0, "P1", "scrap", 10)], [rd(1, "P1", "scrap", 70000)], [rd(2, "P1", "scrap", 12)]])
    m = state.sites["s1"].machines["P1"]
    assert m.scrap_total == 2
    assert state.sites["s1"].machines["P1"].signals["scrap"].quality is Quality.GOOD


def test_counters_within_one_batch(fleet, rd):
    # unsorted batch: sorted by time, 100 -> 110 -> (restart) 5 = 10 + 5 parts
    batch = [rd(2, "P1", "good", 5), rd(0, "P1", "good", 100), rd(1, "P1", "good", 110)]
    state, events = apply(fleet, initial_state(fleet, at(0)), batch)
    assert state.sites["s1"].machines["P1"].good_total == 15
    assert [e.kind for e in events] == [EventKind.COUNTER_RESET]


def test_staleness_turns_running_into_unknown_since_it_went_stale(fleet, rd):
    state, _ = run(fleet, [[rd(0, "P1", "status", 2), rd(0, "P1", "nozzle_c", 210.0)]])
    # P1 polls every 1 s, stale after 3 polls = 3 s
    fresh, ev = refresh(fleet, state, at(3))
    assert fresh.sites["s1"].machines["P1"].status is S.RUNNING and ev == ()
    stale, ev = refresh(fleet, state, at(10))
    m = stale.sites["s1"].machines["P1"]
    assert (m.status, m.status_quality, m.status_reason) == (S.UNKNOWN, Quality.STALE, "not refreshed for 3 s")
    assert m.status_since == at(3)  # sampled at 0 + threshold 3 s, not the refresh time 10
    assert m.status_seconds[S.RUNNING] == 3.0
    assert m.signals["nozzle_c"].quality is Quality.STALE and m.signals["nozzle_c"].value == 210.0
    assert [(e.kind, e.ts, e.data["to"]) for e in ev] == [(EventKind.STATUS_CHANGE, at(3), "unknown")]
    assert stale.as_of == at(10) and stale.sites["s1"].as_of == at(10)
    # a second refresh changes nothing more
    again, ev = refresh(fleet, stale, at(20))
    assert again.sites["s1"].machines["P1"] == m and ev == ()


def test_recovery_to_good_after_stale(fleet, rd):
    state, _ = run(fleet, [[rd(0, "P1", "status", 3)]])
    state, _ = refresh(fleet, state, at(10))  # FAULT 0..3, UNKNOWN from 3
    state, _ = apply(fleet, state, [rd(12, "P1", "status", 3)])
    m = state.sites["s1"].machines["P1"]
    assert (m.status, m.status_quality, m.status_since) == (S.FAULT, Quality.GOOD, at(12))
    assert m.status_seconds[S.UNKNOWN] == 9.0  # 3 -> 12
    assert m.failures == 1  # still the same fault across the data gap
    state, _ = apply(fleet, state, [rd(13, "P1", "status", 2)])
    assert state.sites["s1"].machines["P1"].repairs == 1


def test_fault_gap_then_running_counts_the_repair(fleet, rd):
    state, _ = run(fleet, [[rd(0, "P1", "status", 3)]])
    state, _ = refresh(fleet, state, at(10))
    state, _ = apply(fleet, state, [rd(12, "P1", "status", 2)])
    m = state.sites["s1"].machines["P1"]
    assert (m.status, m.failures, m.repairs) == (S.RUNNING, 1, 1)


def test_other_signals_are_stored_with_quality(fleet, rd):
    state, _ = run(fleet, [[rd(0, "P1", "nozzle_c", 215.5), rd(0, "P1", "job", "JOB-42")]])
    sig = state.sites["s1"].machines["P1"].signals
    assert (sig["nozzle_c"].value, sig["nozzle_c"].quality, sig["nozzle_c"].ts) == (215.5, Quality.GOOD, at(0))
    assert sig["job"].value == "JOB-42"


def test_out_of_order_sample_is_not_applied_and_reported(fleet, rd):
    state, _ = run(fleet, [[rd(5, "P1", "status", 2)]])
    result = apply_detailed(fleet, state, [rd(4, "P1", "status", 3)])
    assert result.state.sites["s1"].machines["P1"].status is S.RUNNING
    assert [(i.asset, i.reason, i.count) for i in result.ignored] == [("P1", "older than the latest sample", 1)]


def test_inventory_consumption_and_arrival(fleet, rd):
    state, _ = run(fleet, [
        [rd(0, "FIL", "on_hand", 50.0)],  # baseline
        [rd(1, "FIL", "on_hand", 45.0)],  # -5
        [rd(2, "FIL", "on_hand", 30.0), rd(2, "FIL", "in_transit", 100.0), rd(2, "FIL", "eta", 1767801600)],
    ])
    inv = state.sites["s1"].inventory["FIL"]
    assert (inv.on_hand, inv.quality, inv.ts) == (30.0, Quality.GOOD, at(2))
    assert inv.consumed_total == 20.0 and inv.received_total == 0.0  # 5 + 15
    assert len(inv.in_transit) == 1
    assert (inv.in_transit[0].qty, inv.in_transit[0].eta) == (100.0, datetime(2026, 1, 7, 16, 0, tzinfo=UTC))
    # the shipment arrives: on hand +100 while in transit drops to 0, then 2 kg used
    state, ev = apply(fleet, state, [rd(3, "FIL", "on_hand", 130.0), rd(3, "FIL", "in_transit", 0),
                                     rd(3, "FIL", "eta", 0)])
    state, _ = apply(fleet, state, [rd(4, "FIL", "on_hand", 128.0)])
    inv = state.sites["s1"].inventory["FIL"]
    assert (inv.received_total, inv.consumed_total, inv.in_transit) == (100.0, 22.0, ())
    arrived = [e for e in ev if e.kind is EventKind.SHIPMENT_ARRIVED]
    assert len(arrived) == 1 and arrived[0].data["qty"] == 100.0 and arrived[0].asset == "FIL"


def test_shipment_without_eta_assumes_the_nominal_lead_time(fleet, rd):
    state, _ = run(fleet, [[rd(0, "FIL", "in_transit", 40), rd(0, "FIL", "eta", 0)]])
    (shipment,) = state.sites["s1"].inventory["FIL"].in_transit
    assert shipment.qty == 40 and shipment.eta == at(0) + timedelta(days=2)  # lead_time_d = 2


def test_inventory_goes_stale(fleet, rd):
    state, _ = run(fleet, [[rd(0, "FIL", "on_hand", 50.0)]])
    state, _ = refresh(fleet, state, at(16))  # poll 5 s × 3 = 15 s
    inv = state.sites["s1"].inventory["FIL"]
    assert (inv.quality, inv.reason, inv.on_hand) == (Quality.STALE, "not refreshed for 15 s", 50.0)


def test_unknown_site_asset_signal_are_counted_not_raised(fleet, rd):
    batch = [
        rd(0, "P1", "status", 2),
        rd(0, "X9", "status", 2),
        rd(1, "X9", "status", 2),
        rd(0, "P1", "spindle_rpm", 1200),
        rd(0, "FIL", "colour", "red"),
        rd(0, "P1", "status", 2, site="mars"),
    ]
    result = apply_detailed(fleet, initial_state(fleet, at(0)), batch)
    got = {(i.site, i.asset, i.signal, i.reason): i.count for i in result.ignored}
    assert got == {
        ("s1", "X9", "status", "unknown asset"): 2,
        ("s1", "P1", "spindle_rpm", "unknown signal"): 1,
        ("s1", "FIL", "colour", "unknown signal"): 1,
        ("mars", "P1", "status", "unknown site"): 1,
    }
    assert result.ignored_count == 5
    assert result.state.sites["s1"].machines["P1"].status is S.RUNNING  # the good reading still applied
    state, _ = apply(fleet, initial_state(fleet, at(0)), batch)  # the tuple API does not raise either
    assert state.sites["s1"].machines["P1"].status is S.RUNNING


def test_input_state_is_never_mutated(fleet, rd):
    state, _ = run(fleet, [[rd(0, "P1", "status", 2), rd(0, "P1", "good", 10), rd(0, "FIL", "on_hand", 5.0)]])
    frozen_copy = pickle.loads(pickle.dumps(state))
    new, _ = apply(fleet, state, [rd(1, "P1", "status", 3), rd(1, "P1", "good", 20), rd(1, "FIL", "on_hand", 4.0)])
    assert state == frozen_copy
    assert new != state
    # untouched machines and sites are shared, not copied
    assert new.sites["s1"].machines["P2"] is state.sites["s1"].machines["P2"]
    assert new.sites["s2"].machines is state.sites["s2"].machines


def test_now_defaults_to_latest_reading_and_never_goes_back(fleet, rd):
    state = initial_state(fleet, at(10))
    new, _ = apply(fleet, state, [rd(5, "P1", "status", 2)])
    assert new.as_of == at(10)
    new, _ = apply(fleet, state, [rd(12, "P1", "status", 2), rd(11, "P2", "status", 2)])
    assert new.as_of == at(12)


def test_recent_events_are_bounded(fleet, rd):
    state = initial_state(fleet, at(0))
    for i in range(RECENT_EVENTS + 50):
        state, _ = apply(fleet, state, [rd(i, "P1", "status", 2 if i % 2 == 0 else 1)])
    tail = state.sites["s1"].recent_events
    assert len(tail) == RECENT_EVENTS
    assert tail[-1].ts == at(RECENT_EVENTS + 49)  # the newest kept


def test_apply_site_matches_apply(fleet, rd):
    state = initial_state(fleet, at(0))
    batch = [rd(0, "P1", "status", 2), rd(0, "P1", "good", 7), rd(1, "P1", "good", 9)]
    whole, events = apply(fleet, state, batch)
    site, site_events = apply_site(fleet, fleet.site("s1"), state.sites["s1"], batch, at(1))
    assert site == whole.sites["s1"] and site_events == events


def test_missing_site_state_is_created(fleet, rd):
    state = initial_state(fleet, at(0))
    partial = replace(state, sites=type(state.sites)({"s1": state.sites["s1"]}))
    new, _ = apply(fleet, partial, [rd(0, "C1", "status", 2, site="s2")])
    assert new.sites["s2"].machines["C1"].status is S.RUNNING


def test_a_data_gap_does_not_restart_the_status_it_came_back_in() -> None:
    from twin.frozen import FrozenDict
    from twin.live import status_known_since
    from twin.state import Event

    t = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

    def change(minutes: float, frm: str, to: str, asset: str = "M1") -> Event:
        return Event(ts=t + timedelta(minutes=minutes), site="s1", asset=asset, kind=EventKind.STATUS_CHANGE,
                     message="", data=FrozenDict({"from": frm, "to": to}))

    off = MachineStatus.OFF
    # OFF at 0, two outages (at 300 and 340 min) it came back from OFF: OFF since 0, i.e. 5.8 h at 348 min
    log = [change(0, "running", "off"), change(300, "off", "unknown"), change(301, "unknown", "off"),
           change(320, "idle", "running", asset="M2"), change(340, "off", "unknown"), change(346.7, "unknown", "off")]
    assert status_known_since(log, "M1", off, t + timedelta(minutes=346.7)) == t
    # RUNNING before the gap and OFF after it: OFF begins when it came back
    changed = [change(0, "idle", "running"), change(300, "running", "unknown"), change(310, "unknown", "off")]
    assert status_known_since(changed, "M1", off, t + timedelta(minutes=310)) == t + timedelta(minutes=310)
    # the first report ever (from the initial UNKNOWN) is where it began
    first = [change(5, "unknown", "off")]
    assert status_known_since(first, "M1", off, t + timedelta(minutes=5)) == t + timedelta(minutes=5)


def test_a_counted_cycle_end_marks_the_running_time_up_to_it(fleet, rd):
    # P1 runs from 0 (status 2), its good counter reads 10 then 11 at 100 s: a cycle ended at 100 s,
    # after 100 s of RUNNING. It fails at 150 s (status 3) and runs again from 400 s. RUNNING time
    # up to 500 s: 150 (0..150) + 100 (400..500) = 250, so the cycle now going on has run 250 - 100 =
    # 150 s -- the 250 s of repair do not count, and neither would a second cycle started at once
    # (the status stays RUNNING, only the counter says a cycle ended).
    state, _ = run(fleet, [
        [rd(0, "P1", "status", 2), rd(0, "P1", "good", 10)],
        [rd(100, "P1", "status", 2), rd(100, "P1", "good", 11)],
        [rd(150, "P1", "status", 3), rd(150, "P1", "good", 11)],
        [rd(400, "P1", "status", 2), rd(400, "P1", "good", 11)],
    ])
    m = state.sites["s1"].machines["P1"]
    assert m.counted_at == at(100) and m.running_s_at_count == 100.0  # the first reading is only a baseline
    assert m.running_s(at(500)) == 250.0
    # a counter wrapping around (the slow path) marks a cycle end too: 65535 -> 2 on a 16-bit scrap counter
    state, _ = run(fleet, [[rd(500, "P1", "status", 2), rd(500, "P1", "scrap", 65535)],
                           [rd(560, "P1", "status", 2), rd(560, "P1", "scrap", 2)]], state)
    m = state.sites["s1"].machines["P1"]
    assert m.counted_at == at(560) and m.running_s_at_count == 150.0 + 160.0  # RUNNING 0..150 and 400..560
