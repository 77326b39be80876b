"""The alarm journal CSV with shelving and suppression by design, on a hand-worked hour of events."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import timedelta

from connectors.export import export_alarms
from connectors.store import SqliteHistorian
from tests.connectors.store.conftest import T0
from twin import live
from twin.frozen import FrozenDict
from twin.spec import FleetSpec, MachineId, MachineStatus, SiteId
from twin.state import Event, EventKind


def ev(minute: int, kind: EventKind, asset: str, rule: str = "hot", **data: object) -> Event:
    return Event(ts=T0 + timedelta(minutes=minute), site=SiteId("s1"), asset=asset, kind=kind, message=kind.value,
                 data=FrozenDict({"rule": rule, "key": f"{rule}:{asset}", "priority": 2, **data}))  # type: ignore[arg-type]


def shelving(minute: int, asset: str, change: str, user: str, comment: str, rule: str = "hot",
             **data: object) -> Event:
    return ev(minute, EventKind.ALARM_SHELVING, asset, rule, change=change, user=user, comment=comment, **data)


R, C, S = EventKind.ALARM_RAISED, EventKind.ALARM_CLEARED, EventKind.STATUS_CHANGE
HOUR = [
    # hot:P1: shelved one-shot at 08:05, returns to normal at 08:20 (the shelve ends with it)
    ev(0, R, "P1"), shelving(5, "P1", "shelved", "ana", "known nozzle drift", shelve="one_shot"), ev(20, C, "P1"),
    # cold:P2: a timed shelve of 1800 s at 08:12, so until 08:42 (expires), cleared at 08:50
    ev(10, R, "P2", "cold"),
    shelving(12, "P2", "shelved", "ben", "heater swap", "cold", shelve="timed", duration_s=1800),
    ev(50, C, "P2", "cold"),
    # hot:P1 again at 08:30: shelved at 08:31, unshelved by hand at 08:32 (it was shelved while active)
    ev(30, R, "P1"), shelving(31, "P1", "shelved", "eve", "again", shelve="one_shot"),
    shelving(32, "P1", "unshelved", "eve", "wrong alarm"), ev(45, C, "P1"),
    # jam:P3: out of service at 08:33, raised at 08:35 and still active at 09:00
    shelving(33, "P3", "out_of_service", "cy", "sensor under repair", "jam"), ev(35, R, "P3", "jam"),
    # hot:P4: P4 in maintenance 08:36-08:45, raised at 08:38 (suppressed by design), again at 08:52 (running)
    ev(36, S, "P4", to="maintenance"), ev(38, R, "P4"), ev(45, S, "P4", to="running"), ev(48, C, "P4"),
    ev(52, R, "P4"),
    # hot:P1 a third time at 08:55, after the unshelve: not shelved; unshelving the expired cold:P2 is refused
    ev(55, R, "P1"), shelving(56, "P2", "unshelved", "fay", "late", "cold"),
]


def test_the_journal_says_how_each_alarm_was_shelved_or_suppressed(store: SqliteHistorian) -> None:
    store.write([], events=HOUR)
    out = io.StringIO()
    assert export_alarms(store, "s1", T0, T0 + timedelta(hours=1), out) == 7  # 7 raised events, 7 instances
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    got = [(r["asset"], r["raised"][11:16], r["shelved"], r["shelved_by"], r["shelved_why"], r["suppressed"])
           for r in rows]
    assert got == [
        ("P1", "08:00", "one-shot", "ana", "known nozzle drift", "no"),
        ("P2", "08:10", "timed until 2026-01-05T08:42:00+00:00", "ben", "heater swap", "no"),  # 08:12 + 1800 s
        ("P1", "08:30", "one-shot", "eve", "again", "no"),  # shelved 08:31-08:32 while active
        ("P3", "08:35", "out of service", "cy", "sensor under repair", "no"),
        ("P4", "08:38", "no", "", "", "yes"),  # raised in maintenance
        ("P4", "08:52", "no", "", "", "no"),  # running again since 08:45
        ("P1", "08:55", "no", "", "", "no"),  # unshelved at 08:32; fay's refused unshelve marks nothing
    ]
    # the earlier columns are as before: the alarm's own lifecycle
    assert [r["state"] for r in rows] == ["cleared/unacked", "cleared/unacked", "cleared/unacked", "active/unacked",
                                          "cleared/unacked", "active/unacked", "active/unacked"]


def test_a_shelve_made_before_the_window_is_known_in_it(store: SqliteHistorian) -> None:
    store.write([], events=HOUR)
    out = io.StringIO()
    # from 08:34: jam:P3 was taken out of service at 08:33, before the window (read from SHELVING_LOOKBACK)
    assert export_alarms(store, "s1", T0 + timedelta(minutes=34), T0 + timedelta(hours=1), out) == 4
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["asset"], r["raised"][11:16], r["shelved"], r["shelved_by"], r["suppressed"]) for r in rows] == [
        ("P3", "08:35", "out of service", "cy", "no"),
        ("P4", "08:38", "no", "", "yes"),
        ("P4", "08:52", "no", "", "no"),
        ("P1", "08:55", "no", "", "no"),
    ]


def test_a_machine_in_maintenance_before_the_window_suppresses_its_alarm(store: SqliteHistorian,
                                                                        fleet: FleetSpec) -> None:
    # the history's state at 07:50 (a checkpoint): P1 in maintenance since 07:45, P2 running
    state = live.initial_state(fleet, T0 - timedelta(minutes=10)).sites[SiteId("s1")]
    machines = {**state.machines,
                MachineId("P1"): replace(state.machines[MachineId("P1")], status=MachineStatus.MAINTENANCE,
                                         status_since=T0 - timedelta(minutes=15)),
                MachineId("P2"): replace(state.machines[MachineId("P2")], status=MachineStatus.RUNNING,
                                         status_since=T0 - timedelta(minutes=15))}
    store.write([], [replace(state, machines=FrozenDict(machines))],
                [ev(0, EventKind.ALARM_RAISED, "P1"), ev(0, EventKind.ALARM_RAISED, "P2"),
                 ev(5, EventKind.STATUS_CHANGE, "P1", to="running"), ev(9, EventKind.ALARM_RAISED, "P1", "cold")])
    out = io.StringIO()
    assert export_alarms(store, "s1", T0, T0 + timedelta(minutes=10), out) == 3
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    # P1 was in maintenance at 08:00 (no status event in the window says so: the state at 08:00 does);
    # running from 08:05, so cold:P1 at 08:09 is annunciated; P2 was running throughout
    assert [(r["asset"], r["raised"][11:16], r["suppressed"]) for r in rows] == [
        ("P1", "08:00", "yes"), ("P2", "08:00", "no"), ("P1", "08:09", "no")]
