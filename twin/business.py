"""Open orders and inbound shipments from the business feeds, folded into the twin as a pure reducer.

Records come from an ERP or logistics export (file drop, HTTP; parsed in ``connectors.feeds``).
Each record is the whole current truth about one order or shipment at some ``version``:

* an **order** record with status ``open`` is upserted into its site's ``SiteState.orders``;
  ``done`` or ``cancelled`` removes it (ORDER_RECEIVED / ORDER_UPDATED / ORDER_CLOSED events);
* a **shipment** record with status ``in_transit`` is upserted into ``in_transit`` of that SKU's
  ``InventoryState`` at the site (``planned_eta`` is the first ETA seen, so a later ETA is a
  delay); ``arrived`` or ``cancelled`` removes it (SHIPMENT_UPDATED / SHIPMENT_ARRIVED events).
  The arrival of a feed shipment does **not** change ``on_hand``: stock is measured by the PLC
  (scales, bin counts), and the reducer never guesses it.

Idempotence: a record whose version is at most the version the state already holds for that id is
ignored, and within one call only the highest version of each id counts (a tie between different
contents is broken by the content, so the result never depends on the order of the records).
Replaying a batch, or the same records in any order with any duplicates, gives the same state.
Once a record has closed an order or shipment, the state no longer holds its id: guarding against
a *later* batch bringing back an older version is the job of the ledger at the boundary
(``connectors.feeds.ledger``), which remembers the highest version of every id.

Ids are fleet-wide: a record for an id the state holds at another site moves it there.

>>> from datetime import UTC, datetime
>>> from twin.spec import FleetSpec
>>> spec = FleetSpec(id="f", name="f", sites=(), templates=())
>>> rec = OrderRecord(id="o1", version=1, site="nowhere", product="p", qty=1,
...                   created=datetime(2026, 1, 5, tzinfo=UTC), due=datetime(2026, 1, 6, tzinfo=UTC))
>>> validate(spec, rec)
"unknown site 'nowhere'"
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import pairwise

from twin.alarms import RECENT_EVENTS
from twin.frozen import FrozenDict
from twin.readings import Value
from twin.spec import FleetSpec, SiteId, Sku
from twin.state import Event, EventKind, InventoryState, OpenOrder, Shipment, SiteState, TwinState

__all__ = [
    "BusinessRecord",
    "OrderRecord",
    "OrderStatus",
    "RecordKind",
    "ShipmentRecord",
    "ShipmentStatus",
    "apply_records",
    "latest_records",
    "validate",
]

log = logging.getLogger(__name__)


class RecordKind(enum.Enum):
    """Which feed a record belongs to."""

    ORDER = "order"
    SHIPMENT = "shipment"


class OrderStatus(enum.Enum):
    """Where a customer order stands. Only ``OPEN`` orders are kept in the twin."""

    OPEN = "open"
    DONE = "done"  # shipped to the customer
    CANCELLED = "cancelled"


class ShipmentStatus(enum.Enum):
    """Where an inbound shipment stands. Only ``IN_TRANSIT`` shipments are kept in the twin."""

    IN_TRANSIT = "in_transit"
    ARRIVED = "arrived"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRecord:
    """One version of a customer order, as the ERP reports it."""

    id: str
    version: int
    site: str
    product: str
    qty: int
    created: datetime
    due: datetime
    status: OrderStatus = OrderStatus.OPEN
    done_qty: int = 0
    operation: str = ""  # the routing role the order is at now (e.g. "print"); "" = not started or not reported
    # good units through each routing step so far (cumulative, one per step, non-increasing; the MES's
    # per-operation confirmations); () = not reported, then only operation and done_qty are known
    done_by_step: tuple[int, ...] = ()

    kind = RecordKind.ORDER


@dataclass(frozen=True, slots=True, kw_only=True)
class ShipmentRecord:
    """One version of an inbound shipment, as the logistics system reports it.

    ``planned_eta`` is optional: the first ETA announced. Without it the twin keeps the first ETA
    it saw for this id.
    """

    id: str
    version: int
    site: str
    sku: str
    qty: float
    eta: datetime
    origin: str = ""
    status: ShipmentStatus = ShipmentStatus.IN_TRANSIT
    planned_eta: datetime | None = None

    kind = RecordKind.SHIPMENT


BusinessRecord = OrderRecord | ShipmentRecord


def validate(spec: FleetSpec, record: BusinessRecord) -> str | None:
    """Why ``record`` cannot be applied to a twin of ``spec`` (None: it can)."""
    if not record.id:
        return "id is empty"
    if record.version < 0:
        return f"version must be >= 0 (got {record.version})"
    try:
        site = spec.site(record.site)
    except KeyError:
        return f"unknown site {record.site!r}"
    if isinstance(record, OrderRecord):
        product = spec.product(record.product)
        if product is None:
            return f"unknown product {record.product!r}"
        roles = {m.role for m in site.machines}
        missing = [r.value for r in product.routing if r not in roles]
        if missing:
            return f"site {site.id!r} cannot make {record.product!r}: no machine for {', '.join(missing)}"
        if record.qty <= 0:
            return f"qty must be > 0 (got {record.qty})"
        if not 0 <= record.done_qty <= record.qty:
            return f"done_qty must be between 0 and qty {record.qty} (got {record.done_qty})"
        if record.due < record.created:
            return f"due {record.due.isoformat()} is before created {record.created.isoformat()}"
        steps = record.done_by_step
        if steps:
            if len(steps) != len(product.routing):
                return (f"done_by_step needs one count per routing step of {record.product!r} "
                        f"({len(product.routing)}) (got {len(steps)})")
            if any(not 0 <= n <= record.qty for n in steps) or any(b > a for a, b in pairwise(steps)):
                return (f"done_by_step must be non-increasing counts between 0 and qty {record.qty} "
                        f"(got {list(steps)})")
            if steps[-1] != record.done_qty:
                return f"done_by_step ends with {steps[-1]} but done_qty is {record.done_qty}"
        if record.operation and record.operation not in {r.value for r in product.routing}:
            routing = ", ".join(r.value for r in product.routing)
            return f"operation {record.operation!r} is not in the routing of {record.product!r} ({routing})"
        return None
    if site.item(record.sku) is None:
        return f"site {site.id!r} does not stock SKU {record.sku!r}"
    if not record.qty > 0:
        return f"qty must be > 0 (got {record.qty:g})"
    return None


def _content_key(record: BusinessRecord) -> str:
    return repr(record)


def latest_records(records: Iterable[BusinessRecord]) -> list[BusinessRecord]:
    """The highest version of each (kind, id), sorted by kind and id; ties broken by content."""
    best: dict[tuple[RecordKind, str], BusinessRecord] = {}
    for r in records:
        key = (r.kind, r.id)
        cur = best.get(key)
        if cur is None or (r.version, _content_key(r)) > (cur.version, _content_key(cur)):
            best[key] = r
    return [best[k] for k in sorted(best, key=lambda k: (k[0].value, k[1]))]


@dataclass(slots=True)
class _Sites:
    """Working copy of the sites a batch touches (the input state is never mutated)."""

    state: TwinState
    orders: dict[SiteId, list[OpenOrder]]
    inventory: dict[SiteId, dict[Sku, InventoryState]]
    events: dict[SiteId, list[Event]]

    def site_orders(self, site: SiteId) -> list[OpenOrder]:
        got = self.orders.get(site)
        if got is None:
            got = self.orders[site] = list(self._site(site).orders)
        return got

    def item(self, site: SiteId, sku: Sku) -> InventoryState:
        inv = self.inventory.setdefault(site, {})
        got = inv.get(sku)
        if got is None:
            got = inv[sku] = self._site(site).inventory.get(sku) or InventoryState(sku=sku)
        return got

    def set_item(self, site: SiteId, item: InventoryState) -> None:
        self.inventory.setdefault(site, {})[item.sku] = item

    def _site(self, site: SiteId) -> SiteState:
        got = self.state.sites.get(site)
        return got if got is not None else SiteState(site=site, as_of=self.state.as_of)

    def emit(self, event: Event) -> None:
        self.events.setdefault(event.site, []).append(event)

    def build(self) -> tuple[TwinState, tuple[Event, ...]]:
        new_sites: dict[SiteId, SiteState] = {}
        touched = set(self.orders) | set(self.inventory) | set(self.events)
        all_events: list[Event] = []
        for sid in sorted(touched):
            old = self._site(sid)
            site_events = self.events.get(sid, [])
            orders = tuple(sorted(self.orders[sid], key=_order_key)) if sid in self.orders else old.orders
            inventory = old.inventory
            if sid in self.inventory:
                inventory = inventory.merge({sku: replace(it, in_transit=_sorted_transit(it.in_transit))
                                             for sku, it in self.inventory[sid].items()})
            recent = old.recent_events
            shown = [e for e in site_events if e.kind is not EventKind.ORDER_UPDATED]
            if shown:
                # order progress (one event per confirmation) stays in the events table only: in the
                # bounded tail it pushed out status changes and alarms and made every checkpoint 25-80 kB
                recent = (recent + tuple(shown))[-RECENT_EVENTS:]
            new_sites[sid] = replace(old, orders=orders, inventory=inventory, recent_events=recent)
            all_events.extend(site_events)
        if not new_sites:
            return self.state, ()
        return replace(self.state, sites=self.state.sites.merge(new_sites)), tuple(all_events)


def _order_key(o: OpenOrder) -> tuple[datetime, str]:
    return (o.due, o.id)


def _sorted_transit(shipments: tuple[Shipment, ...]) -> tuple[Shipment, ...]:
    """The PLC-reported shipment (empty id) first, then the feed's by ETA and id (one content, one order)."""
    return tuple(sorted(shipments, key=lambda s: (s.id != "", s.eta, s.id)))


