"""Operator events sent to the collector: decoded and checked against the plant, one reason per bad one.

The body of ``POST /api/v1/events`` is one JSON object or an array of them, each an event in the
layout of ``twin.codec.event_to_dict``. Three kinds are operator events:

* ``alarm_acknowledged``: ``data`` = rule, key (``rule:asset``), user, comment, priority::

    {"ts": "2026-03-02T08:00:00+00:00", "site": "pod-berlin", "asset": "P1",
     "kind": "alarm_acknowledged", "message": "acknowledged by ana: fan replaced",
     "data": {"rule": "hot", "key": "hot:P1", "user": "ana", "comment": "fan replaced", "priority": 3}}

* ``stop_classified``: a person gives a stop of machine ``asset`` its reason; ``data`` = start (the
  stop's start, ISO 8601 with an offset), reason (an id of the site's downtime tree), user, comment;
* ``alarm_shelving``: ``data`` = rule, key, change (``shelved``, ``unshelved``, ``out_of_service``,
  ``in_service``), user, comment (required: ISA-18.2 wants the why), and for ``shelved`` the
  ``shelve`` kind (``one_shot`` or ``timed``) with, when timed, ``duration_s`` (more than 0, at most
  ``twin.alarm_shelving.MAX_SHELVE_S``).

Everything is read within limits and an event over one is rejected by itself with the reason (the
others are taken): at most ``MAX_EVENTS_PER_REQUEST`` events, a site of the fleet, names of at most
``MAX_NAME_CHARS``, a comment of at most ``MAX_COMMENT_CHARS`` (the dashboard's own limit), a
message of at most ``MAX_MESSAGE_CHARS``, a ``key`` that is ``rule:asset``, a time with an offset
and not more than ``MAX_AHEAD`` ahead of the collector's clock, valid Unicode text (SQLite cannot
store a lone surrogate). A classification names a machine of the site and a reason of its tree; a
shelving names an alarm rule that watches that asset. Whether the alarm is shelved already is not
the collector's to judge: the journal (``twin.alarm_shelving.shelving_journal``) keeps each change and says
which it could not apply. The shape is checked by pydantic models, the references to the fleet
after them; a reason names at most three problems of its event.

>>> from datetime import UTC, datetime
>>> from twin.spec import FleetSpec
>>> body = b'{"ts": "2026-03-02T08:00:00Z", "site": "s", "asset": "P1", "kind": "alarm_raised"}'
>>> fleet = FleetSpec(id="f", name="f", sites=(), templates=())
>>> for problem in parse_events(body, fleet, datetime(2026, 3, 2, 8, tzinfo=UTC)).rejected[0].reason.split("; "):
...     print(problem)
kind: Input should be 'alarm_acknowledged', 'stop_classified' or 'alarm_shelving' (got 'alarm_raised')
message: required key is missing
data: required key is missing
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError

from twin import codec
from twin.alarm_shelving import MAX_SHELVE_S
from twin.limits import MAX_COMMENT_CHARS
from twin.spec import AlarmKind, FleetSpec, Priority, SiteSpec
from twin.state import Event
from twin.validation import problems

__all__ = [
    "MAX_AHEAD",
    "MAX_COMMENT_CHARS",
    "MAX_EVENTS_PER_REQUEST",
    "MAX_MESSAGE_CHARS",
    "MAX_NAME_CHARS",
    "AckData",
    "ClassifyData",
    "EventReject",
    "OperatorEvent",
    "ParsedEvents",
    "ShelvingData",
    "parse_events",
]

MAX_EVENTS_PER_REQUEST = 1000  # a dashboard sends one acknowledgement per alarm selected
MAX_NAME_CHARS = 200  # a site, asset, rule, reason or user name
MAX_MESSAGE_CHARS = 1000  # "acknowledged by USER: COMMENT" and then some
MAX_AHEAD = timedelta(minutes=5)  # clocks of the dashboard's and the collector's hosts differ a little
_MAX_INT_DIGITS = 20  # longer JSON integers are never converted (int() of 5,000 digits is slow, then refused)

_Name = Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME_CHARS)]
_Key = Annotated[StrictStr, Field(min_length=3, max_length=2 * MAX_NAME_CHARS + 1)]
_Comment = Annotated[StrictStr, Field(max_length=MAX_COMMENT_CHARS)]
_Why = Annotated[StrictStr, Field(min_length=1, max_length=MAX_COMMENT_CHARS)]


class _TooLong:
    """A JSON integer of too many digits, kept unconverted: its event is rejected as not a whole number."""

    __slots__ = ()


def _json_int(text: str) -> int | _TooLong:
    return _TooLong() if len(text) - text.startswith("-") > _MAX_INT_DIGITS else int(text)


class AckData(BaseModel):
    """The ``data`` of an acknowledgement as sent: rule, key, user, comment, priority."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: _Name
    key: _Key
    user: _Name
    comment: _Comment = ""
    priority: StrictInt | None = None


