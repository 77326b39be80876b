"""Order and stock KPIs: the order backlog, shipment lateness, consumption, days of cover, stock projected forward.

Every function returns numbers (or None where an input is missing), never strings or colours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from twin.state import InventoryState, OpenOrder, Shipment

__all__ = [
    "MAX_COVER_D",
    "Arrival",
    "Backlog",
    "ShipmentLateness",
    "StockProjection",
    "backlog",
    "consumption_per_day",
    "days_of_cover",
    "order_slack_s",
    "project_stock",
    "remaining_units",
    "shipment_lateness",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Backlog:
    """The open orders of a site at ``as_of``: how many, how many units still to make, how late.

    ``slack`` of an order is ``due - as_of`` (negative: overdue); ``mean_slack_s``/``min_slack_s``
    are over the open orders (None without orders); ``units`` counts what is still to make
    (``qty - done_qty``, never below 0).

    >>> from twin.state import OpenOrder
    >>> t = datetime(2026, 1, 5, 8, 0)
    >>> o = [OpenOrder(id="A", product="p", qty=5, created=t, due=t + timedelta(hours=6)),
    ...      OpenOrder(id="B", product="p", qty=3, done_qty=1, created=t, due=t - timedelta(hours=2))]
    >>> b = backlog(o, t)
    >>> (b.open_orders, b.units, b.overdue, b.min_slack_s / 3600, b.mean_slack_s / 3600)
    (2, 7, 1, -2.0, 2.0)
    """

    as_of: datetime
    open_orders: int = 0
    units: int = 0
    overdue: int = 0
    overdue_units: int = 0
    next_due: datetime | None = None
    mean_slack_s: float | None = None
    min_slack_s: float | None = None


def order_slack_s(order: OpenOrder, now: datetime) -> float:
    """Seconds from ``now`` to the order's due time (negative: overdue)."""
    return (order.due - now).total_seconds()


def remaining_units(order: OpenOrder) -> int:
    """Units of an order still to make (never below 0)."""
    return max(0, order.qty - order.done_qty)


