"""Round trip: readings through the live reducer and into the store; ``state_at(t)`` gives back its state."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from connectors.store import SqliteHistorian
from tests.connectors.store.conftest import T0
from twin import live
from twin.errors import HistorianError
from twin.readings import Quality, Reading
from twin.spec import FleetSpec, MachineStatus, SiteId
from twin.state import EventKind, SiteState


def plant_readings(rng: random.Random, k: int, now: datetime, counters: dict[str, int]) -> list[Reading]:
    """One poll of site s1 at second ``k``: two printers and the PLA stock, with faults and gaps."""
    out: list[Reading] = []
    for m in ("P1", "P2"):
        if m == "P2" and 200 <= k < 215:
            continue  # P2 unreachable for 15 s: its signals go STALE, its status UNKNOWN
        # P1 has a 30 s fault (MACHINE_DOWN after 2 s, a failure and a repair); otherwise idle/running
        status = 3 if m == "P1" and 120 <= k < 150 else (2 if (k // 40) % 4 else 1)
        if status == 2:
            counters[m] += rng.choice((0, 1))
        temp = 250.0 if m == "P1" and 300 <= k < 310 else 200.0 + rng.random() * 10  # hot for 10 s
        out.append(Reading(ts=now, site="s1", asset=m, signal="status", value=status))
        out.append(Reading(ts=now, site="s1", asset=m, signal="good", value=counters[m] % 1000 if k < 400
                           else counters[m] % 1000 + 5))  # a counter jump up at 400 s
        out.append(Reading(ts=now, site="s1", asset=m, signal="scrap", value=0))
        if k % 97 == 13:
            out.append(Reading(ts=now, site="s1", asset=m, signal="temp_c", value=None, quality=Quality.BAD,
                               reason="timeout"))
        else:
            out.append(Reading(ts=now, site="s1", asset=m, signal="temp_c", value=temp))
    out.append(Reading(ts=now, site="s1", asset="PLA", signal="on_hand", value=max(0.0, 10.0 - k * 0.02)))
    return out


def test_state_at_equals_the_live_state(store: SqliteHistorian, fleet: FleetSpec) -> None:
    rng = random.Random(7)
    site_spec = fleet.site("s1")
    state = live.initial_state(fleet, T0)
    history: dict[datetime, SiteState] = {T0: state.sites[SiteId("s1")]}
    counters = {"P1": 0, "P2": 0}
    all_events = []
    store.write([], states=[state.sites[SiteId("s1")]])  # the collector checkpoints its start
    for k in range(1, 481):  # 8 minutes at 1 Hz, a checkpoint every 60 s
        now = T0 + timedelta(seconds=k)
        batch = plant_readings(rng, k, now, counters)
        state, events = live.apply(fleet, state, batch, now)
        all_events.extend(events)
        site = state.sites[SiteId("s1")]
        history[now] = site
        store.write(batch, states=[site] if k % 60 == 0 else (), events=events)

    # the scenario did exercise the reducer: faults, alarms, staleness
    kinds = {e.kind for e in all_events}
    assert {EventKind.STATUS_CHANGE, EventKind.ALARM_RAISED, EventKind.ALARM_CLEARED} <= kinds
    assert history[T0 + timedelta(seconds=210)].machines["P2"].status is MachineStatus.UNKNOWN
    assert history[T0 + timedelta(seconds=480)].machines["P1"].failures == 1

    for k in (0, 1, 59, 60, 61, 125, 149, 205, 305, 309, 419, 420, 479, 480):
        t = T0 + timedelta(seconds=k)
        got = store.state_at("s1", t)
        assert got == history[t], f"state_at differs at +{k} s"
    # between two polls: the state at the last poll brought to t (staleness and duration alarms at t)
    for k in (130.5, 212.25, 479.9):
        t = T0 + timedelta(seconds=k)
        prev = history[T0 + timedelta(seconds=int(k))]
        expected, _ = live.apply_site(fleet, site_spec, prev, (), t)
        assert store.state_at("s1", t) == expected, f"state_at differs at +{k} s"
    # a reader continuing its replays (the live view asking for "now" again and again) gets the same
    reader = SqliteHistorian(store.path, fleet, readonly=True, replay_margin_s=0)
    try:
        for k in range(0, 481, 7):
            t = T0 + timedelta(seconds=k)
            assert reader.state_at("s1", t) == history[t], f"continued replay differs at +{k} s"
        assert reader.state_at("s1", T0 + timedelta(seconds=100)) == history[T0 + timedelta(seconds=100)]
    finally:
        reader.close()
    # and the events the reducer produced are all in the store, in order
    assert store.events("s1", T0, T0 + timedelta(seconds=480)) == all_events


def test_state_at_before_any_data_and_unknown_site(store: SqliteHistorian) -> None:
    assert store.state_at("s1", T0) is None
    with pytest.raises(HistorianError, match="unknown site"):
        store.state_at("nowhere", T0)


def test_state_at_without_checkpoint_replays_from_the_first_reading(store: SqliteHistorian,
                                                                    fleet: FleetSpec) -> None:
    batch = [Reading(ts=T0, site="s1", asset="P1", signal="status", value=2)]
    store.write(batch)
    t = T0 + timedelta(seconds=1)
    expected, _ = live.apply_site(fleet, fleet.site("s1"), live.initial_site_state(fleet.site("s1"), T0), batch, T0)
    expected, _ = live.apply_site(fleet, fleet.site("s1"), expected, (), t)
    got = store.state_at("s1", t)
    assert got == expected and got is not None and got.machines["P1"].status is MachineStatus.RUNNING