class ClassifyData(BaseModel):
    """The ``data`` of a stop's classification: the stop's start, the reason id, who and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    reason: _Name
    user: _Name
    comment: _Comment = ""


class ShelvingData(BaseModel):
    """The ``data`` of a shelving change: the alarm, the change, its kind and duration, who and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: _Name
    key: _Key
    change: Literal["shelved", "unshelved", "out_of_service", "in_service"]
    shelve: Literal["one_shot", "timed"] | None = None
    duration_s: StrictFloat | StrictInt | None = None
    user: _Name
    comment: _Why
    priority: StrictInt | None = None


_DATA: dict[str, type[BaseModel]] = {"alarm_acknowledged": AckData, "stop_classified": ClassifyData,
                                     "alarm_shelving": ShelvingData}


class OperatorEvent(BaseModel):
    """An operator event as sent (``twin.codec.event_to_dict``'s layout); ``data`` is checked by its kind's model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: Annotated[StrictStr, Field(min_length=1, max_length=64)]  # parsed by twin.codec, as stored
    site: _Name
    asset: _Name
    kind: Literal["alarm_acknowledged", "stop_classified", "alarm_shelving"]
    message: Annotated[StrictStr, Field(max_length=MAX_MESSAGE_CHARS)]
    data: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class EventReject:
    """An element of the body not taken, and why (``index`` counts from 0)."""

    index: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedEvents:
    """The events of a body to record, and the elements rejected."""

    events: tuple[Event, ...] = ()
    rejected: tuple[EventReject, ...] = field(default_factory=tuple)


def parse_events(body: bytes, fleet: FleetSpec, now: datetime) -> ParsedEvents:
    """The operator events of a request body (see the module docstring); ``ValueError`` if it is not JSON.

    ``now`` is the collector's time: an event further than ``MAX_AHEAD`` after it is rejected.
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"body is not JSON: not UTF-8 text (byte {exc.start})") from None
    try:
        doc = json.loads(text, parse_int=_json_int)
    except json.JSONDecodeError as exc:
        raise ValueError(f"body is not JSON: {exc}") from None
    except (RecursionError, ValueError) as exc:  # nested deeper than the stack: no event is like that
        raise ValueError(f"body is not JSON: {type(exc).__name__}") from None
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise ValueError(f"body must be a JSON object or an array of objects (got {type(doc).__name__})")
    if len(doc) > MAX_EVENTS_PER_REQUEST:
        raise ValueError(f"{len(doc):,} events in one request (at most {MAX_EVENTS_PER_REQUEST:,})")
    sites: dict[str, SiteSpec] = {s.id: s for s in fleet.sites}
    events: list[Event] = []
    rejected: list[EventReject] = []
    for i, obj in enumerate(doc):
        reason = _check(obj, fleet, sites, now)
        if reason:
            rejected.append(EventReject(index=i, reason=reason))
        else:
            events.append(codec.event_from_dict(obj))
    return ParsedEvents(events=tuple(events), rejected=tuple(rejected))


