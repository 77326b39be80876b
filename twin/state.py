"""Immutable snapshots of the twin: what every machine and stock item looked like at ``as_of``.

A ``SiteState`` is rebuilt by the live reducer (``twin.live.apply``) from readings, stored as a
checkpoint by the historian, and used as the starting point of a what-if fork. Update by copying
(``dataclasses.replace``); never mutate.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from twin.frozen import FrozenDict
from twin.readings import Quality, Value
from twin.spec import AlarmId, MachineId, MachineStatus, Priority, SignalName, SiteId, Sku

__all__ = [
    "AlarmState",
    "Event",
    "EventKind",
    "InventoryState",
    "MachineState",
    "OpenOrder",
    "Shipment",
    "SignalValue",
    "SiteState",
    "TwinState",
]


class _SignalFields(NamedTuple):
    value: Value
    quality: Quality
    ts: datetime
    reason: str = ""


class SignalValue(_SignalFields):
    """The latest known value of a signal, with its quality and when it was sampled.

    An immutable named tuple, like ``Reading`` (the reducer makes one per reading); construct it by
    keyword.
    """

    __slots__ = ()

    def age_s(self, as_of: datetime) -> float:
        """Seconds between sampling and ``as_of``."""
        return (as_of - self.ts).total_seconds()


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineState:
    """A machine at one moment.

    ``good_total`` / ``scrap_total`` are production counted by the twin since it started, immune to
    PLC counter wrap-around and resets. ``status_seconds`` accumulates the time spent in each status
    up to ``status_since``; time in the current status is ``as_of - status_since``. Window KPIs are
    differences of two snapshots.
    """

    id: MachineId
    status: MachineStatus = MachineStatus.UNKNOWN
    status_since: datetime | None = None
    status_quality: Quality = Quality.STALE
    status_reason: str = "no data yet"
    good_total: int = 0
    scrap_total: int = 0
    last_raw_good: int | None = None
    last_raw_scrap: int | None = None
    failures: int = 0  # transitions into FAULT
    repairs: int = 0  # transitions out of FAULT
    status_seconds: FrozenDict[MachineStatus, float] = field(default_factory=FrozenDict)
    signals: FrozenDict[SignalName, SignalValue] = field(default_factory=FrozenDict)
    # the last increase of the good or scrap counter (a cycle's end) and the RUNNING seconds
    # (``status_seconds`` + the running stretch) up to it: a fork knows how far the cycle now
    # running has got in running time, through back-to-back builds, failures and shift ends
    counted_at: datetime | None = None
    running_s_at_count: float | None = None

    def running_s(self, at: datetime) -> float:
        """RUNNING seconds counted by the twin up to ``at`` (at or after ``status_since``)."""
        total = self.status_seconds.get(MachineStatus.RUNNING, 0.0)
        if self.status is MachineStatus.RUNNING and self.status_since is not None:
            total += max(0.0, (at - self.status_since).total_seconds())
        return total


@dataclass(frozen=True, slots=True, kw_only=True)
class Shipment:
    """Goods on their way to a site.

    ``id`` is empty for the one shipment a PLC reports through an item's ``in_transit``/``eta``
    signals (the live reducer owns it); shipments from the shipments feed carry the feed's id and
    ``version``, where they come from, and ``planned_eta``, the first ETA announced (so a later ETA
    is a delay: ``eta - planned_eta``).
    """

    sku: Sku
    qty: float
    eta: datetime
    id: str = ""
    origin: str = ""
    planned_eta: datetime | None = None
    version: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class InventoryState:
    """Stock of one item at a site. ``consumed_total`` sums every decrease of ``on_hand``."""

    sku: Sku
    on_hand: float | None = None
    quality: Quality = Quality.STALE
    ts: datetime | None = None
    reason: str = "no data yet"
    in_transit: tuple[Shipment, ...] = ()
    consumed_total: float = 0.0
    received_total: float = 0.0

    @property
    def inbound(self) -> tuple[Shipment, ...]:
        """The shipments to count as coming: the feed's when there are any, else the PLC-reported one.

        A PLC's in-transit register and a logistics feed describe the same goods; the feed is the more
        detailed source (one record per shipment, with its origin and planned ETA), so counting both
        would double every arrival.
        """
        fed = tuple(s for s in self.in_transit if s.id)
        return fed or self.in_transit


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenOrder:
    """A customer order not yet shipped."""

    id: str
    product: str
    qty: int
    created: datetime
    due: datetime
    done_qty: int = 0
    operation: str = ""  # routing role the order is at (from the feed); "" = not started or not reported
    done_by_step: tuple[int, ...] = ()  # good units through each routing step (cumulative); () = not reported
    version: int = 0  # of the feed record it came from (updates with a lower or equal version are ignored)


class EventKind(enum.Enum):
    """What an event records."""

    STATUS_CHANGE = "status_change"
    ALARM_RAISED = "alarm_raised"
    ALARM_CLEARED = "alarm_cleared"
    ALARM_ACKNOWLEDGED = "alarm_acknowledged"
    COUNTER_RESET = "counter_reset"
    QUALITY_CHANGE = "quality_change"
    SHIPMENT_ARRIVED = "shipment_arrived"
    SHIPMENT_UPDATED = "shipment_updated"  # announced, ETA changed or cancelled (orders/shipments feed)
    ORDER_RECEIVED = "order_received"
    ORDER_UPDATED = "order_updated"
    ORDER_CLOSED = "order_closed"  # shipped, completed or cancelled
    STOP_CLASSIFIED = "stop_classified"  # a person gave a stop its reason (operator event)
    ALARM_SHELVING = "alarm_shelving"  # shelved, unshelved, out of / back in service by a person (operator event)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something that happened at a site."""

    ts: datetime
    site: SiteId
    asset: str
    kind: EventKind
    message: str
    data: FrozenDict[str, Value] = field(default_factory=FrozenDict)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmState:
    """One alarm instance (rule × asset) and its lifecycle: active/cleared × acknowledged or not."""

    rule: AlarmId
    site: SiteId
    asset: str
    priority: Priority
    message: str
    active: bool
    raised_at: datetime
    value: Value = None
    cleared_at: datetime | None = None
    acknowledged: bool = False
    acked_by: str = ""
    acked_at: datetime | None = None
    ack_comment: str = ""

    @property
    def key(self) -> str:
        return f"{self.rule}:{self.asset}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteState:
    """A site at ``as_of``.

    ``pending`` holds when each duration-rule condition (key ``rule:asset``) became true, so an
    alarm is raised only once the condition has held for the rule's ``for_s``. ``alarms`` keeps
    active alarms and cleared ones not yet acknowledged. ``recent_events`` is a bounded tail.
    """

    site: SiteId
    as_of: datetime
    machines: FrozenDict[MachineId, MachineState] = field(default_factory=FrozenDict)
    inventory: FrozenDict[Sku, InventoryState] = field(default_factory=FrozenDict)
    alarms: FrozenDict[str, AlarmState] = field(default_factory=FrozenDict)
    pending: FrozenDict[str, datetime] = field(default_factory=FrozenDict)
    orders: tuple[OpenOrder, ...] = ()
    recent_events: tuple[Event, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TwinState:
    """The whole fleet at ``as_of``."""

    fleet: str
    as_of: datetime
    sites: FrozenDict[SiteId, SiteState] = field(default_factory=FrozenDict)
