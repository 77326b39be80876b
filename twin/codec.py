"""Convert the twin's values (readings, events, site states) to and from JSON-able dicts, exactly.

Historians store checkpoints and events as JSON; this module is the one place that knows the
layout. Round trips are exact: enums come back as the same members, ``FrozenDict`` as
``FrozenDict`` (enum keys included), datetimes as timezone-aware UTC, and a value keeps its Python
type (``int`` stays ``int``, ``bool`` stays ``bool``). Pure code: no I/O.

>>> from datetime import UTC, datetime
>>> r = Reading(ts=datetime(2026, 1, 5, 8, 0, tzinfo=UTC), site="s1", asset="P1", signal="status", value=2)
>>> reading_from_dict(reading_to_dict(r)) == r
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from twin.frozen import FrozenDict
from twin.readings import Quality, Reading, Value
from twin.spec import AlarmId, MachineId, MachineStatus, Priority, SignalName, SiteId, Sku
from twin.state import (
    AlarmState,
    Event,
    EventKind,
    InventoryState,
    MachineState,
    OpenOrder,
    Shipment,
    SignalValue,
    SiteState,
)

__all__ = [
    "dt_from_json",
    "dt_to_json",
    "event_from_dict",
    "event_to_dict",
    "reading_from_dict",
    "reading_to_dict",
    "site_state_from_dict",
    "site_state_to_dict",
    "value_from_json",
    "value_to_json",
]

Json = dict[str, Any]


def dt_to_json(ts: datetime) -> str:
    """Encode an aware datetime as ISO-8601 in UTC (``2026-01-05T08:00:00+00:00``)."""
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime cannot be encoded (got {ts!r})")
    return ts.astimezone(UTC).isoformat()


def dt_from_json(text: str) -> datetime:
    """Decode :func:`dt_to_json` text into an aware datetime in UTC."""
    ts = datetime.fromisoformat(text)
    if ts.tzinfo is None:
        raise ValueError(f"datetime without offset in stored data (got {text!r})")
    return ts.astimezone(UTC)


def _opt_dt_to_json(ts: datetime | None) -> str | None:
    return None if ts is None else dt_to_json(ts)


def _opt_dt_from_json(text: str | None) -> datetime | None:
    return None if text is None else dt_from_json(text)


def value_to_json(value: Value) -> Any:
    """Encode a reading value; floats JSON cannot hold (NaN, ±inf) become tagged objects."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    return value


def value_from_json(data: Any) -> Value:
    """Decode what :func:`value_to_json` made."""
    if isinstance(data, dict):
        return float(data["float"])
    if data is None or isinstance(data, bool | int | float | str):
        return data
    raise ValueError(f"not a reading value (got {data!r})")


# --- readings and events -------------------------------------------------------------------------


def reading_to_dict(r: Reading) -> Json:
    return {
        "ts": dt_to_json(r.ts),
        "site": r.site,
        "asset": r.asset,
        "signal": r.signal,
        "value": value_to_json(r.value),
        "quality": r.quality.value,
        "reason": r.reason,
    }


def reading_from_dict(d: Mapping[str, Any]) -> Reading:
    return Reading(
        ts=dt_from_json(d["ts"]),
        site=d["site"],
        asset=d["asset"],
        signal=d["signal"],
        value=value_from_json(d["value"]),
        quality=Quality(d["quality"]),
        reason=d.get("reason", ""),
    )


def _values_to_json(data: Mapping[str, Value]) -> Json:
    return {k: value_to_json(v) for k, v in data.items()}


def _values_from_json(data: Mapping[str, Any]) -> FrozenDict[str, Value]:
    return FrozenDict({k: value_from_json(v) for k, v in data.items()})


def event_to_dict(e: Event) -> Json:
    return {
        "ts": dt_to_json(e.ts),
        "site": e.site,
        "asset": e.asset,
        "kind": e.kind.value,
        "message": e.message,
        "data": _values_to_json(e.data),
    }