def _check(obj: object, fleet: FleetSpec, sites: dict[str, SiteSpec], now: datetime) -> str:
    """Why ``obj`` is not an operator event to record ("" when it is one)."""
    if not isinstance(obj, dict):
        return f"an event is a JSON object (got {_json_type(obj)})"
    try:
        event = OperatorEvent.model_validate(obj)
    except ValidationError as exc:
        return "; ".join(str(problem) for problem in problems(exc)[:3])
    try:
        data = _DATA[event.kind].model_validate(event.data)
    except ValidationError as exc:
        return "; ".join(str(problem) for problem in problems(exc, "data")[:3])
    try:
        ts = codec.dt_from_json(event.ts)
    except ValueError:
        return f"ts must be an ISO 8601 time with an offset, e.g. 2026-03-02T08:00:00Z (got {event.ts[:64]!r})"
    site = sites.get(event.site)
    if site is None:
        return f"unknown site {event.site[:100]!r}"
    if ts - now > MAX_AHEAD:
        return (f"ts is {(ts - now).total_seconds():,.0f} s ahead of the collector's clock "
                f"(at most {MAX_AHEAD.total_seconds():.0f} s)")
    if isinstance(data, ClassifyData):
        return _check_classify(data, event.asset, site, ts)
    assert isinstance(data, AckData | ShelvingData)
    if data.key != f"{data.rule}:{event.asset}":
        return f"data.key must be RULE:ASSET, here {data.rule[:100]}:{event.asset[:100]}"
    if data.priority is not None and data.priority not in {int(p) for p in Priority}:
        return f"data.priority must be one of {sorted(int(p) for p in Priority)} (got {data.priority})"
    if isinstance(data, ShelvingData):
        return _check_shelving(data, event.asset, fleet, site)
    return ""


def _check_classify(data: ClassifyData, asset: str, site: SiteSpec, ts: datetime) -> str:
    if site.machine(asset) is None:
        known = ", ".join(m.id for m in site.machines)
        return f"asset: no machine {asset[:100]!r} at site {site.id!r} (machines: {known})"
    if site.downtime.reason(data.reason) is None:
        known = ", ".join(r.id for r in site.downtime.reasons)
        return f"data.reason: {data.reason[:100]!r} is not a reason of the downtime tree of site {site.id!r} ({known})"
    try:
        start = codec.dt_from_json(data.start)
    except ValueError:
        return f"data.start must be an ISO 8601 time with an offset (got {data.start[:64]!r})"
    if start > ts:
        return (f"data.start {start.isoformat()} is after the event's time {ts.isoformat()}: "
                "a stop is classified once begun")
    return ""


def _check_shelving(data: ShelvingData, asset: str, fleet: FleetSpec, site: SiteSpec) -> str:
    rule = next((r for r in fleet.alarms if r.id == data.rule), None)
    if rule is None:
        known = ", ".join(r.id for r in fleet.alarms) or "none"
        return f"data.rule: no alarm rule {data.rule[:100]!r} (rules: {known})"
    machine, item = site.machine(asset), site.item(asset)
    watches = ((machine is not None and rule.applies_to_machine(machine))
               or (item is not None and rule.applies_to_item(site.id, item))
               # a late-order alarm's asset is the order: orders are records, not in the plant file
               or (rule.kind is AlarmKind.LATE_ORDER_RISK and machine is None and item is None
                   and (not rule.sites or site.id in rule.sites)))
    if not watches:
        return f"alarm rule {rule.id!r} does not watch {asset[:100]!r} at site {site.id!r}: no such alarm"
    if data.change != "shelved":
        if data.shelve is not None or data.duration_s is not None:
            return f"data.shelve and data.duration_s belong to a change 'shelved' only (got {data.change!r})"
        return ""
    if data.shelve is None:
        return "data.shelve: a shelving says how: 'one_shot' or 'timed'"
    if data.shelve == "one_shot":
        if data.duration_s is not None:
            return (f"data.duration_s: a one-shot shelve lasts until the alarm returns to normal, no duration "
                    f"(got {data.duration_s})")
        return ""
    if data.duration_s is None or not 0 < data.duration_s <= MAX_SHELVE_S:
        return (f"data.duration_s: a timed shelve lasts more than 0 and at most {MAX_SHELVE_S:g} s "
                f"(got {data.duration_s})")
    return ""


def _json_type(obj: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if obj is None else next((n for t, n in names.items() if isinstance(obj, t)), "a number")