def _iso(t: datetime | None) -> str:
    return t.isoformat() if t is not None else ""


def _order_event(kind: EventKind, now: datetime, site: SiteId, o: OpenOrder, message: str) -> Event:
    data: dict[str, Value] = {"order": o.id, "product": o.product, "qty": o.qty, "done_qty": o.done_qty,
                              "due": _iso(o.due), "version": o.version}
    return Event(ts=now, site=site, asset=o.product, kind=kind, message=message, data=FrozenDict(data))


def _shipment_event(kind: EventKind, now: datetime, site: SiteId, s: Shipment, message: str,
                    status: str) -> Event:
    data: dict[str, Value] = {"shipment": s.id, "sku": str(s.sku), "qty": s.qty, "eta": _iso(s.eta),
                              "planned_eta": _iso(s.planned_eta), "origin": s.origin, "version": s.version,
                              "status": status}
    return Event(ts=now, site=site, asset=str(s.sku), kind=kind, message=message, data=FrozenDict(data))


def _apply_order(w: _Sites, r: OrderRecord, where: tuple[SiteId, OpenOrder] | None, now: datetime) -> None:
    site = SiteId(r.site)
    old = where[1] if where is not None else None
    if where is not None and where[0] != site:  # moved to another site: leave the old one
        orders = w.site_orders(where[0])
        orders[:] = [o for o in orders if o.id != r.id]
    orders = w.site_orders(site)
    if r.status is not OrderStatus.OPEN:
        if old is None:
            return  # closed before the twin ever held it: nothing to remove
        orders[:] = [o for o in orders if o.id != r.id]
        closed = replace(old, version=r.version, done_qty=r.done_qty, operation=r.operation,
                         done_by_step=r.done_by_step)
        w.emit(_order_event(EventKind.ORDER_CLOSED, now, site, closed,
                            f"order {r.id} ({r.product}) {r.status.value}"))
        return
    new = OpenOrder(id=r.id, product=r.product, qty=r.qty, created=r.created, due=r.due, done_qty=r.done_qty,
                    operation=r.operation, done_by_step=r.done_by_step, version=r.version)
    if old is None:
        orders.append(new)
        w.emit(_order_event(EventKind.ORDER_RECEIVED, now, site, new,
                            f"order {r.id}: {r.qty} x {r.product} due {r.due.isoformat(timespec='minutes')}"))
        return
    orders[:] = [o for o in orders if o.id != r.id]
    orders.append(new)
    w.emit(_order_event(EventKind.ORDER_UPDATED, now, site, new,
                        f"order {r.id} updated: {r.done_qty}/{r.qty} done"
                        f"{', at ' + r.operation if r.operation else ''}, due {r.due.isoformat(timespec='minutes')}"))


