"""The orders/shipments reducer: upserts, closes, events, validation, and idempotence under replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.config import load
from twin import live
from twin.business import (
    BusinessRecord,
    OrderRecord,
    OrderStatus,
    ShipmentRecord,
    ShipmentStatus,
    apply_records,
    validate,
)
from twin.sim.build import fork
from twin.spec import FleetSpec, SiteId, Sku
from twin.state import EventKind, TwinState

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
BERLIN, ROTTERDAM = SiteId("pod-berlin"), SiteId("lm-rotterdam")


@pytest.fixture(scope="module")
def fleet() -> FleetSpec:
    return load(ROOT / "examples" / "fleet.toml").fleet


def order(oid: str = "o1", version: int = 1, **kw: object) -> OrderRecord:
    fields: dict[str, object] = {"site": "pod-berlin", "product": "custom-bracket", "qty": 5, "created": T0,
                                 "due": T0 + timedelta(hours=48)}
    fields.update(kw)
    return OrderRecord(id=oid, version=version, **fields)  # type: ignore[arg-type]


def shipment(sid: str = "s1", version: int = 1, **kw: object) -> ShipmentRecord:
    fields: dict[str, object] = {"site": "lm-rotterdam", "sku": "DRIVE-UNIT", "qty": 200.0,
                                 "eta": T0 + timedelta(days=30), "origin": "Shenzhen"}
    fields.update(kw)
    return ShipmentRecord(id=sid, version=version, **fields)  # type: ignore[arg-type]


def fresh(fleet: FleetSpec) -> TwinState:
    return live.initial_state(fleet, T0)


def test_order_lifecycle_received_updated_closed(fleet: FleetSpec) -> None:
    s0 = fresh(fleet)
    s1, ev1 = apply_records(fleet, s0, [order(qty=5)], T0)
    (o,) = s1.sites[BERLIN].orders
    assert (o.id, o.qty, o.done_qty, o.version) == ("o1", 5, 0, 1)
    assert [e.kind for e in ev1] == [EventKind.ORDER_RECEIVED]
    assert s1.sites[BERLIN].recent_events[-1] == ev1[0]
    s2, ev2 = apply_records(fleet, s1, [order(version=2, done_qty=3)], T0)
    assert s2.sites[BERLIN].orders[0].done_qty == 3
    assert [e.kind for e in ev2] == [EventKind.ORDER_UPDATED]
    s3, ev3 = apply_records(fleet, s2, [order(version=3, status=OrderStatus.DONE, done_qty=5)], T0)
    assert s3.sites[BERLIN].orders == ()
    assert [e.kind for e in ev3] == [EventKind.ORDER_CLOSED]
    assert ev3[0].data["order"] == "o1"
    assert s0.sites[BERLIN].orders == ()  # the input state is never modified


def test_late_and_repeated_versions_are_ignored(fleet: FleetSpec) -> None:
    s1, _ = apply_records(fleet, fresh(fleet), [order(version=5, qty=7)], T0)
    s2, ev = apply_records(fleet, s1, [order(version=3, qty=1), order(version=5, qty=9)], T0)
    assert s2 == s1 and ev == ()  # version 3 < 5 and 5 <= 5: nothing changes, no event


def test_order_moved_to_another_site_leaves_the_first(fleet: FleetSpec) -> None:
    s1, _ = apply_records(fleet, fresh(fleet), [order(version=1)], T0)
    s2, _ = apply_records(fleet, s1, [order(version=2, site="lm-rotterdam", product="smart-lamp")], T0)
    assert s2.sites[BERLIN].orders == ()
    assert [o.id for o in s2.sites[ROTTERDAM].orders] == ["o1"]


def test_shipment_planned_eta_delay_and_arrival_keep_on_hand(fleet: FleetSpec) -> None:
    sku = Sku("DRIVE-UNIT")
    s1, ev1 = apply_records(fleet, fresh(fleet), [shipment(version=1)], T0)
    (shp,) = s1.sites[ROTTERDAM].inventory[sku].in_transit
    assert (shp.id, shp.qty, shp.eta, shp.planned_eta, shp.origin) == (
        "s1", 200.0, T0 + timedelta(days=30), T0 + timedelta(days=30), "Shenzhen")
    assert [e.kind for e in ev1] == [EventKind.SHIPMENT_UPDATED]
    late = T0 + timedelta(days=35)
    s2, ev2 = apply_records(fleet, s1, [shipment(version=2, eta=late)], T0)
    (shp2,) = s2.sites[ROTTERDAM].inventory[sku].in_transit
    # the planned ETA is the first one announced: the delay is 5 days = 120 h
    assert (shp2.eta, shp2.planned_eta) == (late, T0 + timedelta(days=30))
    assert "120.0 h late" in ev2[0].message
    s3, ev3 = apply_records(fleet, s2, [shipment(version=3, status=ShipmentStatus.ARRIVED, eta=late)], T0)
    assert s3.sites[ROTTERDAM].inventory[sku].in_transit == ()
    assert [e.kind for e in ev3] == [EventKind.SHIPMENT_ARRIVED]
    # stock is measured by the PLC: a feed arrival never changes on_hand
    assert s3.sites[ROTTERDAM].inventory[sku].on_hand == s0_on_hand(fleet, sku)


def s0_on_hand(fleet: FleetSpec, sku: Sku) -> float | None:
    return fresh(fleet).sites[ROTTERDAM].inventory[sku].on_hand


def test_feed_shipments_survive_the_live_reducer(fleet: FleetSpec) -> None:
    s1, _ = apply_records(fleet, fresh(fleet), [shipment()], T0)
    s2, _ = live.apply(fleet, s1, [], T0 + timedelta(minutes=5))
    assert [s.id for s in s2.sites[ROTTERDAM].inventory[Sku("DRIVE-UNIT")].in_transit] == ["s1"]
    assert s2.sites[ROTTERDAM].orders == s1.sites[ROTTERDAM].orders


@pytest.mark.parametrize(("record", "reason"), [
    (order(site="pod-mars"), "unknown site 'pod-mars'"),
    (order(product="hoverboard"), "unknown product 'hoverboard'"),
    (order(product="nylon-gripper"), "site 'pod-berlin' cannot make 'nylon-gripper': no machine for assemble"),
    (order(qty=0), "qty must be > 0 (got 0)"),
    (order(done_qty=6), "done_qty must be between 0 and qty 5 (got 6)"),
    (order(due=T0 - timedelta(hours=1)), "due 2026-03-02T07:00:00+00:00 is before created 2026-03-02T08:00:00+00:00"),
    (order(oid=""), "id is empty"),
    (shipment(sku="PLA-1KG"), "site 'lm-rotterdam' does not stock SKU 'PLA-1KG'"),
    (shipment(qty=-1.0), "qty must be > 0 (got -1)"),
])
def test_validation_reasons(fleet: FleetSpec, record: BusinessRecord, reason: str) -> None:
    assert validate(fleet, record) == reason
    state = fresh(fleet)
    assert apply_records(fleet, state, [record], T0) == (state, ())  # an invalid record never lands


def test_what_if_fork_includes_feed_orders_and_shipments(fleet: FleetSpec) -> None:
    records = [order("o1", qty=5, done_qty=2), order("o2", qty=4, due=T0 + timedelta(hours=24)),
               shipment("s1", eta=T0 + timedelta(days=3))]
    state, _ = apply_records(fleet, fresh(fleet), records, T0)
    f = fork(fleet, state, horizon_s=7 * 86400.0, sites=["pod-berlin", "lm-rotterdam"])
    orders = [(o.id, o.qty, o.due_s) for o in f.data.orders]
    # first come first served, as the plant's queues (both created at T0: by id); the remaining quantity
    # (5 - 2 = 3) starts again; due times in s from as_of (T0)
    assert orders == [("o1", 3, 48 * 3600.0), ("o2", 4, 24 * 3600.0)]
    (item,) = [i for i in f.data.items if i.site == "lm-rotterdam" and i.sku == "DRIVE-UNIT"]
    assert [(t.qty, t.eta_s) for t in item.in_transit] == [(200.0, 3 * 86400.0)]


# ------------------------------------------------------------------------------------ idempotence

_ids = st.sampled_from(["a", "b", "c"])
_times = st.integers(min_value=0, max_value=96).map(lambda h: T0 + timedelta(hours=h))
_orders = st.builds(
    lambda oid, v, qty, done, status, created, due_h, site: OrderRecord(
        id=oid, version=v, site=site, product="custom-bracket", qty=qty, done_qty=min(done, qty), status=status,
        created=created, due=created + timedelta(hours=due_h)),
    _ids, st.integers(0, 4), st.integers(1, 9), st.integers(0, 9), st.sampled_from(list(OrderStatus)), _times,
    st.integers(0, 72), st.sampled_from(["pod-berlin", "pod-austin"]))
_shipments = st.builds(
    lambda sid, v, qty, eta, status, sku: ShipmentRecord(
        id=sid, version=v, site="pod-berlin", sku=sku, qty=float(qty), eta=eta, status=status, origin="x"),
    _ids, st.integers(0, 4), st.integers(1, 500), _times, st.sampled_from(list(ShipmentStatus)),
    st.sampled_from(["PLA-1KG", "BOX-S"]))
_batches = st.lists(st.one_of(_orders, _shipments), max_size=12)


@settings(max_examples=60, deadline=None)
@given(before=_batches, batch=_batches, data=st.data())
def test_replay_and_duplicates_change_nothing(fleet: FleetSpec, before: list[BusinessRecord],
                                              batch: list[BusinessRecord], data: st.DataObject) -> None:
    start, _ = apply_records(fleet, fresh(fleet), before, T0)  # any state the feeds could have built
    once, _ = apply_records(fleet, start, batch, T0)
    # the same batch again: nothing changes and nothing happens
    twice, events = apply_records(fleet, once, batch, T0)
    assert twice == once and events == ()
    # any order, any duplicates of the same records: the same state
    dupes = data.draw(st.lists(st.sampled_from(batch), max_size=6)) if batch else []
    shuffled = data.draw(st.permutations(batch + dupes))
    assert apply_records(fleet, start, shuffled, T0)[0] == once