def event_from_dict(d: Mapping[str, Any]) -> Event:
    return Event(
        ts=dt_from_json(d["ts"]),
        site=SiteId(d["site"]),
        asset=d["asset"],
        kind=EventKind(d["kind"]),
        message=d["message"],
        data=_values_from_json(d.get("data", {})),
    )


# --- site state ----------------------------------------------------------------------------------


def _signal_to_dict(s: SignalValue) -> Json:
    return {
        "value": value_to_json(s.value),
        "quality": s.quality.value,
        "ts": dt_to_json(s.ts),
        "reason": s.reason,
    }


def _signal_from_dict(d: Mapping[str, Any]) -> SignalValue:
    return SignalValue(
        value=value_from_json(d["value"]),
        quality=Quality(d["quality"]),
        ts=dt_from_json(d["ts"]),
        reason=d["reason"],
    )


def _machine_to_dict(m: MachineState) -> Json:
    return {
        "id": m.id,
        "status": m.status.value,
        "status_since": _opt_dt_to_json(m.status_since),
        "status_quality": m.status_quality.value,
        "status_reason": m.status_reason,
        "good_total": m.good_total,
        "scrap_total": m.scrap_total,
        "last_raw_good": m.last_raw_good,
        "last_raw_scrap": m.last_raw_scrap,
        "failures": m.failures,
        "repairs": m.repairs,
        "status_seconds": [[k.value, v] for k, v in m.status_seconds.items()],
        "signals": {k: _signal_to_dict(v) for k, v in m.signals.items()},
        "counted_at": _opt_dt_to_json(m.counted_at),
        "running_s_at_count": m.running_s_at_count,
    }


def _machine_from_dict(d: Mapping[str, Any]) -> MachineState:
    return MachineState(
        id=MachineId(d["id"]),
        status=MachineStatus(d["status"]),
        status_since=_opt_dt_from_json(d["status_since"]),
        status_quality=Quality(d["status_quality"]),
        status_reason=d["status_reason"],
        good_total=d["good_total"],
        scrap_total=d["scrap_total"],
        last_raw_good=d["last_raw_good"],
        last_raw_scrap=d["last_raw_scrap"],
        failures=d["failures"],
        repairs=d["repairs"],
        status_seconds=FrozenDict({MachineStatus(k): v for k, v in d["status_seconds"]}),
        signals=FrozenDict({SignalName(k): _signal_from_dict(v) for k, v in d["signals"].items()}),
        counted_at=_opt_dt_from_json(d.get("counted_at")),  # absent in checkpoints written before it
        running_s_at_count=d.get("running_s_at_count"),
    )


def _shipment_to_dict(s: Shipment) -> Json:
    return {"sku": s.sku, "qty": s.qty, "eta": dt_to_json(s.eta), "id": s.id, "origin": s.origin,
            "planned_eta": _opt_dt_to_json(s.planned_eta), "version": s.version}


def _shipment_from_dict(d: Mapping[str, Any]) -> Shipment:
    return Shipment(sku=Sku(d["sku"]), qty=d["qty"], eta=dt_from_json(d["eta"]), id=d["id"],
                    origin=d.get("origin", ""), planned_eta=_opt_dt_from_json(d.get("planned_eta")),
                    version=d.get("version", 0))


def _inventory_to_dict(i: InventoryState) -> Json:
    return {
        "sku": i.sku,
        "on_hand": value_to_json(i.on_hand),
        "quality": i.quality.value,
        "ts": _opt_dt_to_json(i.ts),
        "reason": i.reason,
        "in_transit": [_shipment_to_dict(s) for s in i.in_transit],
        "consumed_total": value_to_json(i.consumed_total),
        "received_total": value_to_json(i.received_total),
    }


def _inventory_from_dict(d: Mapping[str, Any]) -> InventoryState:
    return InventoryState(
        sku=Sku(d["sku"]),
        on_hand=cast("float | None", value_from_json(d["on_hand"])),
        quality=Quality(d["quality"]),
        ts=_opt_dt_from_json(d["ts"]),
        reason=d["reason"],
        in_transit=tuple(_shipment_from_dict(s) for s in d["in_transit"]),
        consumed_total=cast(float, value_from_json(d["consumed_total"])),
        received_total=cast(float, value_from_json(d["received_total"])),
    )


