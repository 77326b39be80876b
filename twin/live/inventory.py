"""How inventory readings change an item's stock: on hand, consumed and received, the PLC-reported shipment.

Readings have the SKU as asset and one of ``INVENTORY_SIGNALS`` (the rules are in ``twin.live``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from twin.frozen import FrozenDict
from twin.live.ignored import IgnoredCounter
from twin.readings import Quality, Reading, Value
from twin.spec import InventoryItemSpec, SiteId
from twin.state import Event, EventKind, InventoryState, Shipment

__all__ = ["INVENTORY_SIGNALS", "fold_item", "sweep_item"]

INVENTORY_SIGNALS = ("on_hand", "in_transit", "eta")  # what an inventory item can report

_ON_HAND, _IN_TRANSIT, _ETA = INVENTORY_SIGNALS


def _number(value: Value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def fold_item(
    item: InventoryItemSpec,
    old: InventoryState,
    readings: list[Reading],
    site: SiteId,
    events: list[Event],
    ignored: IgnoredCounter,
) -> InventoryState:
    on_hand, quality, ts, reason = old.on_hand, old.quality, old.ts, old.reason
    consumed, received = old.consumed_total, old.received_total
    # the reducer owns only the PLC-reported shipment (empty id); feed shipments pass through untouched
    fed = tuple(s for s in old.in_transit if s.id)
    plc = [s for s in old.in_transit if not s.id]
    shipment = plc[0] if plc else None
    qty = shipment.qty if shipment is not None else 0.0
    eta: datetime | None = shipment.eta if shipment is not None else None
    transit_drop = 0.0
    rise = 0.0
    for r in readings:
        signal = r.signal
        if signal == _ON_HAND:
            if ts is not None and r.ts < ts:
                ignored.add(r, "older than the latest sample")
                continue
            value = _number(r.value)
            if r.quality is not Quality.GOOD or value is None:
                quality = r.quality if r.quality is not Quality.GOOD else Quality.BAD
                reason = r.reason or f"on_hand value {r.value!r} is not a number"
                ts = r.ts
                continue
            if on_hand is not None:
                if value < on_hand:
                    consumed += on_hand - value
                elif value > on_hand:
                    received += value - on_hand
                    rise += value - on_hand
            on_hand, quality, ts, reason = value, Quality.GOOD, r.ts, ""
        elif signal in (_IN_TRANSIT, _ETA):
            value = _number(r.value)
            if r.quality is not Quality.GOOD or value is None:
                continue  # nothing trustworthy to say about shipments; keep what we knew
            if signal == _IN_TRANSIT:
                if value < qty:
                    transit_drop += qty - value
                if value > 0 and qty <= 0 and eta is None:
                    eta = r.ts + timedelta(days=item.lead_time_d)
                qty = value
            elif value > 0:
                eta = datetime.fromtimestamp(value, UTC)
        else:
            ignored.add(r, "unknown signal")
    in_transit: tuple[Shipment, ...] = fed
    if qty > 0:
        if eta is None:
            eta = readings[-1].ts + timedelta(days=item.lead_time_d)
        if shipment is not None and shipment.qty == qty and shipment.eta == eta:
            in_transit = old.in_transit
        else:
            in_transit = (Shipment(sku=item.sku, qty=qty, eta=eta), *fed)
    if rise > 0 and transit_drop > 0:
        events.append(
            Event(
                ts=readings[-1].ts,
                site=site,
                asset=item.sku,
                kind=EventKind.SHIPMENT_ARRIVED,
                message=f"{item.sku}: shipment of {transit_drop:g} {item.unit} arrived".rstrip(),
                data=FrozenDict({"sku": str(item.sku), "qty": transit_drop, "received": rise}),
            )
        )
    return InventoryState(
        sku=old.sku,
        on_hand=on_hand,
        quality=quality,
        ts=ts,
        reason=reason,
        in_transit=in_transit,
        consumed_total=consumed,
        received_total=received,
    )


def sweep_item(old: InventoryState, now: datetime, threshold_s: float) -> InventoryState | None:
    if old.quality is not Quality.GOOD or old.ts is None:
        return None
    if (now - old.ts).total_seconds() <= threshold_s:
        return None
    return InventoryState(
        sku=old.sku,
        on_hand=old.on_hand,
        quality=Quality.STALE,
        ts=old.ts,
        reason=f"not refreshed for {threshold_s:g} s",
        in_transit=old.in_transit,
        consumed_total=old.consumed_total,
        received_total=old.received_total,
    )
