"""Which in-transit shipments count: a PLC's in-transit register and a logistics feed are never added up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from twin.spec import Sku
from twin.state import InventoryState, Shipment

T = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SKU = Sku("PLA-1KG")
PLC = Shipment(sku=SKU, qty=30.0, eta=T + timedelta(days=2))  # empty id: what the PLC's registers say
FED = Shipment(sku=SKU, qty=30.0, eta=T + timedelta(days=2, hours=1), id="S-1", origin="Leipzig", version=1)


def test_the_feed_replaces_the_plc_register_when_it_knows_shipments() -> None:
    item = InventoryState(sku=SKU, on_hand=2.0, in_transit=(PLC, FED))
    assert item.inbound == (FED,)  # 30 kg coming, not 60: both describe the same pallet
    assert sum(s.qty for s in item.inbound) == 30.0


def test_without_a_feed_the_plc_register_counts() -> None:
    assert InventoryState(sku=SKU, in_transit=(PLC,)).inbound == (PLC,)
    assert InventoryState(sku=SKU).inbound == ()
