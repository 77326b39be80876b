"""Backlog, shipment lateness and stock projected forward by arrivals: worked by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from twin.kpi import backlog, consumption_per_day, project_stock, shipment_lateness
from twin.spec import Sku
from twin.state import InventoryState, OpenOrder, Shipment

NOW = datetime(2026, 1, 7, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


def _order(oid: str, qty: int, due: datetime, done: int = 0) -> OpenOrder:
    return OpenOrder(id=oid, product="desk-lamp", qty=qty, created=NOW - 2 * D, due=due, done_qty=done)


def _ship(qty: float, eta: datetime, sid: str = "", planned: datetime | None = None) -> Shipment:
    return Shipment(sku=Sku("DRIVE"), qty=qty, eta=eta, id=sid, planned_eta=planned)


def test_backlog_by_hand() -> None:
    orders = [
        _order("A", 10, NOW + 4 * H, done=4),  # 6 units left, slack +4 h
        _order("B", 5, NOW - 2 * H),  # overdue by 2 h, 5 units left
        _order("C", 8, NOW + 28 * H, done=10),  # over-made: 0 left (never negative), slack +28 h
    ]
    b = backlog(orders, NOW)
    assert (b.open_orders, b.units, b.overdue, b.overdue_units) == (3, 11, 1, 5)
    assert b.next_due == NOW + 4 * H  # the earliest due time not yet passed
    # slacks +4, -2, +28 h: min -2 h, mean (4 - 2 + 28) / 3 = 10 h
    assert b.min_slack_s == -2 * 3600.0
    assert b.mean_slack_s == pytest.approx(10 * 3600.0)


def test_empty_backlog_has_no_slack() -> None:
    b = backlog([], NOW)
    assert (b.open_orders, b.units, b.overdue, b.next_due, b.mean_slack_s, b.min_slack_s) == (0, 0, 0, None, None,
                                                                                                 None)


def test_shipment_lateness_by_hand() -> None:
    # planned for today 12:00, now announced for +2 days: delay 2 d, not yet overdue
    r = shipment_lateness(_ship(100, NOW + 2 * D, planned=NOW), NOW)
    assert r.delay_s == 2 * 86400.0 and not r.overdue and r.late
    # on its planned time but the ETA passed 3 h ago and it is still in transit: overdue by 3 h
    r = shipment_lateness(_ship(100, NOW - 3 * H, planned=NOW - 3 * H), NOW)
    assert (r.delay_s, r.overdue, r.overdue_s, r.late) == (0.0, True, 3 * 3600.0, True)
    # early (ETA moved forward a day): negative delay, not late
    r = shipment_lateness(_ship(100, NOW + 1 * D, planned=NOW + 2 * D), NOW)
    assert r.delay_s == -86400.0 and not r.late
    # the PLC's shipment has no plan: the delay is unknown, never 0
    r = shipment_lateness(_ship(100, NOW + 1 * D), NOW)
    assert r.delay_s is None and not r.late


def test_consumption_rate_from_consumed_totals() -> None:
    before = InventoryState(sku=Sku("DRIVE"), on_hand=100.0, consumed_total=40.0)
    after = InventoryState(sku=Sku("DRIVE"), on_hand=70.0, consumed_total=110.0)
    # 70 used in 7 days (a delivery in between does not count: only decreases do) = 10 a day
    assert consumption_per_day(before, after, 7.0) == 10.0
    assert consumption_per_day(None, after, 7.0) is None
    assert consumption_per_day(before, after, 0.0) is None


def test_projection_with_arrivals_by_hand() -> None:
    # 30 on hand, 10 a day; +50 at day 2, +20 at day 10 (after the 7-day horizon)
    ships = [_ship(50, NOW + 2 * D, "S1"), _ship(20, NOW + 10 * D, "S2")]
    p = project_stock(30.0, 10.0, ships, NOW, NOW + 7 * D)
    # day 0: 30; day 2: 30 - 20 = 10, then +50 = 60; 60 lasts 6 days -> empty at day 8 (after the
    # horizon): at day 7 the level is 60 - 50 = 10. S2 comes at day 10, too late: first stockout day 8.
    assert p.t == (NOW, NOW + 2 * D, NOW + 2 * D, NOW + 7 * D)
    assert p.level == pytest.approx((30.0, 10.0, 60.0, 10.0))
    assert p.stockout_at == NOW + 8 * D and p.cover_d == pytest.approx(8.0)
    assert [a.shipment for a in p.arrivals] == ["S1", "S2"]


def test_projection_stockout_before_an_arrival() -> None:
    # 15 on hand, 10 a day, +40 at day 3: empty at day 1.5, stays 0 until day 3, then 40 lasts 4 days
    p = project_stock(15.0, 10.0, [_ship(40, NOW + 3 * D, "S1")], NOW, NOW + 10 * D)
    assert p.stockout_at == NOW + timedelta(days=1.5) and p.cover_d == pytest.approx(1.5)
    assert p.t == (NOW, NOW + timedelta(days=1.5), NOW + 3 * D, NOW + 3 * D, NOW + 7 * D, NOW + 10 * D)
    assert p.level == pytest.approx((15.0, 0.0, 0.0, 40.0, 0.0, 0.0))


def test_overdue_shipments_are_not_counted_and_no_use_means_no_cover() -> None:
    # a shipment whose ETA passed an hour ago: when it comes is unknown, so it is listed, not counted
    late = _ship(100, NOW - H, "LATE")
    p = project_stock(20.0, 10.0, [late], NOW, NOW + 5 * D)
    assert [a.shipment for a in p.overdue] == ["LATE"] and p.arrivals == ()
    assert p.cover_d == pytest.approx(2.0)  # 20 / 10 a day
    # no use seen: the shelf lasts indefinitely (cover None, not infinite); arrivals still step up
    p = project_stock(20.0, None, [_ship(5, NOW + D, "S1")], NOW, NOW + 3 * D)
    assert p.stockout_at is None and p.cover_d is None
    assert p.level == (20.0, 20.0, 25.0, 25.0)
    # an empty shelf is a stockout now
    p = project_stock(0.0, 10.0, [], NOW, NOW + D)
    assert p.stockout_at == NOW and p.cover_d == 0.0
