"""The live twin as a pure reducer: fold a batch of readings into a new immutable state, plus events.

``apply(spec, state, readings)`` never mutates its arguments and never raises on field data:

* **Status.** A GOOD reading of a template's STATUS signal maps its code through
  ``template.status_codes``; a code not in the map, or a BAD/STALE status reading, makes the machine
  ``UNKNOWN`` with the reason. Every status change is a STATUS_CHANGE event; ``status_seconds``
  accumulates the time spent in each status (UNKNOWN included) up to ``status_since``.
  ``failures``/``repairs`` count changes of the last *known* status into and out of FAULT, so a data
  gap in the middle of a fault neither adds a failure nor loses the repair.
* **Staleness.** At ``now`` a GOOD signal older than ``spec.stale_after_polls`` poll intervals turns
  STALE ("not refreshed for N s", N the threshold). A machine whose status signal is stale or bad is
  UNKNOWN from the moment it went stale (sample time + threshold), never its last status as if current.
* **Counters** (GOOD_COUNT/SCRAP_COUNT, unsigned ``counter_bits`` wide): the first reading is the
  baseline; an increase adds to ``good_total``/``scrap_total``; a decrease from the top quarter of the
  range into the bottom quarter is a wrap-around, any other decrease a PLC restart (the new raw value
  counts as production since the restart, and a COUNTER_RESET event). Production is never negative.
  BAD/STALE counter readings never move the baseline.
* **Inventory** readings have the SKU as asset and one of the signals ``on_hand``, ``in_transit``
  (quantity) and ``eta`` (unix seconds, 0 = none). Decreases of ``on_hand`` add to
  ``consumed_total``, increases to ``received_total``; an increase of ``on_hand`` while ``in_transit``
  drops in the same batch is a SHIPMENT_ARRIVED event. Without an ETA a shipment is assumed to
  arrive after the item's nominal lead time from when it was first seen. The reducer owns only that
  PLC-reported shipment (empty ``id``); shipments from the orders/shipments feed pass through.
* A BAD/STALE reading without a value keeps the last known value, marked with its quality.
* Readings for an unknown site, asset or signal, or older than the latest sample of their signal,
  are not applied and not silently dropped: ``apply_detailed`` returns them counted per
  (site, asset, signal, reason) in ``ApplyResult.ignored`` for the collector to log once per key.

After the readings are folded in, the alarm rules are evaluated (``twin.alarms.evaluate``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter

from twin import alarms
from twin.alarms import RECENT_EVENTS
from twin.frozen import FrozenDict
from twin.readings import Quality, Reading, Value
from twin.spec import (
    FleetSpec,
    InventoryItemSpec,
    MachineId,
    MachineSpec,
    MachineStatus,
    MachineTemplate,
    SignalKind,
    SignalName,
    SignalSpec,
    SiteId,
    SiteSpec,
    Sku,
)
from twin.state import (
    Event,
    EventKind,
    InventoryState,
    MachineState,
    Shipment,
    SignalValue,
    SiteState,
    TwinState,
)

__all__ = [
    "INVENTORY_SIGNALS",
    "RECENT_EVENTS",
    "ApplyResult",
    "IgnoredReadings",
    "apply",
    "apply_detailed",
    "apply_site",
    "initial_site_state",
    "initial_state",
    "refresh",
    "status_known_since",
]

log = logging.getLogger(__name__)

INVENTORY_SIGNALS = ("on_hand", "in_transit", "eta")

_ON_HAND, _IN_TRANSIT, _ETA = INVENTORY_SIGNALS
_by_ts = attrgetter("ts")
_IgnoredKey = tuple[str, str, str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class IgnoredReadings:
    """Readings that could not be applied, counted per (site, asset, signal, reason).

    >>> IgnoredReadings(site="s1", asset="X9", signal="temp", reason="unknown asset", count=3,
    ...                 first_ts=datetime(2026, 1, 5, tzinfo=UTC)).count
    3
    """

    site: str
    asset: str
    signal: str
    reason: str
    count: int
    first_ts: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyResult:
    """What one application of a batch produced: the new state, its events, what was not applied.

    >>> from twin.spec import FleetSpec
    >>> spec = FleetSpec(id="f", name="empty fleet", sites=(), templates=())
    >>> t = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    >>> r = apply_detailed(spec, initial_state(spec, t), [
    ...     Reading(ts=t, site="nowhere", asset="P1", signal="status", value=2)])
    >>> r.ignored_count, r.ignored[0].reason
    (1, 'unknown site')
    """

    state: TwinState
    events: tuple[Event, ...]
    ignored: tuple[IgnoredReadings, ...] = ()

    @property
    def ignored_count(self) -> int:
        return sum(i.count for i in self.ignored)


class _Ignored:
    """Accumulates ignored readings during one ``apply`` call (local, never shared)."""

    __slots__ = ("counts", "first_ts")

    def __init__(self) -> None:
        self.counts: dict[_IgnoredKey, int] = {}
        self.first_ts: dict[_IgnoredKey, datetime] = {}

    def add(self, r: Reading, reason: str) -> None:
        key = (r.site, r.asset, r.signal, reason)
        count = self.counts.get(key)
        if count is None:
            self.counts[key] = 1
            self.first_ts[key] = r.ts
        else:
            self.counts[key] = count + 1

    def result(self) -> tuple[IgnoredReadings, ...]:
        return tuple(
            IgnoredReadings(site=site, asset=asset, signal=signal, reason=reason, count=count,
                            first_ts=self.first_ts[(site, asset, signal, reason)])
            for (site, asset, signal, reason), count in self.counts.items()
        )


# ---------------------------------------------------------------------------------------------------
# Initial state


def initial_site_state(site_spec: SiteSpec, as_of: datetime) -> SiteState:
    """A site before any data: every machine UNKNOWN since ``as_of``, every item without stock data."""
    machines = FrozenDict({m.id: MachineState(id=m.id, status_since=as_of) for m in site_spec.machines})
    inventory = FrozenDict({i.sku: InventoryState(sku=i.sku) for i in site_spec.inventory})
    return SiteState(site=site_spec.id, as_of=as_of, machines=machines, inventory=inventory)


def initial_state(spec: FleetSpec, as_of: datetime) -> TwinState:
    """The fleet before any data: every machine and item present, status UNKNOWN, quality STALE.

    >>> from twin.spec import FleetSpec
    >>> initial_state(FleetSpec(id="f", name="F", sites=(), templates=()),
    ...               datetime(2026, 1, 5, tzinfo=UTC)).fleet
    'f'
    """
    sites = FrozenDict({s.id: initial_site_state(s, as_of) for s in spec.sites})
    return TwinState(fleet=spec.id, as_of=as_of, sites=sites)


# ---------------------------------------------------------------------------------------------------
# Machines


def _as_uint(value: Value, bits: int) -> int | None:
    """``value`` as an unsigned ``bits``-wide integer, or None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not value.is_integer():
            return None
        value = int(value)
    if isinstance(value, int) and 0 <= value < (1 << bits):
        return value
    return None


