"""Operator events sent to the collector (alarm acknowledgements): decoded and checked, one reason per bad one.

The body of ``POST /api/v1/events`` is one JSON object or an array of them, each an event in the
layout of ``twin.codec.event_to_dict``::

    {"ts": "2026-03-02T08:00:00+00:00", "site": "pod-berlin", "asset": "P1",
     "kind": "alarm_acknowledged", "message": "acknowledged by ana: fan replaced",
     "data": {"rule": "hot", "key": "hot:P1", "user": "ana", "comment": "fan replaced", "priority": 3}}

Only ``alarm_acknowledged`` is an operator event today. Everything is read within limits and an
event over one is rejected by itself with the reason (the others are taken): at most
``MAX_EVENTS_PER_REQUEST`` events, a site of the fleet, names of at most ``MAX_NAME_CHARS``, a
comment of at most ``MAX_COMMENT_CHARS`` (the dashboard's own limit), a message of at most
``MAX_MESSAGE_CHARS``, a ``key`` that is ``rule:asset``, a time with an offset and not more than
``MAX_AHEAD`` ahead of the collector's clock, valid Unicode text (SQLite cannot store a lone
surrogate). The shape is checked by a pydantic model, the references to the fleet after it; a
reason names at most three problems of its event.

>>> from datetime import UTC, datetime
>>> from twin.spec import FleetSpec
>>> body = b'{"ts": "2026-03-02T08:00:00Z", "site": "s", "asset": "P1", "kind": "alarm_raised"}'
>>> fleet = FleetSpec(id="f", name="f", sites=(), templates=())
>>> parse_events(body, fleet, datetime(2026, 3, 2, 8, tzinfo=UTC)).rejected[0].reason
"kind: Input should be 'alarm_acknowledged'; message: Field required; data: Field required"
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from twin import codec
from twin.limits import MAX_COMMENT_CHARS
from twin.spec import FleetSpec, Priority
from twin.state import Event
from twin.validation import problems

__all__ = [
    "MAX_AHEAD",
    "MAX_COMMENT_CHARS",
    "MAX_EVENTS_PER_REQUEST",
    "MAX_MESSAGE_CHARS",
    "MAX_NAME_CHARS",
    "AckData",
    "EventReject",
    "OperatorEvent",
    "ParsedEvents",
    "parse_events",
]

MAX_EVENTS_PER_REQUEST = 1000  # a dashboard sends one acknowledgement per alarm selected
MAX_NAME_CHARS = 200  # a site, asset, rule or user name
MAX_MESSAGE_CHARS = 1000  # "acknowledged by USER: COMMENT" and then some
MAX_AHEAD = timedelta(minutes=5)  # clocks of the dashboard's and the collector's hosts differ a little
_MAX_INT_DIGITS = 20  # longer JSON integers are never converted (int() of 5,000 digits is slow, then refused)

_Name = Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME_CHARS)]


class _TooLong:
    """A JSON integer of too many digits, kept unconverted: its event is rejected as not a whole number."""

    __slots__ = ()


def _json_int(text: str) -> int | _TooLong:
    return _TooLong() if len(text) - text.startswith("-") > _MAX_INT_DIGITS else int(text)


class AckData(BaseModel):
    """The ``data`` of an acknowledgement as sent: rule, key, user, comment, priority."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: _Name
    key: Annotated[StrictStr, Field(min_length=3, max_length=2 * MAX_NAME_CHARS + 1)]
    user: _Name
    comment: Annotated[StrictStr, Field(max_length=MAX_COMMENT_CHARS)] = ""
    priority: StrictInt | None = None


class OperatorEvent(BaseModel):
    """An operator event as sent (``twin.codec.event_to_dict``'s layout)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: Annotated[StrictStr, Field(min_length=1, max_length=64)]  # parsed by twin.codec, as stored
    site: _Name
    asset: _Name
    kind: Literal["alarm_acknowledged"]
    message: Annotated[StrictStr, Field(max_length=MAX_MESSAGE_CHARS)]
    data: AckData


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
    sites: set[str] = {s.id for s in fleet.sites}
    events: list[Event] = []
    rejected: list[EventReject] = []
    for i, obj in enumerate(doc):
        reason = _check(obj, sites, now)
        if reason:
            rejected.append(EventReject(index=i, reason=reason))
        else:
            events.append(codec.event_from_dict(obj))
    return ParsedEvents(events=tuple(events), rejected=tuple(rejected))


def _check(obj: object, sites: set[str], now: datetime) -> str:
    """Why ``obj`` is not an operator event to record ("" when it is one)."""
    if not isinstance(obj, dict):
        return f"an event is a JSON object (got {_json_type(obj)})"
    try:
        event = OperatorEvent.model_validate(obj)
    except ValidationError as exc:
        return "; ".join(str(problem) for problem in problems(exc)[:3])
    try:
        ts = codec.dt_from_json(event.ts)
    except ValueError:
        return f"ts must be an ISO 8601 time with an offset, e.g. 2026-03-02T08:00:00Z (got {event.ts[:64]!r})"
    if event.site not in sites:
        return f"unknown site {event.site[:100]!r}"
    if event.data.key != f"{event.data.rule}:{event.asset}":
        return f"data.key must be RULE:ASSET, here {event.data.rule[:100]}:{event.asset[:100]}"
    if event.data.priority is not None and event.data.priority not in {int(p) for p in Priority}:
        return f"data.priority must be one of {sorted(int(p) for p in Priority)} (got {event.data.priority})"
    if ts - now > MAX_AHEAD:
        return (f"ts is {(ts - now).total_seconds():,.0f} s ahead of the collector's clock "
                f"(at most {MAX_AHEAD.total_seconds():.0f} s)")
    return ""



def _json_type(obj: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if obj is None else next((n for t, n in names.items() if isinstance(obj, t)), "a number")