def _alarm_to_dict(a: AlarmState) -> Json:
    return {
        "rule": a.rule,
        "site": a.site,
        "asset": a.asset,
        "priority": a.priority.value,
        "message": a.message,
        "active": a.active,
        "raised_at": dt_to_json(a.raised_at),
        "value": value_to_json(a.value),
        "cleared_at": _opt_dt_to_json(a.cleared_at),
        "acknowledged": a.acknowledged,
        "acked_by": a.acked_by,
        "acked_at": _opt_dt_to_json(a.acked_at),
        "ack_comment": a.ack_comment,
    }


def _alarm_from_dict(d: Mapping[str, Any]) -> AlarmState:
    return AlarmState(
        rule=AlarmId(d["rule"]),
        site=SiteId(d["site"]),
        asset=d["asset"],
        priority=Priority(d["priority"]),
        message=d["message"],
        active=d["active"],
        raised_at=dt_from_json(d["raised_at"]),
        value=value_from_json(d["value"]),
        cleared_at=_opt_dt_from_json(d["cleared_at"]),
        acknowledged=d["acknowledged"],
        acked_by=d["acked_by"],
        acked_at=_opt_dt_from_json(d["acked_at"]),
        ack_comment=d["ack_comment"],
    )


def _order_to_dict(o: OpenOrder) -> Json:
    return {
        "id": o.id,
        "product": o.product,
        "qty": o.qty,
        "created": dt_to_json(o.created),
        "due": dt_to_json(o.due),
        "done_qty": o.done_qty,
        "operation": o.operation,
        "done_by_step": list(o.done_by_step),
        "version": o.version,
    }


def _order_from_dict(d: Mapping[str, Any]) -> OpenOrder:
    return OpenOrder(
        id=d["id"],
        product=d["product"],
        qty=d["qty"],
        created=dt_from_json(d["created"]),
        due=dt_from_json(d["due"]),
        done_qty=d["done_qty"],
        operation=d.get("operation", ""),
        done_by_step=tuple(d.get("done_by_step", ())),
        version=d.get("version", 0),
    )


def site_state_to_dict(s: SiteState) -> Json:
    """Encode a ``SiteState`` as a JSON-able dict (the historian's checkpoint format, version 1)."""
    return {
        "v": 1,
        "site": s.site,
        "as_of": dt_to_json(s.as_of),
        "machines": {k: _machine_to_dict(v) for k, v in s.machines.items()},
        "inventory": {k: _inventory_to_dict(v) for k, v in s.inventory.items()},
        "alarms": {k: _alarm_to_dict(v) for k, v in s.alarms.items()},
        "pending": {k: dt_to_json(v) for k, v in s.pending.items()},
        "orders": [_order_to_dict(o) for o in s.orders],
        "recent_events": [event_to_dict(e) for e in s.recent_events],
    }


def site_state_from_dict(d: Mapping[str, Any]) -> SiteState:
    """Decode what :func:`site_state_to_dict` made."""
    if d.get("v") != 1:
        raise ValueError(f"unknown checkpoint format version (got {d.get('v')!r})")
    return SiteState(
        site=SiteId(d["site"]),
        as_of=dt_from_json(d["as_of"]),
        machines=FrozenDict({MachineId(k): _machine_from_dict(v) for k, v in d["machines"].items()}),
        inventory=FrozenDict({Sku(k): _inventory_from_dict(v) for k, v in d["inventory"].items()}),
        alarms=FrozenDict({k: _alarm_from_dict(v) for k, v in d["alarms"].items()}),
        pending=FrozenDict({k: dt_from_json(v) for k, v in d["pending"].items()}),
        orders=tuple(_order_from_dict(o) for o in d["orders"]),
        recent_events=tuple(event_from_dict(e) for e in d["recent_events"]),
    )
