"""Round trips of the historian's JSON codec: exact, types and enums included."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from twin.codec import (
    dt_from_json,
    dt_to_json,
    event_from_dict,
    event_to_dict,
    reading_from_dict,
    reading_to_dict,
    site_state_from_dict,
    site_state_to_dict,
)
from twin.frozen import FrozenDict
from twin.readings import Quality, Reading
from twin.spec import AlarmId, MachineId, MachineStatus, Priority, SignalName, SiteId, Sku
from twin.state import (
    AlarmState,
    Event,
    EventKind,
    InventoryState,
    MachineState,
    OpenOrder,
    Shipment,
    SignalValue,
    SiteState,
)

T = datetime(2026, 1, 5, 8, 0, 0, 123456, tzinfo=UTC)


def _through_json(d: object) -> object:
    return json.loads(json.dumps(d))


def rich_state() -> SiteState:
    ev = Event(ts=T, site=SiteId("s1"), asset="P1", kind=EventKind.ALARM_RAISED, message="hot",
               data=FrozenDict({"value": 231.5, "code": 7, "flag": True, "note": "x", "none": None}))
    m = MachineState(
        id=MachineId("P1"), status=MachineStatus.RUNNING, status_since=T, status_quality=Quality.GOOD,
        status_reason="", good_total=10, scrap_total=1, last_raw_good=4294967290, last_raw_scrap=None,
        failures=2, repairs=1,
        status_seconds=FrozenDict({MachineStatus.RUNNING: 3600.0, MachineStatus.FAULT: 12.5}),
        counted_at=T - timedelta(seconds=30), running_s_at_count=3570.0,
        signals=FrozenDict({
            SignalName("status"): SignalValue(value=2, quality=Quality.GOOD, ts=T),
            SignalName("temp_c"): SignalValue(value=2.0, quality=Quality.STALE, ts=T, reason="late"),
            SignalName("door"): SignalValue(value=True, quality=Quality.GOOD, ts=T),
            SignalName("job"): SignalValue(value="J-17", quality=Quality.BAD, ts=T, reason="garbage"),
            SignalName("none"): SignalValue(value=None, quality=Quality.BAD, ts=T, reason="timeout"),
        }),
    )
    ship = Shipment(sku=Sku("PLA"), qty=100.0, eta=T + timedelta(days=3), id="sh1")
    inv = InventoryState(sku=Sku("PLA"), on_hand=12.5, quality=Quality.GOOD, ts=T, reason="",
                         in_transit=(ship,),
                         consumed_total=3.0, received_total=0.0)
    alarm = AlarmState(rule=AlarmId("hot"), site=SiteId("s1"), asset="P1", priority=Priority.HIGH,
                       message="hot", active=False, raised_at=T, value=231.5,
                       cleared_at=T + timedelta(seconds=5),
                       acknowledged=True, acked_by="ann", acked_at=T + timedelta(seconds=9), ack_comment="ok")
    return SiteState(
        site=SiteId("s1"), as_of=T + timedelta(seconds=10),
        machines=FrozenDict({MachineId("P1"): m, MachineId("P2"): MachineState(id=MachineId("P2"))}),
        inventory=FrozenDict({Sku("PLA"): inv, Sku("BOX"): InventoryState(sku=Sku("BOX"))}),
        alarms=FrozenDict({alarm.key: alarm}),
        pending=FrozenDict({"hot:P2": T}),
        orders=(OpenOrder(id="o1", product="lamp", qty=3, created=T, due=T + timedelta(hours=48),
                          done_qty=1),),
        recent_events=(ev,),
    )


def test_site_state_round_trip_is_exact_through_json() -> None:
    s = rich_state()
    back = site_state_from_dict(_through_json(site_state_to_dict(s)))  # type: ignore[arg-type]
    assert back == s
    # equality alone would accept 2 == 2.0 == True; the types must survive too
    sig = back.machines[MachineId("P1")].signals
    assert type(sig[SignalName("status")].value) is int
    assert type(sig[SignalName("temp_c")].value) is float
    assert type(sig[SignalName("door")].value) is bool
    assert isinstance(back.machines, FrozenDict)
    assert isinstance(back.machines[MachineId("P1")].status_seconds, FrozenDict)
    assert set(back.machines[MachineId("P1")].status_seconds) == {MachineStatus.RUNNING, MachineStatus.FAULT}
    assert back.alarms["hot:P1"].priority is Priority.HIGH
    assert back.as_of.tzinfo is UTC
    assert type(back.recent_events[0].data["flag"]) is bool
    # a checkpoint written before the last counted cycle end was kept reads as "not counted yet"
    old = site_state_to_dict(s)
    for m in old["machines"].values() if isinstance(old["machines"], dict) else old["machines"]:
        m.pop("counted_at", None)
        m.pop("running_s_at_count", None)
    p1 = site_state_from_dict(_through_json(old)).machines[MachineId("P1")]  # type: ignore[arg-type]
    assert (p1.counted_at, p1.running_s_at_count) == (None, None)


def test_reading_and_event_round_trip() -> None:
    for value in (1, 1.0, True, "x", None, -0.5, 2**40):
        r = Reading(ts=T, site="s1", asset="P1", signal="v", value=value, quality=Quality.STALE, reason="r")
        back = reading_from_dict(_through_json(reading_to_dict(r)))  # type: ignore[arg-type]
        assert back == r and type(back.value) is type(value)
    e = rich_state().recent_events[0]
    assert event_from_dict(_through_json(event_to_dict(e))) == e  # type: ignore[arg-type]


def test_non_finite_floats_survive_strict_json() -> None:
    r = Reading(ts=T, site="s", asset="a", signal="v", value=float("nan"))
    text = json.dumps(reading_to_dict(r), allow_nan=False)  # must not need JSON's NaN extension
    back = reading_from_dict(json.loads(text))
    assert isinstance(back.value, float) and math.isnan(back.value)
    r2 = Reading(ts=T, site="s", asset="a", signal="v", value=float("-inf"))
    assert reading_from_dict(json.loads(json.dumps(reading_to_dict(r2), allow_nan=False))) == r2


def test_datetimes_are_normalised_to_utc_and_naive_ones_refused() -> None:
    cet = timezone(timedelta(hours=1))
    local = datetime(2026, 1, 5, 9, 0, tzinfo=cet)
    assert dt_to_json(local) == "2026-01-05T08:00:00+00:00"
    assert dt_from_json(dt_to_json(local)) == local and dt_from_json(dt_to_json(local)).tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        dt_to_json(datetime(2026, 1, 5))


def test_unknown_checkpoint_version_is_refused() -> None:
    d = site_state_to_dict(rich_state())
    d["v"] = 99
    with pytest.raises(ValueError, match="version"):
        site_state_from_dict(d)
