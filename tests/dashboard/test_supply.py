"""Orders, inbound shipments and projected stock on the dashboard, from states built by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import dash
import pytest
from conftest import NOW

from dashboard import components, figures
from dashboard.pages import site as site_page
from dashboard.viewmodels import OeeView, SiteView
from dashboard.views import order_rows, shipment_rows, site_tile, stock_rows
from twin import kpi, live
from twin.frozen import FrozenDict
from twin.readings import Quality
from twin.spec import FleetSpec, Priority, Sku
from twin.state import AlarmState, InventoryState, OpenOrder, Shipment, SiteState

H = timedelta(hours=1)
D = timedelta(days=1)
SITE = "pod-berlin"
PLA = Sku("PLA-1KG")  # reorder point 12 kg, reorder qty 30 kg, lead time 2 d
BOX = Sku("BOX-S")  # reorder point 200 pcs, lead time 2 d


def _states(fleet: FleetSpec) -> tuple[SiteState, SiteState]:
    """Berlin now and a day ago: PLA used 4 kg/day, BOX-S 100 pcs/day; three orders, three shipments."""
    site = fleet.site(SITE)
    base = live.initial_site_state(site, NOW - D)
    past = replace(base, inventory=FrozenDict({
        PLA: InventoryState(sku=PLA, on_hand=14.0, quality=Quality.GOOD, ts=NOW - D, consumed_total=100.0),
        BOX: InventoryState(sku=BOX, on_hand=400.0, quality=Quality.GOOD, ts=NOW - D, consumed_total=1000.0),
    }))
    ships_pla = (
        # announced for today 06:00, now due in 2 d: 54 h late, still before the shelf empties (at 2.5 d)
        Shipment(sku=PLA, qty=30.0, eta=NOW + 2 * D, id="SH-7", origin="Leipzig", planned_eta=NOW - 6 * H, version=2),
        # its ETA passed 5 h ago and it has not arrived: overdue, not counted in the projection
        Shipment(sku=PLA, qty=5.0, eta=NOW - 5 * H, id="SH-3", origin="Leipzig", planned_eta=NOW - 5 * H),
    )
    ships_box = (Shipment(sku=BOX, qty=600.0, eta=NOW + 1 * D, id="SH-9", origin="Karton Berlin",
                          planned_eta=NOW + 1 * D),)
    now = replace(base, as_of=NOW, inventory=FrozenDict({
        PLA: InventoryState(sku=PLA, on_hand=10.0, quality=Quality.GOOD, ts=NOW, consumed_total=104.0,
                            in_transit=ships_pla),
        BOX: InventoryState(sku=BOX, on_hand=300.0, quality=Quality.GOOD, ts=NOW, consumed_total=1100.0,
                            in_transit=ships_box),
    }), orders=(
        OpenOrder(id="O-1", product="custom-bracket", qty=10, done_qty=4, created=NOW - D, due=NOW + 5 * H),
        OpenOrder(id="O-2", product="machined-housing", qty=3, created=NOW - 2 * D, due=NOW - 3 * H),
        OpenOrder(id="O-3", product="custom-bracket", qty=8, created=NOW - H, due=NOW + 2 * D),
    ))
    return now, past


def test_order_rows_and_table_mark_overdue_in_words_and_colour(fleet: FleetSpec) -> None:
    now, _ = _states(fleet)
    rows = order_rows(fleet.site(SITE), now, NOW)
    assert [r.id for r in rows] == ["O-2", "O-1", "O-3"]  # least slack first: -3 h, +5 h, +48 h
    assert rows[0].overdue and rows[0].slack_s == -3 * 3600.0 and rows[1].remaining == 6
    div = components.orders_table(rows, kpi.backlog(now.orders, NOW))
    text = str(div.to_plotly_json())
    # 3 open orders, 6 + 3 + 8 = 17 units to make; one overdue (3 units); mean slack (5 - 3 + 48) / 3 h = 16.7 h
    assert "3 open order(s) · 17 units to make" in text and "1 OVERDUE (3 units)" in text
    assert "mean slack 16.7 h" in text
    table = div.children[1]
    first, second = table.children[1].children[:2]
    assert first.className == "row-red" and "OVERDUE 3.0 h" in str(first.to_plotly_json())
    assert second.className == "" and "4 / 10" in str(second.to_plotly_json())
    assert "No open orders" in str(components.orders_table([]).to_plotly_json())


def test_shipment_rows_show_origin_delay_and_overdue(fleet: FleetSpec) -> None:
    now, _ = _states(fleet)
    rows = shipment_rows(fleet.site(SITE), now, NOW)
    by_id = {r.id: r for r in rows}
    assert [r.id for r in rows] == ["SH-3", "SH-9", "SH-7"]  # soonest ETA first
    # SH-7: ETA NOW + 2 d against a plan of NOW - 6 h: 54 h late, shown as LATE +2.2 d
    assert by_id["SH-7"].delay_s == 54 * 3600.0 and by_id["SH-7"].late and not by_id["SH-7"].overdue
    assert components.delay_text(by_id["SH-7"]) == "LATE +2.2 d"
    assert by_id["SH-3"].overdue and components.arrival_text(by_id["SH-3"]) == "OVERDUE 5.0 h"
    assert components.delay_text(by_id["SH-9"]) == "on time" and not by_id["SH-9"].late
    table = components.shipments_table(rows)
    body = table.children[1].children
    states = [(tr.className, tr.to_plotly_json()["props"]["data-state"]) for tr in body]
    assert states == [("row-red", "overdue"), ("", "ok"), ("row-amber", "late")]
    assert "Leipzig" in str(body[2].to_plotly_json())


def test_stock_projection_counts_arrivals(fleet: FleetSpec) -> None:
    now, past = _states(fleet)
    rows = {r.sku: r for r in stock_rows(fleet.site(SITE), now, past, NOW)}
    pla = rows[PLA]
    # used 104 - 100 = 4 kg in the last day; 10 kg on hand: empty at 2.5 d without arrivals.
    # SH-7 brings 30 kg at 2 d (level 2 kg then): 32 kg last 8 d more -> first stockout at 10 d.
    # SH-3 (overdue) is not counted. Cover 10 d ≥ lead time 2 d: not short; 10 kg ≤ 12 kg: below reorder,
    # but replenishing -> not at risk.
    assert pla.daily_use == 4.0 and pla.days_of_cover == 2.5
    assert pla.cover_with_arrivals_d == pytest.approx(10.0) and pla.stockout_at == NOW + 10 * D
    assert pla.below_reorder and pla.replenishing and not pla.cover_short and not pla.at_risk
    assert pla.overdue_in_transit == 5.0
    assert components.stock_state(pla) == "below reorder, replenishing"
    # BOX-S: 100 a day, 300 on hand, +600 at 1 d -> 800 at 1 d, lasts 8 d -> 9 d of cover
    assert rows[BOX].cover_with_arrivals_d == pytest.approx(9.0) and not rows[BOX].at_risk
    short = replace(now, inventory=now.inventory.set(PLA, replace(now.inventory[PLA], on_hand=6.0)))
    row = {r.sku: r for r in stock_rows(fleet.site(SITE), short, past, NOW)}[PLA]
    # 6 kg at 4 kg/day: empty at 1.5 d, SH-7 at 2 d: cover 1.5 d < lead time 2 d -> at risk
    assert row.cover_with_arrivals_d == pytest.approx(1.5) and row.cover_short and row.at_risk
    assert components.stock_state(row) == "RUNS OUT BEFORE LEAD TIME"


def test_projection_chart_marks_arrivals_stockout_and_reorder_point(fleet: FleetSpec) -> None:
    now, past = _states(fleet)
    short = replace(now, inventory=now.inventory.set(PLA, replace(now.inventory[PLA], on_hand=6.0)))
    rows = stock_rows(fleet.site(SITE), short, past, NOW)
    fig = figures.stock_projection(rows)
    lines = [t for t in fig.data if t.mode == "lines"]
    assert [t.name for t in lines] == ["PLA-1KG", "BOX-S"]
    # PLA: 6 -> 0 at 1.5 d, 0 until SH-7 at 2 d, +30 -> 30, then down 4/day to the horizon
    assert lines[0].y[:4] == (6.0, 0.0, 0.0, 30.0)
    arrivals = [t for t in fig.data if t.mode == "markers+text" and t.marker.symbol == "triangle-up"]
    assert arrivals[0].text == ("+30 SH-7",) and arrivals[0].y == (30.0,)
    stockout = next(t for t in fig.data if t.marker.symbol == "x")
    # 6 kg at 4 kg/day: empty at NOW + 1.5 d = 2026-01-09 00:00, before the 2-day lead time: red, in words
    assert stockout.marker.color == "#c62828" and stockout.x == (NOW + timedelta(days=1.5),)
    assert "STOCKOUT 2026-01-09 00:00 UTC" in fig.layout.annotations[0].text
    # dashed reorder-point lines at 12 kg (PLA, first panel) and 200 pcs (BOX-S, second panel)
    assert [(s.y0, s.yref) for s in fig.layout.shapes] == [(12.0, "y"), (200.0, "y2")]
    notes = " ".join(a.text for a in fig.layout.annotations)
    assert "OVERDUE, NOT COUNTED: 5 SH-3" in notes
    assert "No stock data" in figures.stock_projection([]).layout.annotations[0].text
    # panels of any count stay inside the figure (plotly refuses a domain below 0 by float drift)
    drawn = [r for r in rows if r.projection is not None]
    many = [replace(drawn[i % 2], sku=f"S{i}") for i in range(7)]
    fig = figures.stock_projection(many)
    domains = [fig.layout[f"yaxis{i + 1}" if i else "yaxis"].domain for i in range(7)]
    assert domains[0][1] == 1.0 and domains[-1][0] == 0.0 and all(lo < hi for lo, hi in domains)


def test_fleet_tile_counts_backlog_and_projected_risk(fleet: FleetSpec) -> None:
    now, past = _states(fleet)
    site = fleet.site(SITE)
    tile = site_tile(site, fleet, now, None, past, NOW)
    assert (tile.open_orders, tile.backlog_units, tile.overdue_orders) == (3, 17, 1)
    assert tile.next_due == NOW + 5 * H
    # PLA below its reorder point but replenished in time, BOX-S fine: nothing at risk
    assert tile.stock_at_risk == 0
    text = str(components.site_tile(tile).to_plotly_json())
    assert "backlog 3 order(s) · 17 units" in text and "1 OVERDUE" in text
    # without the PLA shipment, PLA is below its reorder point with nothing coming: at risk
    bare = replace(now, inventory=now.inventory.set(PLA, replace(now.inventory[PLA], in_transit=())))
    assert site_tile(site, fleet, bare, None, past, NOW).stock_at_risk == 1
    # two of Berlin's four items never reported: the tile says so instead of "stock ok"
    assert tile.stock_unknown == 2
    assert "2 item(s) without stock data" in text and "stock ok" not in text


def test_capped_performance_says_so() -> None:
    # twin.kpi caps performance at 1 when a cycle begun before the window explains the excess
    capped = OeeView(availability=0.5, performance=1.0, quality=1.0, oee=0.5, performance_capped=True)
    fig = figures.oee_bars([("P1", capped), ("P2", OeeView(performance=0.9))])
    perf = next(t for t in fig.data if t.name == "Performance")
    assert perf.text == ("≥100 %", "90 %")


def _view(fleet: FleetSpec, now_state: SiteState, past: SiteState, t: object = NOW) -> SiteView:
    site = fleet.site(SITE)
    at = NOW if t is NOW else t
    tile = site_tile(site, fleet, now_state, None, past, at)  # type: ignore[arg-type]
    return SiteView(tile=tile, machines=(), oee_by_machine=(("M1", OeeView(availability=0.91234)),),
                    stock=tuple(stock_rows(site, now_state, past, at)),  # type: ignore[arg-type]
                    shipments=tuple(shipment_rows(site, now_state, at)),  # type: ignore[arg-type]
                    alarms=(), now=at, orders=tuple(order_rows(site, now_state, at)),  # type: ignore[arg-type]
                    backlog=kpi.backlog(now_state.orders, at))  # type: ignore[arg-type]


def test_refresh_sends_only_what_changed(fleet: FleetSpec) -> None:
    now, past = _states(fleet)
    # (times 10 s after NOW: O-3 and SH-7 are due exactly 48 h after NOW, where "2.0 d" becomes "48.0 h")
    first = site_page.render_view(_view(fleet, now, past, NOW + timedelta(seconds=10)))
    out = site_page.outputs_for(first, None, full=True)
    assert all(o is not dash.no_update for o in out)  # a first view gets everything
    sent = out[-1]
    # ten seconds later with the same data: the charts and tables draw the same; only the fast parts go
    later = site_page.render_view(_view(fleet, now, past, NOW + timedelta(seconds=20)))
    assert later.marks == first.marks
    out = site_page.outputs_for(later, sent, full=False)
    names = dict(zip(site_page.PARTS, out, strict=False))
    assert all(names[p] is dash.no_update for p in site_page.SLOW)
    assert all(names[p] is not dash.no_update for p in site_page.FAST)
    # a new order changes the orders table only (the projection keeps its drawing)
    more = replace(now, orders=(*now.orders, OpenOrder(id="O-4", product="custom-bracket", qty=2,
                                                      created=NOW, due=NOW + 3 * D)))
    changed = site_page.render_view(_view(fleet, more, past, NOW + timedelta(seconds=10)))
    diff = {p for p in site_page.SLOW if changed.marks[p] != first.marks[p]}
    assert diff == {"orders"}
    # a site switch (full) sends everything even when the browser claims to hold it
    assert all(o is not dash.no_update for o in site_page.outputs_for(later, sent, full=True))


def test_fleet_tile_never_says_stock_ok_beside_a_stock_alarm_and_names_the_top_alarm(fleet: FleetSpec) -> None:
    now, past = _states(fleet)
    site = fleet.site(SITE)
    # all four of Berlin's items known: PLA 10 kg is below its reorder point of 12 kg (a shipment is
    # on its way, so not "at risk"); the stock rule has raised its MEDIUM alarm on PLA, and a LOW one
    # on the powder is active too
    known = {sku: InventoryState(sku=sku, on_hand=500.0, quality=Quality.GOOD, ts=NOW)
             for sku in (Sku("AL-BAR-6061"), Sku("BOX-M"))}
    stock_alarm = AlarmState(rule="stock-below-reorder", site=SITE, asset=PLA, priority=Priority.MEDIUM,
                             message="Stock below reorder point", active=True, raised_at=NOW - 2 * H, value=10.0)
    low = AlarmState(rule="powder-low", site=SITE, asset="P2", priority=Priority.LOW, message="Powder hopper low",
                     active=True, raised_at=NOW - H)
    now = replace(now, inventory=now.inventory.merge(known),
                  alarms=FrozenDict({a.key: a for a in (stock_alarm, low)}))
    tile = site_tile(site, fleet, now, None, past, NOW)
    assert (tile.stock_at_risk, tile.stock_unknown, tile.stock_below_reorder) == (0, 0, 1)
    words = " ".join(_texts(components.site_tile(tile)))
    assert "stock ok" not in words
    assert "1 item(s) below reorder point, replenishing" in words
    # the alarm line says what and where: the top (highest priority) alarm's asset and message
    assert "2 active alarm(s) · top MEDIUM: PLA-1KG Stock below reorder point" in words


def _texts(node: object) -> list[str]:
    """Every text of a component tree, in order."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list | tuple):
        return [t for child in node for t in _texts(child)]
    return _texts(getattr(node, "children", None)) if node is not None else []