def _apply_shipment(w: _Sites, r: ShipmentRecord, where: tuple[SiteId, Shipment] | None,
                    now: datetime) -> None:
    site, sku = SiteId(r.site), Sku(r.sku)
    old = where[1] if where is not None else None
    if where is not None:  # take it out of where it was (another site or SKU included)
        item = w.item(where[0], where[1].sku)
        w.set_item(where[0], replace(item, in_transit=tuple(s for s in item.in_transit if s.id != r.id)))
    if r.status is not ShipmentStatus.IN_TRANSIT:
        if old is None:
            return
        gone = replace(old, version=r.version)
        arrived = r.status is ShipmentStatus.ARRIVED
        kind = EventKind.SHIPMENT_ARRIVED if arrived else EventKind.SHIPMENT_UPDATED
        message = f"shipment {r.id}: {old.qty:g} {r.sku} {r.status.value}"
        w.emit(_shipment_event(kind, now, site, gone, message, r.status.value))
        return
    planned = old.planned_eta if old is not None and old.planned_eta is not None else (r.planned_eta or r.eta)
    new = Shipment(sku=sku, qty=float(r.qty), eta=r.eta, id=r.id, origin=r.origin, planned_eta=planned,
                   version=r.version)
    item = w.item(site, sku)
    w.set_item(site, replace(item, in_transit=(*item.in_transit, new)))
    if old is None:
        msg = f"shipment {r.id}: {r.qty:g} {r.sku} announced, ETA {r.eta.isoformat(timespec='minutes')}"
    else:
        late_h = (r.eta - planned).total_seconds() / 3600.0
        msg = f"shipment {r.id}: {r.qty:g} {r.sku} ETA {r.eta.isoformat(timespec='minutes')}"
        if late_h > 0:
            msg += f" ({late_h:.1f} h late)"
    w.emit(_shipment_event(EventKind.SHIPMENT_UPDATED, now, site, new, msg, r.status.value))


