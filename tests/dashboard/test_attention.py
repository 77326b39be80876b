"""The attention list: hand-worked numbers for its texts and its ranking, and its service over a real store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from conftest import NOW as STORE_NOW

from dashboard.attention import (
    AttentionService,
    AttentionSettings,
    Kind,
    ProjectionRun,
    Severity,
    attention_items,
    fmt_for,
)
from dashboard.queries import QueryService
from dashboard.viewmodels import MachineTile, OeeView, OrderRow, SiteTile, SiteView, StockRow
from twin import kpi
from twin.frozen import FrozenDict
from twin.readings import Quality
from twin.sim.projection import OrderOnTime
from twin.spec import FleetSpec, MachineStatus
from twin.state import Shipment

NOW = datetime(2026, 1, 7, 13, 0, tzinfo=UTC)  # 14:00 in Lyon and Berlin (UTC+1 in January)
H = 3600.0


def tile(site: str, *, output: int | None = 50, plan_by_now: float | None = 50.0, plan: int = 100,
         stale: bool = False, age_s: float | None = 2.0, dark: int = 0, stock_unknown: int = 0) -> SiteTile:
    return SiteTile(site=site, name=site, kind="point-of-demand", region="", oee=OeeView(), output_today=output,
                    plan_today=plan, plan_by_now=plan_by_now, by_status=FrozenDict(), active_alarms=0,
                    top_priority=None, stock_at_risk=0, newest_sample=NOW - timedelta(seconds=age_s or 0),
                    age_s=age_s, stale=stale, machines_dark=dark, stock_unknown=stock_unknown)


def machine(site: str, mid: str, status: MachineStatus, in_status_s: float, role: str = "machine") -> MachineTile:
    quality = Quality.GOOD if status is not MachineStatus.UNKNOWN else Quality.STALE
    return MachineTile(site=site, machine=mid, role=role, template="t", shown=status, reported=status,
                       quality=quality, age_s=1.0 if quality is Quality.GOOD else in_status_s,
                       in_status_s=in_status_s)


def stock(sku: str, on_hand: float, per_day: float, etas_h: list[float], *, lead_d: float = 2.0,
          unit: str = "kg") -> StockRow:
    ships = [Shipment(sku=sku, qty=30.0, eta=NOW + timedelta(hours=h), id=f"S{k}") for k, h in enumerate(etas_h)]
    p = kpi.project_stock(on_hand, per_day, ships, NOW, NOW + timedelta(days=7))
    return StockRow(sku=sku, name=sku, unit=unit, on_hand=on_hand, quality=Quality.GOOD, reorder_point=12.0,
                    lead_time_d=lead_d, daily_use=per_day, days_of_cover=on_hand / per_day,
                    in_transit=30.0 * len(ships),
                    next_eta=min(s.eta for s in ships) if ships else None, below_reorder=on_hand <= 12.0,
                    cover_short=False, cover_with_arrivals_d=p.cover_d, stockout_at=p.stockout_at, projection=p)


def order(site: str, oid: str, due_h: float, qty: int, done: int = 0) -> OrderRow:
    return OrderRow(site=site, id=oid, product="bracket", qty=qty, done_qty=done, remaining=qty - done,
                    created=NOW - timedelta(days=1), due=NOW + timedelta(hours=due_h), slack_s=due_h * H)


def view(t: SiteTile, machines: tuple[MachineTile, ...] = (), stock_rows: tuple[StockRow, ...] = (),
         orders: tuple[OrderRow, ...] = ()) -> SiteView:
    return SiteView(tile=t, machines=machines, oee_by_machine=(), stock=stock_rows, shipments=(), alarms=(),
                    now=NOW, orders=orders)


def chance(oid: str, site: str, p: float, due_h: float) -> OrderOnTime:
    return OrderOnTime(order=oid, site=site, due_s=due_h * H, probability=p, low=0.0, high=1.0,
                       finish_p50_s=due_h * H)


def projection(*orders: OrderOnTime) -> ProjectionRun:
    return ProjectionRun(computed_at=NOW - timedelta(minutes=5), as_of=NOW - timedelta(minutes=5),
                         horizon_s=24 * H, replications=20, orders=orders)


def fleet_views() -> tuple[list[SiteView], ProjectionRun]:
    lyon = view(
        tile("pod-lyon", output=62, plan_by_now=100.0, plan=160),
        machines=(machine("pod-lyon", "CNC1", MachineStatus.RUNNING, 600.0),
                  machine("pod-lyon", "CNC2", MachineStatus.FAULT, 65 * 60.0)),
        orders=(order("pod-lyon", "O-17", 6.0, 20), order("pod-lyon", "O-18", 8.0, 10),
                order("pod-lyon", "O-19", 9.0, 10), order("pod-lyon", "O-20", 30.0, 10)))
    # 10.4 kg used at 48 kg a day (2 kg/h) lasts 5.2 h; the only delivery is due in 9.0 h
    berlin = view(tile("pod-berlin", output=60, plan_by_now=62.0), stock_rows=(stock("PLA-1KG", 10.4, 48.0, [9.0]),))
    austin = view(tile("pod-austin", output=None, stale=True, age_s=310.0))
    proj = projection(chance("O-17", "pod-lyon", 0.18, 6.0), chance("O-18", "pod-lyon", 0.60, 8.0),
                      chance("O-19", "pod-lyon", 0.90, 9.0),  # likely on time: not listed
                      chance("O-20", "pod-lyon", 0.0, 30.0),  # due after the 24 h horizon: no verdict
                      chance("O-09", "pod-lyon", 0.0, 2.0))  # finished since the projection: not open any more
    return [lyon, berlin, austin], proj


def test_texts_and_ranking_by_hand(fleet: FleetSpec) -> None:
    views, proj = fleet_views()
    items = attention_items(fleet, views, proj, NOW)
    assert [(i.severity, i.text) for i in items] == [
        # urgent: the stockout costs 3.8 h without PLA (5.2 h → 9.0 h) × Berlin's 133 units a day / 24 = 21.1 units;
        # CNC2 down 65 min at its ideal 1 part per 720 s = 5.4 units
        (Severity.URGENT, "PLA-1KG runs out in 5.2 h, next delivery in 9.0 h"),
        (Severity.URGENT, "CNC2 down for 1 h 05 min"),
        # high: 100 − 62 = 38 units behind (62 % of plan: below 75 %); O-17: 20 units × (1 − 0.18) = 16.4 late
        # units expected (below 50 %: high); Austin stale cannot be costed and comes last of its severity
        (Severity.HIGH, "pod-lyon 38 units behind plan (62 of 100 by 14:00 CET)"),
        (Severity.HIGH, "order O-17: 18 % on time"),
        (Severity.HIGH, "pod-austin: no current data for 5 min"),
        # medium: O-18 at 60 % (50–80 %): 10 × 0.4 = 4 units
        (Severity.MEDIUM, "order O-18: 60 % on time"),
    ]
    cost = {i.entity: round(i.cost, 1) for i in items}
    assert cost == {"PLA-1KG": round(3.8 * 133 / 24, 1), "CNC2": round(3900 / 720, 1), "pod-lyon": 38.0,
                    "O-17": 16.4, "pod-austin": 0.0, "O-18": 4.0}
    by = {i.entity: i for i in items}
    # each line links to the page that explains it, with the entity it names in the address
    assert by["CNC2"].link == "/machine?site=pod-lyon&machine=CNC2"
    assert by["PLA-1KG"].link == "/site?site=pod-berlin#site-stock"
    assert by["O-17"].link == "/site?site=pod-lyon#site-orders"
    assert by["pod-lyon"].link == "/site?site=pod-lyon"
    assert by["CNC2"].since == NOW - timedelta(minutes=65)
    assert by["pod-austin"].since == NOW - timedelta(seconds=310)
    assert by["PLA-1KG"].due == NOW + timedelta(hours=5.2)
    assert by["O-17"].detail.startswith("due 20:00 CET · 20 of 20 units left")  # 6 h after 14:00 Lyon time


def test_nothing_wrong_is_an_empty_list(fleet: FleetSpec) -> None:
    # on plan (50 of 50), machines running or idle, stock lasting past the horizon, orders likely on time
    calm = view(tile("pod-lyon", output=50, plan_by_now=50.0),
                machines=(machine("pod-lyon", "CNC1", MachineStatus.RUNNING, 60.0),
                          machine("pod-lyon", "CNC2", MachineStatus.IDLE, 4 * H)),
                stock_rows=(stock("PA12-POWDER", 100.0, 1.0, [24.0]),), orders=(order("pod-lyon", "O-1", 5.0, 4),))
    assert attention_items(fleet, [calm], projection(chance("O-1", "pod-lyon", 0.95, 5.0)), NOW) == []


def test_stock_rules(fleet: FleetSpec) -> None:
    def one(row: StockRow) -> list[tuple[Severity, str]]:
        return [(i.severity, i.text) for i in attention_items(fleet, [view(tile("pod-berlin"), stock_rows=(row,))],
                                                              None, NOW)]

    # nothing coming: 11 kg at 4 kg a day runs out in 2.75 days, beyond the 2-day lead time but within
    # 1.5 × 2 = 3 days: medium ("2.8 d"); 20 kg (5 days): time enough to order, not listed
    assert one(stock("PLA-1KG", 11.0, 4.0, [])) == [
        (Severity.MEDIUM, "PLA-1KG runs out in 2.8 d, no delivery under way")]
    assert one(stock("PLA-1KG", 20.0, 4.0, [])) == []
    # a delivery under way that comes after the stockout keeps the line, however far: 20 kg out in 5 d, due in 6 d
    assert one(stock("PLA-1KG", 20.0, 4.0, [6 * 24.0])) == [
        (Severity.MEDIUM, "PLA-1KG runs out in 5.0 d, next delivery in 6.0 d")]
    # within the lead time (1.5 d of 2 d): high
    assert one(stock("PLA-1KG", 6.0, 4.0, [])) == [
        (Severity.HIGH, "PLA-1KG runs out in 36.0 h, no delivery under way")]
    # a delivery before the shelf empties, too small to last: 2 kg/h from 4 kg, +30 kg at 1 h → out at 17 h;
    # the next delivery is then the one after it, at 20 h
    assert one(stock("PLA-1KG", 4.0, 48.0, [1.0, 20.0])) == [
        (Severity.URGENT, "PLA-1KG runs out in 17.0 h, next delivery in 20.0 h")]
    # empty now
    assert one(stock("PLA-1KG", 0.0, 48.0, [3.0])) == [
        (Severity.URGENT, "PLA-1KG is out of stock, next delivery in 3.0 h")]
    # the delivery arrives first and lasts past the projection: nothing to say
    assert one(stock("PLA-1KG", 10.4, 4.0, [9.0])) == []


def test_orders_overdue_and_stale_parts(fleet: FleetSpec) -> None:
    lyon = view(tile("pod-lyon", dark=2, stock_unknown=1),
                machines=(machine("pod-lyon", "S1", MachineStatus.UNKNOWN, 120.0, "print"),
                          machine("pod-lyon", "S2", MachineStatus.UNKNOWN, 300.0, "print"),
                          machine("pod-lyon", "CNC1", MachineStatus.RUNNING, 60.0)),
                stock_rows=(replace(stock("PA12-POWDER", 5.0, 1.0, []), on_hand=None, projection=None,
                                    stockout_at=None),),
                orders=(replace(order("pod-lyon", "O-3", -2.5, 8, done=3), slack_s=-2.5 * H),))
    items = attention_items(fleet, [lyon], None, NOW)  # no projection yet: what is overdue is known anyway
    assert [(i.severity, i.kind, i.text) for i in items] == [
        (Severity.HIGH, Kind.ORDER_LATE, "order O-3 overdue by 2 h 30 min"),
        # the two stale parts rank by age: the machines' data is 300 s old, the stock's age is not known
        (Severity.MEDIUM, Kind.STALE_DATA, "pod-lyon: 2 of 3 machine(s) without current data"),
        (Severity.MEDIUM, Kind.STALE_DATA, "pod-lyon: 1 stock item(s) without current data"),
    ]
    assert items[0].detail.startswith("5 of 8 units left")
    assert items[1].since == NOW - timedelta(seconds=300)


def test_a_stale_site_is_not_said_to_be_behind_plan(fleet: FleetSpec) -> None:
    # its counters stopped with its data: "behind plan" would be the outage, not production
    stale = view(tile("pod-lyon", output=10, plan_by_now=100.0, stale=True, age_s=400.0))
    assert [i.kind for i in attention_items(fleet, [stale], None, NOW)] == [Kind.STALE_DATA]


def test_durations_as_people_say_them() -> None:
    assert [fmt_for(s) for s in (0, 42, 89, 90, 12 * 60, 59 * 60 + 29, 65 * 60, 47 * H, 51 * H)] == [
        "0 s", "42 s", "89 s", "2 min", "12 min", "59 min", "1 h 05 min", "47 h 00 min", "2 d 3 h"]


def test_settings_refuse_what_is_out_of_range() -> None:
    from twin.errors import ConfigError

    with pytest.raises(ConfigError, match=r"attention\.replications"):
        AttentionSettings(replications=0).check()


def test_the_service_projects_the_store_and_lists_its_fault(queries: QueryService) -> None:
    # the store's history (tests/dashboard/history.py) puts pod-lyon's CNC1 in FAULT at the first 120 s tick
    # after NOW − 40 min: NOW − 38 min
    service = AttentionService(queries=queries, settings=AttentionSettings(enabled=False, calibrate_days=1.0))
    first = service.refresh()  # what the list thread does every list_every_s, here in the test's thread
    assert first.projection is None and first.checked_at == STORE_NOW and not first.pending
    down = [i for i in first.items if i.kind is Kind.MACHINE_DOWN]
    assert [(i.site, i.entity, i.text) for i in down] == [("pod-lyon", "CNC1", "CNC1 down for 38 min")]
    assert down[0].link == "/machine?site=pod-lyon&machine=CNC1"
    assert service.refresh() is first  # nothing changed: the same list, every tab gets it
    run = service.run_now()
    assert run.computed_at == STORE_NOW and run.replications == 20 and run.horizon_s == 24 * H
    assert run.calibrated  # from a reader of its own (the SQLite store reopened read-only)
    again = service.refresh()
    assert again is not first and again.projection is run
    service.stop()


def test_pages_only_read_the_list_the_service_thread_built(queries: QueryService) -> None:
    # before the service's first list, a page gets the pending view at once: no history read in its callback
    reads: list[str] = []

    class Counting(QueryService):
        def site_view(self, site: str) -> SiteView:  # type: ignore[override]
            reads.append(site)
            return QueryService.site_view(self, site)

    counting = Counting(fleet=queries.fleet, historian=queries.historian, clock=queries.clock)
    service = AttentionService(queries=counting, settings=AttentionSettings(enabled=False, list_every_s=0.2))
    from dashboard.pages.attention import render_list, summary

    pending = service._pending
    assert pending.pending and pending.items == () and pending.sites == 4
    assert summary(pending) == "first check of 4 sites under way (the dashboard's service builds the list)"
    assert render_list(pending, queries.fleet)[0].children.startswith("Checking what needs attention")
    try:
        service.start()  # what twin dashboard does at start
        assert service.refreshed.wait(30)
        thread = service._list_thread
        assert thread is not None and thread.name == "dashboard-attention-list" and service._thread is None
        built = service.view()
        assert not built.pending and any(i.kind is Kind.MACHINE_DOWN for i in built.items)
        n = len(reads)
        assert n >= 4  # the list thread read the four sites
        service.refreshed.clear()
        for _ in range(50):  # fifty tabs' refreshes
            service.view()
        assert service.refreshed.wait(30)  # the thread goes on rebuilding on its own
        assert len(reads) >= n + 4
        assert all(service.view() is service.view() for _ in range(3))  # one object for every tab
    finally:
        service.stop()
    assert not thread.is_alive()
    # after stop, the reads are the thread's only: whole lists of four sites, none from the 50 page reads
    assert len(reads) % 4 == 0


def test_the_first_read_starts_one_scheduled_projection(queries: QueryService) -> None:
    # the list's first reader starts the service's threads when twin dashboard did not; it projects
    # first_delay_s later, whoever reads the first projection 3 s after the first read: that read returns at once
    service = AttentionService(queries=queries, settings=AttentionSettings(first_delay_s=3.0, calibrate_days=0.0))
    try:
        assert service.view().projection is None  # read at once: the projection is not waited for
        thread = service._thread
        assert thread is not None and thread.name == "dashboard-attention"
        service.view()
        assert service._thread is thread  # one thread, however many reads (tabs)
        assert service.projected.wait(60)
        run = service.projection()
        assert run is not None and not run.calibrated  # calibrate_days 0: the configured figures
        for _ in range(3):  # a list begun before the projection ended may not have it; the next one does
            if service.view().projection is run:
                break
            service.refreshed.clear()
            assert service.refreshed.wait(30)  # the list thread's next list (every 5 s)
        assert service.view().projection is run
    finally:
        service.stop()
    assert not thread.is_alive()


def test_the_page_draws_the_first_hundred_lines_and_counts_the_rest(fleet: FleetSpec) -> None:
    from dashboard.attention import AttentionView
    from dashboard.pages.attention import MAX_LINES, render_list, top_card

    # 130 overdue orders at Lyon: all high; the page draws 100 of them and says what the other 30 are
    lyon = view(tile("pod-lyon"), orders=tuple(order("pod-lyon", f"O-{k:03d}", -1.0 - k, 5) for k in range(130)))
    items = tuple(attention_items(fleet, [lyon], None, NOW))
    # 5 units each: the same cost, so the longest-standing first (130 h = 5 d 10 h)
    assert len(items) == 130 and items[0].text == "order O-129 overdue by 5 d 10 h"
    lines = render_list(AttentionView(items=items, checked_at=NOW, sites=1), fleet)
    assert len(lines) == MAX_LINES + 1
    assert lines[-1].children == "… and 30 more, ranked lower (30 high): each site page shows its own"
    top = top_card(AttentionView(items=items, checked_at=NOW, sites=1), fleet)
    assert len(top) == 1 + 5 and top[0].children[1].children == "all 130 →"
    calm = render_list(AttentionView(items=(), checked_at=NOW, sites=4), fleet)
    assert calm[0].children == "Nothing needs attention · checked 2026-01-07 13:00:00 UTC"