def _status_code(value: Value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


# The reducer's hottest line builds a SignalValue per reading: straight from its fields' tuple.
_tuple_new = tuple.__new__


def _signal_index(template: MachineTemplate) -> dict[str, SignalSpec]:
    """The template's signals by name; the first wins, as ``MachineTemplate.signal`` finds it."""
    index: dict[str, SignalSpec] = {}
    for sig in template.signals:
        index.setdefault(sig.name, sig)
    return index


def _any_stale(signals: FrozenDict[SignalName, SignalValue], cutoff: datetime) -> bool:
    good = Quality.GOOD
    for sv in signals.values():  # noqa: SIM110 - a plain loop is about twice as fast as any() here
        if sv.ts < cutoff and sv.quality is good:
            return True
    return False


class _Machine:
    """A working copy of one MachineState while a batch is folded in; ``build`` freezes it again."""

    __slots__ = (
        "changed",
        "events",
        "failures",
        "good_total",
        "last_raw_good",
        "last_raw_scrap",
        "old",
        "quality",
        "reason",
        "repairs",
        "scrap_total",
        "signals",
        "since",
        "site",
        "spec",
        "status",
        "status_seconds",
    )

    def __init__(self, spec: MachineSpec, old: MachineState, site: SiteId, events: list[Event]) -> None:
        self.spec = spec
        self.old = old
        self.site = site
        self.events = events
        self.changed = False
        self.status = old.status
        self.since = old.status_since
        self.quality = old.status_quality
        self.reason = old.status_reason
        self.status_seconds: dict[MachineStatus, float] | None = None
        self.failures = old.failures
        self.repairs = old.repairs
        self.good_total = old.good_total
        self.scrap_total = old.scrap_total
        self.last_raw_good = old.last_raw_good
        self.last_raw_scrap = old.last_raw_scrap
        self.signals: dict[SignalName, SignalValue] | None = None

    def sig(self) -> dict[SignalName, SignalValue]:
        if self.signals is None:
            self.signals = dict(self.old.signals)
        return self.signals

    def transition(
        self, to: MachineStatus, at: datetime, quality: Quality, reason: str, last_known: MachineStatus | None
    ) -> None:
        """Move to status ``to`` at ``at``; ``last_known`` is the last known status before it."""
        frm = self.status
        if to is frm:
            if quality is not self.quality or reason != self.reason:
                self.quality, self.reason, self.changed = quality, reason, True
            return
        since = self.since
        if since is not None:
            if at < since:
                at = since
            if self.status_seconds is None:
                self.status_seconds = dict(self.old.status_seconds)
            self.status_seconds[frm] = self.status_seconds.get(frm, 0.0) + (at - since).total_seconds()
        if to is MachineStatus.FAULT and last_known is not MachineStatus.FAULT:
            self.failures += 1
        elif (
            last_known is MachineStatus.FAULT
            and to is not MachineStatus.FAULT
            and to is not MachineStatus.UNKNOWN
        ):
            self.repairs += 1
        self.status, self.since, self.quality, self.reason, self.changed = to, at, quality, reason, True
        data: dict[str, Value] = {"from": frm.value, "to": to.value}
        if reason:
            data["reason"] = reason
        self.events.append(
            Event(
                ts=at,
                site=self.site,
                asset=self.spec.id,
                kind=EventKind.STATUS_CHANGE,
                message=f"{self.spec.id}: {frm.value} -> {to.value}" + (f" ({reason})" if reason else ""),
                data=FrozenDict(data),
            )
        )

    def fold(self, readings: list[Reading], ignored: _Ignored, signals: dict[str, SignalSpec]) -> None:
        """Fold ``readings`` (this machine's, in time order) in; ``signals`` maps names to the template's."""
        sigs = self.sig()
        good = Quality.GOOD
        status_kind, good_kind, scrap_kind = SignalKind.STATUS, SignalKind.GOOD_COUNT, SignalKind.SCRAP_COUNT
        codes = self.spec.template.status_codes
        applied = False
        for r in readings:
            sig = signals.get(r.signal)
            if sig is None:
                ignored.add(r, "unknown signal")
                continue
            name = sig.name
            prev = sigs.get(name)
            ts = r.ts
            if prev is not None and ts < prev.ts:
                ignored.add(r, "older than the latest sample")
                continue
            value = r.value
            quality = r.quality
            if value is None and quality is not good and prev is not None:
                value = prev.value  # keep the last known value, marked with the new quality
            sigs[name] = _tuple_new(SignalValue, (value, quality, ts, r.reason))
            applied = True
            kind = sig.kind
            if kind is status_kind:
                if (
                    quality is good
                    and self.quality is good
                    and type(value) is int
                    and codes.get(value) is self.status
                    and self.status is not MachineStatus.UNKNOWN
                    and not self.reason
                ):
                    continue  # the same known status again: nothing changes
                self._status(r, prev)
            elif kind is good_kind or kind is scrap_kind:
                if quality is good and type(value) is int:  # the common case of _counter: counting up
                    is_good = kind is good_kind
                    last = self.last_raw_good if is_good else self.last_raw_scrap
                    if last is not None and last <= value < (1 << sig.counter_bits):
                        if is_good:
                            self.good_total += value - last
                            self.last_raw_good = value
                        else:
                            self.scrap_total += value - last
                            self.last_raw_scrap = value
                        continue
                self._counter(sig, r)
        if applied:
            self.changed = True

    def _last_known(self, prev: SignalValue | None) -> MachineStatus | None:
        if self.status is not MachineStatus.UNKNOWN:
            return self.status
        if prev is None:
            return None
        code = _status_code(prev.value)
        return None if code is None else self.spec.template.status_codes.get(code)

    def _status(self, r: Reading, prev: SignalValue | None) -> None:
        last_known = self._last_known(prev)
        if r.quality is not Quality.GOOD:
            reason = r.reason or f"status signal {r.quality.value}"
            self.transition(MachineStatus.UNKNOWN, r.ts, r.quality, reason, last_known)
            return
        code = _status_code(r.value)
        status = None if code is None else self.spec.template.status_codes.get(code)
        if status is None or status is MachineStatus.UNKNOWN:
            shown = code if code is not None else repr(r.value)
            reason = f"status code {shown} not in map"
            self.sig()[SignalName(r.signal)] = SignalValue(value=r.value, quality=Quality.BAD, ts=r.ts,
                                                           reason=reason)
            self.transition(MachineStatus.UNKNOWN, r.ts, Quality.BAD, reason, last_known)
            return
        self.transition(status, r.ts, Quality.GOOD, "", last_known)

    def _counter(self, sig: SignalSpec, r: Reading) -> None:
        if r.quality is not Quality.GOOD:
            return  # BAD/STALE counter readings never touch the baseline
        bits = sig.counter_bits
        raw = _as_uint(r.value, bits)
        if raw is None:
            self.sig()[sig.name] = SignalValue(
                value=r.value, quality=Quality.BAD, ts=r.ts,
                reason=f"counter value {r.value!r} is not an unsigned {bits}-bit integer",
            )
            return
        good = sig.kind is SignalKind.GOOD_COUNT
        last = self.last_raw_good if good else self.last_raw_scrap
        delta = 0
        if last is not None:
            if raw >= last:
                delta = raw - last
            else:
                span = 1 << bits
                if last >= span - (span >> 2) and raw < (span >> 2):
                    delta = raw + span - last  # wrapped around
                else:
                    delta = raw  # PLC restart: parts counted since the restart
                    self.events.append(
                        Event(
                            ts=r.ts,
                            site=self.site,
                            asset=self.spec.id,
                            kind=EventKind.COUNTER_RESET,
                            message=f"{self.spec.id}: counter {sig.name} reset ({last} -> {raw})",
                            data=FrozenDict({"signal": str(sig.name), "from": last, "to": raw}),
                        )
                    )
        if good:
            self.last_raw_good = raw
            self.good_total += delta
        else:
            self.last_raw_scrap = raw
            self.scrap_total += delta

    def sweep(self, cutoff: datetime, threshold_s: float) -> None:
        """Mark GOOD signals sampled before ``cutoff`` (now - threshold) STALE; a stale status -> UNKNOWN."""
        current = self.signals if self.signals is not None else self.old.signals
        stale = [
            (name, sv) for name, sv in current.items() if sv.quality is Quality.GOOD and sv.ts < cutoff
        ]
        if not stale:
            return
        reason = f"not refreshed for {threshold_s:g} s"
        status_sig = self.spec.template.signal_of_kind(SignalKind.STATUS)
        signals = self.sig()
        for name, sv in stale:
            signals[name] = SignalValue(value=sv.value, quality=Quality.STALE, ts=sv.ts, reason=reason)
            if status_sig is not None and name == status_sig.name:
                went_stale = sv.ts + timedelta(seconds=threshold_s)
                self.transition(MachineStatus.UNKNOWN, went_stale, Quality.STALE, reason, self.status)
        self.changed = True

    def build(self) -> MachineState:
        old = self.old
        return MachineState(
            id=old.id,
            status=self.status,
            status_since=self.since,
            status_quality=self.quality,
            status_reason=self.reason,
            good_total=self.good_total,
            scrap_total=self.scrap_total,
            last_raw_good=self.last_raw_good,
            last_raw_scrap=self.last_raw_scrap,
            failures=self.failures,
            repairs=self.repairs,
            status_seconds=(
                old.status_seconds if self.status_seconds is None else FrozenDict(self.status_seconds)
            ),
            signals=old.signals if self.signals is None else FrozenDict(self.signals),
        )


# ---------------------------------------------------------------------------------------------------
# Inventory


def _number(value: Value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _fold_item(
    item: InventoryItemSpec,
    old: InventoryState,
    readings: list[Reading],
    site: SiteId,
    events: list[Event],
    ignored: _Ignored,
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


def _sweep_item(old: InventoryState, now: datetime, threshold_s: float) -> InventoryState | None:
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


# ---------------------------------------------------------------------------------------------------
# Sites and fleet


def _by_asset(site_id: str, readings: Iterable[Reading], ignored: _Ignored) -> dict[str, list[Reading]]:
    by_asset: dict[str, list[Reading]] = {}
    for r in readings:
        if r.site != site_id:
            ignored.add(r, "wrong site")
            continue
        group = by_asset.get(r.asset)
        if group is None:
            by_asset[r.asset] = [r]
        else:
            group.append(r)
    return by_asset


def _apply_site(
    spec: FleetSpec,
    site_spec: SiteSpec,
    site_state: SiteState,
    by_asset: dict[str, list[Reading]],
    now: datetime,
    ignored: _Ignored,
) -> tuple[SiteState, tuple[Event, ...]]:
    """Fold the site's readings, grouped by asset in order of first appearance, into ``site_state``."""
    site_id = site_spec.id
    events: list[Event] = []
    changed: set[str] = set()
    old_machines = site_state.machines
    old_inventory = site_state.inventory
    new_machines: dict[MachineId, MachineState] = {}
    new_inventory: dict[Sku, InventoryState] = {}
    working: dict[MachineId, _Machine] = {}

    machine_specs: dict[str, MachineSpec] = {m.id: m for m in site_spec.machines} if by_asset else {}
    template_signals: dict[str, dict[str, SignalSpec]] = {}
    for asset, group in by_asset.items():
        if len(group) > 1:
            group.sort(key=_by_ts)
        mspec = machine_specs.get(asset)
        if mspec is not None:
            found = old_machines.get(mspec.id)
            old_m = found or MachineState(id=mspec.id, status_since=site_state.as_of)
            w = _Machine(mspec, old_m, site_id, events)
            template = mspec.template
            signals = template_signals.get(template.id)
            if signals is None:
                signals = template_signals[template.id] = _signal_index(template)
            w.fold(group, ignored, signals)
            working[mspec.id] = w
            continue
        item = site_spec.item(asset)
        if item is not None:
            old_i = old_inventory.get(item.sku) or InventoryState(sku=item.sku)
            new_inventory[item.sku] = _fold_item(item, old_i, group, site_id, events, ignored)
            changed.add(asset)
            continue
        for r in group:
            ignored.add(r, "unknown asset")

    stale_polls = spec.stale_after_polls
    cutoffs: dict[float, datetime] = {}
    for mspec in site_spec.machines:
        threshold_s = stale_polls * mspec.poll_interval_s
        cutoff = cutoffs.get(threshold_s)
        if cutoff is None:
            cutoff = cutoffs[threshold_s] = now - timedelta(seconds=threshold_s)
        w_or_none = working.get(mspec.id)
        if w_or_none is None:
            existing = old_machines.get(mspec.id)
            if existing is None:
                existing = MachineState(id=mspec.id, status_since=site_state.as_of)
                new_machines[mspec.id] = existing
            elif not _any_stale(existing.signals, cutoff):
                continue  # untouched and still fresh: keep the very same object
            w_or_none = _Machine(mspec, existing, site_id, events)
        w_or_none.sweep(cutoff, threshold_s)
        if w_or_none.changed:
            new_machines[mspec.id] = w_or_none.build()
            changed.add(mspec.id)
    for item in site_spec.inventory:
        current = new_inventory.get(item.sku) or old_inventory.get(item.sku)
        if current is None:
            current = new_inventory[item.sku] = InventoryState(sku=item.sku)
        swept = _sweep_item(current, now, stale_polls * item.poll_interval_s)
        if swept is not None:
            new_inventory[item.sku] = swept
            changed.add(item.sku)

    machines = old_machines.merge(new_machines) if new_machines else old_machines
    inventory = old_inventory.merge(new_inventory) if new_inventory else old_inventory
    alarm_map, pending, alarm_events = alarms.evaluate_parts(
        spec, site_spec, machines, inventory, site_state.alarms, site_state.pending, now, changed=changed
    )
    recent = site_state.recent_events
    if alarm_events:
        events.extend(alarm_events)
    if events:
        events.sort(key=_by_ts)  # stable: the order within one instant is kept
        recent = recent + tuple(events)
        if len(recent) > RECENT_EVENTS:
            recent = recent[-RECENT_EVENTS:]
    state = SiteState(
        site=site_state.site,
        as_of=now,
        machines=machines,
        inventory=inventory,
        alarms=alarm_map,
        pending=pending,
        orders=site_state.orders,
        recent_events=recent,
    )
    return state, tuple(events)


def apply_site(
    spec: FleetSpec,
    site_spec: SiteSpec,
    site_state: SiteState,
    readings: Iterable[Reading],
    now: datetime,
) -> tuple[SiteState, tuple[Event, ...]]:
    """Fold ``readings`` (all of ``site_spec``'s site) into ``site_state`` at ``now``.

    The per-site core of :func:`apply`, for a collector that owns one site. Readings that cannot be
    placed are skipped (use :func:`apply_detailed` to get them counted).
    """
    ignored = _Ignored()
    return _apply_site(spec, site_spec, site_state, _by_asset(site_spec.id, readings, ignored), now, ignored)


def apply_detailed(
    spec: FleetSpec, state: TwinState, readings: Sequence[Reading], now: datetime | None = None
) -> ApplyResult:
    """Like :func:`apply`, and also report the readings that could not be applied (``ignored``).

    ``now`` defaults to the later of ``state.as_of`` and the newest reading; every site is brought
    to ``now`` (staleness, duration alarms), whether it had readings or not.
    """
    # one pass: the newest sample, and the readings grouped by site, then by asset (in order of appearance)
    latest = state.as_of
    by_site: dict[str, dict[str, list[Reading]]] = {}
    site: str | None = None
    assets: dict[str, list[Reading]] = {}
    for r in readings:
        ts = r.ts
        if ts > latest:
            latest = ts
        if r.site is not site:  # identity: a poller's readings share one site string (equality decides below)
            site = r.site
            found = by_site.get(site)
            if found is None:
                found = by_site[site] = {}
            assets = found
        group = assets.get(r.asset)
        if group is None:
            assets[r.asset] = [r]
        else:
            group.append(r)
    if now is None:
        now = latest
    ignored = _Ignored()
    sites_by_id = {s.id: s for s in spec.sites}
    for site_id in by_site:
        if site_id not in sites_by_id:  # rare: count them site by site, each in the order they came
            for r in readings:
                if r.site == site_id:
                    ignored.add(r, "unknown site")
    new_sites: dict[SiteId, SiteState] = {}
    events: list[Event] = []
    for site_spec in spec.sites:
        old = state.sites.get(site_spec.id) or initial_site_state(site_spec, state.as_of)
        new, site_events = _apply_site(spec, site_spec, old, by_site.get(site_spec.id, {}), now, ignored)
        new_sites[site_spec.id] = new
        events.extend(site_events)
    result = ignored.result()
    if result:
        log.debug("%d readings not applied in %d groups", sum(i.count for i in result), len(result))
    return ApplyResult(
        state=TwinState(fleet=state.fleet, as_of=now, sites=state.sites.merge(new_sites)),
        events=tuple(events),
        ignored=result,
    )


def apply(
    spec: FleetSpec, state: TwinState, readings: Sequence[Reading], now: datetime | None = None
) -> tuple[TwinState, tuple[Event, ...]]:
    """Fold a batch of readings into ``state``; returns the new state and what happened.

    >>> from datetime import time
    >>> from twin.spec import (MachineSpec, MachineTemplate, Role, ShiftCalendar, SignalSpec,
    ...                        SiteKind, SiteSpec)
    >>> tpl = MachineTemplate(id="cnc", role=Role.MACHINE, ideal_cycle_time_s=60.0,
    ...     status_codes=FrozenDict({1: MachineStatus.IDLE, 2: MachineStatus.RUNNING}),
    ...     signals=(SignalSpec(name="status", kind=SignalKind.STATUS),))
    >>> site = SiteSpec(id="s1", name="Site 1", kind=SiteKind.POINT_OF_DEMAND, timezone="UTC",
    ...     calendar=ShiftCalendar(shifts=()), machines=(MachineSpec(id="M1", site="s1", template=tpl),))
    >>> spec = FleetSpec(id="f", name="F", sites=(site,), templates=(tpl,))
    >>> t = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    >>> state, events = apply(spec, initial_state(spec, t),
    ...                       [Reading(ts=t, site="s1", asset="M1", signal="status", value=2)])
    >>> state.sites["s1"].machines["M1"].status.value, events[0].data["to"]
    ('running', 'running')
    """
    result = apply_detailed(spec, state, readings, now)
    return result.state, result.events


def status_known_since(events: Iterable[Event], machine: str, status: MachineStatus, since: datetime) -> datetime:
    """When ``machine``'s current ``status`` (held since ``since``) began, looking through data gaps.

    A data outage is logged as STATUS_CHANGE events into and out of UNKNOWN. Coming back in the
    status it had before the gap does not make it a new status: the time in status counts from the
    last change into ``status`` from another known status (or its first report). ``status_since``
    stays as it is (it anchors ``status_seconds``, which counts the gap as UNKNOWN); this is what a
    person reads as "OFF for 5.8 h". ``events`` are events up to ``since``, in time order; other
    machines' and other kinds are skipped. A gap in which the status changed (X -> UNKNOWN -> Y)
    starts Y at its return.

    >>> t = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    >>> def change(minutes: int, frm: str, to: str) -> Event:
    ...     return Event(ts=t + timedelta(minutes=minutes), site="s1", asset="M1", kind=EventKind.STATUS_CHANGE,
    ...                  message="", data=FrozenDict({"from": frm, "to": to}))
    >>> log = [change(0, "running", "off"), change(300, "off", "unknown"), change(310, "unknown", "off")]
    >>> status_known_since(log, "M1", MachineStatus.OFF, t + timedelta(minutes=310)) == t
    True
    """
    unknown, wanted = MachineStatus.UNKNOWN.value, status.value
    changes = [e for e in events if e.asset == machine and e.kind is EventKind.STATUS_CHANGE and e.ts <= since]
    start = since
    for e in reversed(changes):
        frm, to = e.data.get("from"), e.data.get("to")
        if to == wanted and frm == unknown:
            start = e.ts  # back from a gap (or the first report): the status may have begun earlier
        elif to == unknown and frm == wanted:
            continue  # the gap began while in this status
        elif to == wanted:
            return e.ts  # the change into it from another known status
        else:
            break
    return start


def refresh(spec: FleetSpec, state: TwinState, now: datetime) -> tuple[TwinState, tuple[Event, ...]]:
    """Bring ``state`` to ``now`` without new readings: staleness and duration alarms."""
    return apply(spec, state, (), now)