def apply_records(
    spec: FleetSpec, state: TwinState, records: Sequence[BusinessRecord], now: datetime
) -> tuple[TwinState, tuple[Event, ...]]:
    """Fold order and shipment records into ``state``; returns the new state and what happened (at ``now``).

    Invalid records (see :func:`validate`) and records not newer than what the state holds are
    skipped; the input state is never modified.
    """
    if not records:
        return state, ()
    orders_at: dict[str, tuple[SiteId, OpenOrder]] = {}
    shipments_at: dict[str, tuple[SiteId, Shipment]] = {}
    for sid, ss in state.sites.items():
        for o in ss.orders:
            orders_at[o.id] = (sid, o)
        for inv in ss.inventory.values():
            for s in inv.in_transit:
                if s.id:
                    shipments_at[s.id] = (sid, s)
    w = _Sites(state=state, orders={}, inventory={}, events={})
    for r in latest_records(records):
        reason = validate(spec, r)
        if reason is not None:
            log.warning("%s %s v%d not applied: %s", r.kind.value, r.id, r.version, reason)
            continue
        if isinstance(r, OrderRecord):
            where_o = orders_at.get(r.id)
            if where_o is not None and r.version <= where_o[1].version:
                continue
            _apply_order(w, r, where_o, now)
        else:
            where_s = shipments_at.get(r.id)
            if where_s is not None and r.version <= where_s[1].version:
                continue
            _apply_shipment(w, r, where_s, now)
    return w.build()
