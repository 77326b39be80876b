"""The read-side query service over a real SQLite historian filled through the live reducer."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import timedelta

import history
from conftest import NOW

from dashboard.queries import QueryService
from dashboard.views import alarm_journal, machine_tile, stock_rows
from twin import kpi
from twin.frozen import FrozenDict
from twin.readings import Quality
from twin.spec import FleetSpec, MachineStatus, Priority, SiteId
from twin.state import AlarmState, Event, EventKind, MachineState, SignalValue


def test_stale_machine_shows_unknown_with_its_age(queries: QueryService) -> None:
    view = queries.site_view("pod-berlin")
    p3 = next(m for m in view.machines if m.machine == "P3")
    assert p3.shown is MachineStatus.UNKNOWN
    assert p3.quality is Quality.STALE
    # its last sample is the last 120 s tick before NOW - 15 min: NOW - 16 min = 960 s old
    assert p3.age_s == 960.0
    others = [m for m in view.machines if m.machine != "P3"]
    assert all(m.shown is not MachineStatus.UNKNOWN for m in others)
    assert view.tile.by_status[MachineStatus.UNKNOWN] == 1


def test_faulted_machine_and_its_alarm(queries: QueryService) -> None:
    view = queries.site_view("pod-lyon")
    cnc = next(m for m in view.machines if m.machine == "CNC1")
    assert cnc.shown is MachineStatus.FAULT
    # in FAULT since the first tick after NOW - 40 min: NOW - 38 min
    assert cnc.in_status_s == 38 * 60
    assert [a.key for a in view.alarms if a.active] == ["machine-down:CNC1"]
    assert view.tile.active_alarms == 1 and view.tile.top_priority is Priority.HIGH


def test_fleet_tiles_oee_factors_and_plan(queries: QueryService) -> None:
    tiles = {t.site: t for t in queries.fleet_tiles()}
    assert set(tiles) == {"pod-berlin", "pod-lyon", "pod-austin", "lm-rotterdam"}
    rot = tiles["lm-rotterdam"]
    # history.fill runs machines at 85 % of their ideal rate while running: performance ≈ 0.85
    # (less the fraction of a part not yet finished at each tick)
    assert rot.oee.performance is not None and 0.80 < rot.oee.performance <= 0.85
    # every 25th part is scrap: quality → 24/25 = 0.96 (± one part per machine of rounding)
    assert rot.oee.quality is not None and abs(rot.oee.quality - 0.96) < 0.015
    assert rot.oee.oee is not None
    assert abs(rot.oee.oee - rot.oee.availability * rot.oee.performance * rot.oee.quality) < 1e-12  # type: ignore[operator]
    # output = finished units: only the last step of Rotterdam's routing (pack: PK1 and PK2) counts,
    # not the same lamp again at the robot cell, bench and inspection
    assert rot.output_today is not None and 0 < rot.output_today < rot.oee.good
    assert [m.id for m in kpi.finishing_machines(queries.fleet.site("lm-rotterdam"), queries.fleet.products)] == [
        "PK1", "PK2"]
    # Austin (America/Chicago) is at 06:00 local, before its day shift: nothing planned yet
    assert tiles["pod-austin"].oee.availability is None
    assert tiles["pod-austin"].plan_by_now == 0.0
    assert all(not t.stale for t in tiles.values())


def test_stock_at_risk_and_shipments(queries: QueryService) -> None:
    view = queries.site_view("pod-berlin")
    first = view.stock[0]
    # the fixture starts PLA-1KG (reorder point 12 kg, lead time 2 d) at 60 % of its reorder point
    assert first.sku == "PLA-1KG" and first.below_reorder
    # consumption is reorder_point / 3 = 4 kg per day by construction: days of cover = on_hand / 4
    assert first.days_of_cover is not None and first.on_hand is not None
    assert abs(first.days_of_cover - first.on_hand / (first.reorder_point / 3.0)) < 1e-6
    assert view.shipments and view.shipments[0].sku == first.sku
    assert view.shipments[0].eta_in_s == first.lead_time_d / 2 * 86400
    # its reorder quantity (30 kg) arrives in 1 d, before the shelf empties (on hand ~7.2 kg / 4 = 1.8 d):
    # the arrival counts, cover = (on hand + 30) / 4 ≈ 9.3 d > lead time: below reorder but not at risk
    assert first.replenishing and not first.at_risk
    assert first.cover_with_arrivals_d is not None
    assert abs(first.cover_with_arrivals_d - (first.on_hand + 30.0) / 4.0) < 1e-6
    # the same shipment delayed to 3 d: the shelf empties at 1.8 d, before a new order could come (2 d)
    site = queries.fleet.site("pod-berlin")
    now_state = queries.state_at("pod-berlin", NOW)
    past = queries.state_at("pod-berlin", NOW - timedelta(hours=4))
    assert now_state is not None and past is not None
    inv = now_state.inventory[first.sku]
    late = replace(inv, in_transit=tuple(replace(s, eta=NOW + timedelta(days=3)) for s in inv.in_transit))
    delayed = replace(now_state, inventory=now_state.inventory.set(first.sku, late))
    row = stock_rows(site, delayed, past, NOW)[0]
    assert row.at_risk and row.cover_short and row.stockout_at is not None
    assert abs(row.cover_with_arrivals_d - row.on_hand / 4.0) < 1e-6  # type: ignore[operator]


def test_timeline_covers_the_shift_window(queries: QueryService) -> None:
    segs = queries.timeline("pod-lyon", 8.0)
    cnc = sorted((s for s in segs if s.machine == "CNC1"), key=lambda s: s.start)
    assert cnc[0].start == NOW - timedelta(hours=8) and cnc[-1].end == NOW
    assert cnc[-1].status is MachineStatus.FAULT
    for a, b in itertools.pairwise(cnc):
        assert a.end == b.start  # contiguous, no gaps or overlaps


def test_machine_view_downsamples_and_counts_failures(queries: QueryService) -> None:
    view = queries.machine_view("pod-lyon", "CNC1", 8.0, ["spindle_temp_c"], max_points=50)
    assert len(view.series) == 1 and 0 < len(view.series[0].points) <= 50
    assert view.kpis.failures == 1 and view.kpis.repairs == 0  # one fault, still going
    assert view.kpis.mttr_h is None


def test_acknowledge_round_trip(queries: QueryService) -> None:
    rows = queries.alarm_rows(sites=["pod-lyon"], priorities=None, states=["unacked"], hours=24)
    assert [r.key for r in rows] == ["machine-down:CNC1"]
    queries.acknowledge(site="pod-lyon", key="machine-down:CNC1", user="erin", comment="spindle swapped")
    acked = queries.alarm_rows(sites=["pod-lyon"], priorities=None, states=["acked"], hours=24)
    assert len(acked) == 1 and acked[0].acked_by == "erin" and acked[0].ack_comment == "spindle swapped"
    assert queries.site_view("pod-lyon").alarms[0].acknowledged
    assert queries.alarm_rows(sites=["pod-lyon"], priorities=None, states=["unacked"], hours=24) == []


def test_cache_reads_the_historian_once_per_ttl(queries: QueryService) -> None:
    calls = []
    inner = queries.historian

    class Counting:
        def __getattr__(self, name: str) -> object:
            return getattr(inner, name)

        def state_at(self, site: str, t: object) -> object:
            calls.append(site)
            return inner.state_at(site, t)  # type: ignore[arg-type]

    clock = [0.0]
    q = QueryService(fleet=queries.fleet, historian=Counting(), clock=lambda: NOW,  # type: ignore[arg-type]
                     monotonic=lambda: clock[0], ttl_s=2.0)
    q.fleet_tiles()
    first = len(calls)
    q.fleet_tiles()
    q.site_view("pod-berlin")
    assert len(calls) == first  # everything within the TTL came from the cache
    clock[0] = 2.5
    q.fleet_tiles()
    assert len(calls) > first


def test_each_cache_entry_keeps_its_own_ttl_from_when_it_was_asked_for() -> None:
    from dashboard.queries import _TtlCache

    clock = [0.0]
    reads: list[str] = []

    def read(name: str, value: object, took_s: float = 0.0) -> object:
        reads.append(name)
        clock[0] += took_s  # a slow read: the TTL still runs from the request
        return value

    cache = _TtlCache(lambda: clock[0])
    assert cache.get("live", 2.0, lambda: read("live", 1, took_s=1.5)) == 1
    assert cache.get("past", 300.0, lambda: read("past", None)) is None  # None is a value, kept too
    clock[0] = 1.9
    assert cache.get("live", 2.0, lambda: read("live", 2)) == 1
    clock[0] = 2.0
    assert cache.get("live", 2.0, lambda: read("live", 3)) == 3
    assert cache.get("past", 300.0, lambda: read("past", "again")) is None
    cache.clear(lambda k: k == "past")
    assert cache.get("live", 2.0, lambda: read("live", 4)) == 4
    assert cache.get("past", 300.0, lambda: read("past", "again")) is None
    cache.clear()
    assert cache.get("past", 300.0, lambda: read("past", "again")) == "again"
    assert reads == ["live", "past", "live", "live", "past"]


def test_good_status_too_old_is_not_shown_as_current(fleet: FleetSpec) -> None:
    spec = fleet.site("pod-berlin").machines[0]
    m = MachineState(id=spec.id, status=MachineStatus.RUNNING, status_since=NOW - timedelta(hours=1),
                     status_quality=Quality.GOOD, status_reason="",
                     signals=FrozenDict({"status": SignalValue(value=2, quality=Quality.GOOD,
                                                               ts=NOW - timedelta(seconds=100))}))
    # the collector died: the snapshot still says GOOD, but 100 s > 3 polls × 1 s
    tile = machine_tile(spec, m, NOW, stale_after_polls=3.0)
    assert tile.shown is MachineStatus.UNKNOWN and tile.reported is MachineStatus.RUNNING
    assert tile.age_s == 100.0


def test_alarm_journal_reconstructs_instances() -> None:
    s = SiteId("s1")
    ev = [
        Event(ts=NOW, site=s, asset="M1", kind=EventKind.ALARM_RAISED, message="hot",
              data=FrozenDict({"rule": "hot", "priority": 3})),
        Event(ts=NOW + timedelta(minutes=5), site=s, asset="M1", kind=EventKind.ALARM_CLEARED, message="ok",
              data=FrozenDict({"rule": "hot"})),
        Event(ts=NOW + timedelta(minutes=6), site=s, asset="M1", kind=EventKind.ALARM_ACKNOWLEDGED, message="ack",
              data=FrozenDict({"rule": "hot", "user": "bo", "comment": "fan"})),
        Event(ts=NOW + timedelta(minutes=9), site=s, asset="M1", kind=EventKind.ALARM_RAISED, message="hot",
              data=FrozenDict({"rule": "hot", "priority": 3})),
    ]
    rows = alarm_journal([], ev)
    assert [(r.active, r.acknowledged) for r in rows] == [(True, False), (False, True)]
    assert rows[1].acked_by == "bo" and rows[1].cleared_at == NOW + timedelta(minutes=5)
    assert rows[0].priority is Priority.HIGH
    current = AlarmState(rule="hot", site=s, asset="M1", priority=Priority.HIGH, message="hot", active=True,
                         raised_at=NOW - timedelta(days=1))
    assert alarm_journal([current], [])[0].raised_at == NOW - timedelta(days=1)


def test_history_module_is_deterministic() -> None:
    assert history.status_at(0, 0) is MachineStatus.RUNNING and history.status_at(23, 0) is MachineStatus.IDLE


def test_a_lost_plc_is_stale_on_the_site_and_the_status_keeps_its_age(fleet: FleetSpec, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime

    from connectors.store import SqliteHistorian
    from dashboard.pages.site import header, header_part
    from twin import live
    from twin.readings import Reading

    site = fleet.site("pod-berlin")
    t0, lost, back = NOW - timedelta(hours=6), NOW - timedelta(minutes=12), NOW - timedelta(minutes=2)
    store = SqliteHistorian(tmp_path / "h.db", fleet)
    state = live.initial_state(fleet, t0)
    t, i = t0, 0
    while t <= NOW:  # every machine OFF from t0; from `lost` the cell's PLC does not answer, from `back` again
        if lost <= t < back:  # what the poller reports for an unreachable device: STALE, no value, fresh time
            readings = [Reading(ts=t, site=site.id, asset=m.id, signal="status", value=None, quality=Quality.STALE,
                                reason="connection lost") for m in site.machines]
        else:
            readings = [Reading(ts=t, site=site.id, asset=m.id, signal="status", value=0) for m in site.machines]
        # the stores' PLC (another device) answers all along: fresh stock data is no news of the machines
        readings.append(Reading(ts=t, site=site.id, asset="PLA-1KG", signal="on_hand", value=20.0))
        state, events = live.apply(fleet, state, readings, t)
        store.write(readings, list(state.sites.values()) if i % 30 == 0 else [], events)
        t, i = t + timedelta(seconds=60), i + 1
    clock: list[datetime] = [NOW - timedelta(minutes=6)]
    queries = QueryService(fleet=fleet, historian=store, clock=lambda: clock[0])

    during = queries.site_view(site.id)  # 6 min into the outage
    assert {m.shown for m in during.machines} == {MachineStatus.UNKNOWN}
    # the machines went UNKNOWN with the first STALE reading, at NOW - 12 min: no data for 6 min = 360 s.
    # The STALE readings the poller keeps sending are fresh, but they are no data: not "updated 0 s ago"
    assert during.tile.stale and during.tile.age_s == 360.0
    assert "DATA STALE (stale 6 min)" in header(during)
    banner = header_part(during)[0]
    assert banner.className == "stale-banner" and "nothing current from any machine for 6 min" in banner.children
    from dashboard import components
    fleet_tile = str(components.site_tile(during.tile).children.children[-1].children)  # the freshness line
    assert fleet_tile == "DATA STALE · stale 6 min · no machine reporting"

    clock[0] = NOW  # 2 min after the PLC answers again
    queries.invalidate()
    after = queries.site_view(site.id)
    p1 = next(m for m in after.machines if m.machine == "P1")
    assert p1.shown is MachineStatus.OFF and not after.tile.stale
    # OFF since t0 before and after the outage: "OFF for 6.0 h" (21,600 s), not "for 120 s" since it came back
    assert p1.in_status_s == 6 * 3600
    store.close()


def test_idle_is_calm_and_amber_means_a_look_is_needed(fleet: FleetSpec) -> None:
    from dashboard import components
    from dashboard.viewmodels import AlarmRow

    spec = fleet.site("pod-berlin").machine("P1")
    assert spec is not None

    def tile(status: MachineStatus, for_s: float, *, in_shift: bool = True, alarms=()):  # type: ignore[no-untyped-def]
        since = NOW - timedelta(seconds=for_s)
        m = MachineState(id="P1", status=status, status_since=since, status_quality=Quality.GOOD, status_reason="",
                         signals=FrozenDict({"status": SignalValue(value=1, quality=Quality.GOOD, ts=NOW)}))
        t = machine_tile(spec, m, NOW, fleet.stale_after_polls, in_shift=in_shift, alarms=alarms)
        div = components.machine_tile(t)
        return t, div.className, div.title

    # idle 40 s between two builds: waiting for work is normal, grey (no amber flicker every few seconds)
    t, css, _ = tile(MachineStatus.IDLE, 40)
    assert not t.attention and css.endswith("andon-idle")
    # idle 20 min in shift, over the 15 min threshold: amber, and the tile says why
    t, css, title = tile(MachineStatus.IDLE, 20 * 60)
    assert t.attention and css.endswith("andon-attention") and "IDLE TOO LONG in shift" in title
    # idle 2 h outside the shifts: nothing is waiting, grey
    assert not tile(MachineStatus.IDLE, 7200, in_shift=False)[0].attention
    # running with an active MEDIUM alarm on it: amber, naming the alarm; a LOW one stays calm
    hot = AlarmRow(site="pod-berlin", key="nozzle-overtemp:P1", rule="nozzle-overtemp", asset="P1",
                   priority=Priority.MEDIUM, message="Nozzle temperature above 265 degC", active=True,
                   raised_at=NOW - timedelta(minutes=3))
    t, css, title = tile(MachineStatus.RUNNING, 600, alarms=[hot])
    assert t.attention and css.endswith("andon-attention") and "ALARM MEDIUM: Nozzle temperature" in title
    low = replace(hot, priority=Priority.LOW)
    assert tile(MachineStatus.RUNNING, 600, alarms=[low])[1].endswith("andon-running")


def test_a_seven_day_oee_counts_planned_time_only_where_there_is_history(queries: QueryService) -> None:
    view = queries.machine_view("pod-berlin", "P1", 168.0, [])
    # the history begins NOW - 10 h = Wed 02:00 UTC (03:00 Berlin). Berlin plans 06:00-22:00 on weekdays, so
    # the planned time with data is 06:00-13:00 Berlin = 7 h = 25,200 s, not the 80 h planned over 7 days
    # (Wed 13:00-22:00, Thu, Fri, Mon, Tue 16 h each, Wed 06:00-13:00) with 70 h of them without data
    assert view.kpis.oee.planned_s == 7 * 3600
    assert view.kpis.oee.availability is not None and 0.5 < view.kpis.oee.availability <= 1.0