def backlog(orders: Sequence[OpenOrder], now: datetime) -> Backlog:
    """The backlog of ``orders`` (a site's open orders) at ``now``."""
    if not orders:
        return Backlog(as_of=now)
    slacks = [order_slack_s(o, now) for o in orders]
    late = [o for o, s in zip(orders, slacks, strict=True) if s < 0]
    upcoming = [o.due for o, s in zip(orders, slacks, strict=True) if s >= 0]
    return Backlog(
        as_of=now,
        open_orders=len(orders),
        units=sum(remaining_units(o) for o in orders),
        overdue=len(late),
        overdue_units=sum(remaining_units(o) for o in late),
        next_due=min(upcoming) if upcoming else None,
        mean_slack_s=sum(slacks) / len(slacks),
        min_slack_s=min(slacks),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ShipmentLateness:
    """How late a shipment in transit is at ``now``.

    ``delay_s`` = ETA − planned ETA (positive: announced late; None when no plan was announced);
    ``overdue`` = its ETA has passed and it has not arrived (a shipment in transit has not arrived);
    ``overdue_s`` how long past its ETA (0 when not overdue).

    >>> from twin.state import Shipment
    >>> t = datetime(2026, 1, 5, 8, 0)
    >>> s = Shipment(sku="X", qty=10, eta=t + timedelta(days=2), planned_eta=t - timedelta(days=1))
    >>> r = shipment_lateness(s, t)
    >>> (r.delay_s / 86400, r.overdue, r.late)
    (3.0, False, True)
    """

    delay_s: float | None
    overdue: bool
    overdue_s: float = 0.0

    @property
    def late(self) -> bool:
        return self.overdue or (self.delay_s is not None and self.delay_s > 0)


def shipment_lateness(shipment: Shipment, now: datetime) -> ShipmentLateness:
    """Delay against the planned ETA and whether the ETA has passed (the shipment still in transit)."""
    delay = (shipment.eta - shipment.planned_eta).total_seconds() if shipment.planned_eta is not None else None
    past = (now - shipment.eta).total_seconds()
    return ShipmentLateness(delay_s=delay, overdue=past > 0, overdue_s=max(0.0, past))


def consumption_per_day(before: InventoryState | None, after: InventoryState | None, days: float) -> float | None:
    """Average use per day of an item between two snapshots (None: a snapshot missing, empty span).

    Computed from ``consumed_total`` (every decrease of on hand). This is the rate the stock
    projection uses: what the shelf actually lost (scrap and rework included), rather than the
    planned demand × bill of materials, which says what should be used.
    """
    if before is None or after is None or days <= 0:
        return None
    return max(0.0, after.consumed_total - before.consumed_total) / days


MAX_COVER_D = 3650.0  # a projected stockout further away than ten years is "none in sight" (a trickle of use)

def days_of_cover(on_hand: float | None, consumed: float, window_days: float) -> float | None:
    """Days the stock lasts at the average daily use of the window; None when nothing was used.

    A use so small that the stock would last over ``MAX_COVER_D`` (float noise in a PLC's weight,
    a trickle) counts as nothing used: None, not "13,429,580 d".
    """
    if on_hand is None or consumed <= 0 or window_days <= 0:
        return None
    cover = on_hand / (consumed / window_days)
    return None if cover > MAX_COVER_D else cover



@dataclass(frozen=True, slots=True, kw_only=True)
class Arrival:
    """A shipment counted in a projection: ``qty`` arrives at ``t``."""

    t: datetime
    qty: float
    shipment: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StockProjection:
    """Stock of one item projected forward from ``start``: linear use at ``rate_per_d``, arrivals as steps.

    ``t``/``level`` is the series to draw (an arrival appears twice at its time: the level just
    before and just after it; the level never goes below 0, a stockout stays at 0 until the next
    arrival). ``stockout_at`` is the first time the level reaches 0 (None: never, with the arrivals
    known, or more than ``MAX_COVER_D`` away; or no use seen); ``cover_d`` the days from ``start``
    to it, counting the arrivals (None when there is no use, since the stock then lasts
    indefinitely). Shipments whose ETA has passed are not counted (when they will come is unknown)
    and are listed in ``overdue``.
    """

    start: datetime
    end: datetime
    on_hand: float
    rate_per_d: float | None
    t: tuple[datetime, ...]
    level: tuple[float, ...]
    arrivals: tuple[Arrival, ...] = ()
    overdue: tuple[Arrival, ...] = ()
    stockout_at: datetime | None = None
    cover_d: float | None = None


def project_stock(
    on_hand: float,
    rate_per_d: float | None,
    shipments: Sequence[Shipment],
    start: datetime,
    end: datetime,
) -> StockProjection:
    """Project ``on_hand`` from ``start`` to ``end`` with use and arrivals; the first stockout exactly.

    Use is linear at ``rate_per_d`` (None or 0: no use); each shipment adds its quantity at its ETA
    (shipments with an ETA before ``start`` are overdue and not counted). The first stockout is
    found even when it falls after ``end``. An empty shelf is a stockout at ``start``.

    >>> t = datetime(2026, 1, 5)
    >>> from twin.state import Shipment
    >>> p = project_stock(10.0, 5.0, [Shipment(sku="X", qty=20, eta=t + timedelta(days=1))], t,
    ...                   t + timedelta(days=7))
    >>> [round(x, 1) for x in p.level], p.cover_d  # 10 → 5 at day 1, +20 → 25, lasts 5 more days
    ([10.0, 5.0, 25.0, 0.0, 0.0], 6.0)
    """
    rate = rate_per_d if rate_per_d is not None and rate_per_d > 0 else 0.0
    counted = sorted((Arrival(t=s.eta, qty=s.qty, shipment=s.id) for s in shipments if s.eta >= start),
                     key=lambda a: a.t)
    overdue = tuple(Arrival(t=s.eta, qty=s.qty, shipment=s.id) for s in shipments if s.eta < start)
    level, at = max(0.0, on_hand), start
    ts: list[datetime] = [start]
    levels: list[float] = [level]
    stockout: datetime | None = start if level <= 0 else None
    closed = False  # the series has reached ``end``; what follows only looks for the stockout

    def point(t: datetime) -> None:
        if not closed:
            ts.append(t)
            levels.append(level)

    def use_until(t: datetime) -> None:
        nonlocal level, at, stockout
        days = (t - at).total_seconds() / 86400.0
        if rate > 0 and 0 < level <= rate * days:
            empty = at + timedelta(days=level / rate)
            stockout = stockout or empty
            level = 0.0
            point(empty)
        elif rate > 0:
            level = max(0.0, level - rate * days)
        at = t

    def close() -> None:
        nonlocal closed
        if not closed:
            use_until(end)
            point(end)
            closed = True

    for a in counted:
        if a.t > end:
            close()
        use_until(a.t)
        point(a.t)
        level += a.qty
        point(a.t)
    close()
    if stockout is None and rate > 0 and level / rate <= MAX_COVER_D:
        stockout = at + timedelta(days=level / rate)  # beyond MAX_COVER_D: no stockout in sight (None)
    cover = (stockout - start).total_seconds() / 86400.0 if stockout is not None else None
    return StockProjection(start=start, end=end, on_hand=on_hand, rate_per_d=rate_per_d, t=tuple(ts),
                           level=tuple(levels), arrivals=tuple(counted), overdue=overdue,
                           stockout_at=stockout, cover_d=cover)
