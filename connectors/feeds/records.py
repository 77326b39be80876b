"""One feed record checked into a ``twin.business`` record, and the ledger's JSON form of records.

A record is a pydantic model whose validators hold the feed's rules (CSV values are text to parse,
JSON values must have their type; see :mod:`connectors.feeds.parse` for the fields); the first
problem, in the order the fields are checked, is the record's one reason (``RecordError``).
Checked through :mod:`twin.validation`, like every other input.

>>> parse_record({"id": "s1", "version": 1, "site": "s", "sku": "k", "qty": "2", "eta": "2026-03-02T08:00Z"},
...              RecordKind.SHIPMENT)
Traceback (most recent call last):
  ...
connectors.feeds.records.RecordError: qty must be a number (got str '2')
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError, ValidationInfo

from twin.business import BusinessRecord, OrderRecord, OrderStatus, RecordKind, ShipmentRecord, ShipmentStatus
from twin.validation import Wording, problems

__all__ = [
    "MAX_INT_DIGITS",
    "MAX_STEPS",
    "MAX_VERSION",
    "BigInt",
    "RecordError",
    "excerpt",
    "parse_record",
    "record_from_json",
    "record_to_json",
]

MAX_INT_DIGITS = 20  # longest JSON integer read as a number (2^63 has 19 digits)
MAX_VERSION = 2**63 - 1  # the ledger keeps versions as SQLite's signed 64-bit integers
_MAX_WHOLE = 2**63 - 1
MAX_STEPS = 64  # longest done_by_step list (routing steps of one product)
_EXCERPT = 200  # characters of a value or line quoted in a reason or a rejects log


class RecordError(ValueError):
    """A record that cannot be read; the message is the reason shown to the sender."""


def excerpt(text: str, limit: int = _EXCERPT) -> str:
    r"""At most ``limit`` characters of ``text``, control characters escaped, with the length if cut.

    >>> excerpt("a\x1b[31mb" + "x" * 300, 12)
    'a\\x1b[31mbxx... (307 characters)'
    """
    head = text[:limit]
    if not head.isprintable():
        head = "".join(c if c.isprintable() else repr(c)[1:-1] for c in head)[:limit]
    return head if len(text) <= limit else f"{head}... ({len(text)} characters)"


class BigInt:
    """A JSON integer with too many digits, kept unconverted so that only its record is rejected."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"an integer of {self.digits} digits"


def _describe(value: object) -> str:
    if isinstance(value, BigInt):
        return repr(value)
    return f"{type(value).__name__} {excerpt(repr(value))}"


# Field checkers: CSV values are text to parse, JSON values must have their type (``info.context``).
# Each raises ``RecordError`` (a ValueError) with the reason; pydantic collects it under the field.


def _in_text(info: ValidationInfo) -> bool:
    """Whether the record is a CSV row (text values) rather than a JSON object."""
    return info.context is not None and bool(info.context["text"])


def _text_of(value: object, name: str, required: bool) -> str:
    if not isinstance(value, str):
        raise RecordError(f"{name} must be text (got {_describe(value)})")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate (JSON "\ud800"): no text can hold it
            raise RecordError(f"{name} is not valid Unicode text (a lone surrogate at character "
                              f"{exc.start})") from None
    if required and not value.strip():
        raise RecordError(f"{name} is empty")
    return value.strip()


def _whole_of(value: object, name: str, text: bool) -> int:
    if text and isinstance(value, str):
        digits = value.strip()
        if len(digits) > MAX_INT_DIGITS:
            raise RecordError(f"{name} must be a whole number of at most {MAX_INT_DIGITS} digits "
                              f"(got {len(digits)} characters)")
        try:
            number = int(digits)
        except ValueError:
            raise RecordError(f"{name} must be a whole number (got {excerpt(repr(value))})") from None
    elif isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"{name} must be a whole number (got {_describe(value)})")
    else:
        number = value
    if not -_MAX_WHOLE <= number <= _MAX_WHOLE:
        raise RecordError(f"{name} must be within +-(2^63 - 1) (got {excerpt(str(number), 30)})")
    return number


def _time_of(value: object, name: str) -> datetime:
    if not isinstance(value, str):
        raise RecordError(f"{name} must be an ISO 8601 timestamp text (got {_describe(value)})")
    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError:
        raise RecordError(f"{name} is not an ISO 8601 timestamp (got {excerpt(repr(value))})") from None
    if t.tzinfo is None or t.utcoffset() is None:
        raise RecordError(f"{name} has no time zone: add an offset or Z (got {excerpt(repr(value))})")
    return t.astimezone(UTC)


def _required_text(value: object, info: ValidationInfo) -> str:
    return _text_of(value, str(info.field_name), True)


def _optional_text(value: object, info: ValidationInfo) -> str:
    return _text_of(value, str(info.field_name), False)


def _whole(value: object, info: ValidationInfo) -> int:
    return _whole_of(value, str(info.field_name), _in_text(info))


def _time(value: object, info: ValidationInfo) -> datetime:
    return _time_of(value, str(info.field_name))


def _number(value: object, info: ValidationInfo) -> float:
    name = info.field_name
    if _in_text(info) and isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise RecordError(f"{name} must be a number (got {excerpt(repr(value))})") from None
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"{name} must be a number (got {_describe(value)})")
    else:
        number = float(value)
    if not math.isfinite(number):
        raise RecordError(f"{name} must be a finite number (got {excerpt(repr(value))})")
    return number


def _counts(value: object, info: ValidationInfo) -> tuple[int, ...]:
    """An optional list of whole numbers: a JSON array, or in CSV text separated by ``|``."""
    name = info.field_name
    if value == "":
        return ()
    if _in_text(info) and isinstance(value, str):
        items: list[object] = [v for v in value.split("|")]
    elif isinstance(value, list):
        items = list(value)
    else:
        raise RecordError(f"{name} must be a list of whole numbers (got {_describe(value)})")
    if len(items) > MAX_STEPS:
        raise RecordError(f"{name} may hold at most {MAX_STEPS} counts (got {len(items)})")
    out: list[int] = []
    for v in items:
        if isinstance(v, str) and v.strip().isdigit() and len(v.strip()) <= 18:
            out.append(int(v.strip()))
        elif isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63:
            out.append(v)
        else:
            raise RecordError(f"{name} must be a list of whole numbers >= 0 (got {excerpt(repr(value))})")
    return tuple(out)


def _version(value: tuple[object, object], info: ValidationInfo) -> int:
    """``(version, updated_at)`` as given (None: absent): one of the two, as an integer version."""
    version, updated_at = value
    if version is not None and updated_at is not None:
        raise RecordError("give either version or updated_at, not both")
    if updated_at is not None:
        return int(_time_of(updated_at, "updated_at").timestamp() * 1000)
    if version is None:
        raise RecordError("missing field 'version' (or 'updated_at')")
    v = _whole_of(version, "version", _in_text(info))
    if not 0 <= v <= MAX_VERSION:
        raise RecordError(f"version must be within 0..2^63-1 (got {v})")
    return v


def _status(kind: type[OrderStatus] | type[ShipmentStatus]) -> PlainValidator:
    *first, last = (s.value for s in kind)
    names = f"{', '.join(first)} or {last}"

    def check(value: object, info: ValidationInfo) -> OrderStatus | ShipmentStatus:
        text = _text_of(value, "status", False)
        try:
            return kind(text)
        except ValueError:
            raise RecordError(f"status must be {names} (got {excerpt(repr(text))})") from None

    return PlainValidator(check)


_Text = Annotated[str, PlainValidator(_required_text)]
_OptionalText = Annotated[str, PlainValidator(_optional_text)]
_Whole = Annotated[int, PlainValidator(_whole)]
_Time = Annotated[datetime, PlainValidator(_time)]
_Version = Annotated[int, PlainValidator(_version)]


class _Record(BaseModel):
    """The fields every record has, in the order they are checked (the first problem is the reason)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: _Text
    version: _Version
    site: _Text


class _Order(_Record):
    status: Annotated[OrderStatus, _status(OrderStatus)] = OrderStatus.OPEN
    created: _Time
    due: _Time
    product: _Text
    qty: _Whole
    done_qty: _Whole = 0
    operation: _OptionalText = ""
    done_by_step: Annotated[tuple[int, ...], PlainValidator(_counts)] = ()


class _Shipment(_Record):
    status: Annotated[ShipmentStatus, _status(ShipmentStatus)] = ShipmentStatus.IN_TRANSIT
    eta: _Time
    sku: _Text
    qty: Annotated[float, PlainValidator(_number)]
    origin: _OptionalText = ""
    planned_eta: _Time | None = None


_FIELDS = {kind: frozenset(("kind", "updated_at", *model.model_fields))
           for kind, model in ((RecordKind.ORDER, _Order), (RecordKind.SHIPMENT, _Shipment))}
_FEED = Wording(missing="missing field {key!r}")
_TEXT, _JSON = {"text": True}, {"text": False}


def parse_record(raw: object, kind: RecordKind | None, *, text: bool = False) -> BusinessRecord:
    """One record from a decoded JSON object (``text=False``) or a CSV row (``text=True``).

    ``kind`` is what the file name or path fixes (None: the record's ``kind`` field decides).
    Raises ``RecordError`` with the reason.
    """
    if not isinstance(raw, Mapping):
        raise RecordError(f"not a JSON object (got {type(raw).__name__})")
    fields = {k: v for k, v in raw.items() if not (text and v == "")}  # an empty CSV cell is absent
    given = fields.get("kind")
    given = _text_of(given, "kind", False) if given is not None else ""
    if given:
        try:
            own = RecordKind(given)
        except ValueError:
            raise RecordError(f"kind must be 'order' or 'shipment' (got {excerpt(repr(given))})") from None
        if kind is not None and own is not kind:
            raise RecordError(f"kind {own.value!r} sent to the {kind.value}s feed")
        kind = own
    if kind is None:
        raise RecordError("missing field 'kind' ('order' or 'shipment'): the file name does not say")
    unknown = sorted(str(k) for k in fields if k not in _FIELDS[kind])
    if unknown:
        known = ", ".join(sorted(_FIELDS[kind]))
        raise RecordError(f"unknown field(s) {excerpt(', '.join(map(repr, unknown)))} (known: {known})")
    data = {k: v for k, v in fields.items() if v is not None}  # null is absent
    data["version"] = (data.pop("version", None), data.pop("updated_at", None))
    model = _Order if kind is RecordKind.ORDER else _Shipment
    try:
        m = model.model_validate(data, context=_TEXT if text else _JSON)
    except ValidationError as exc:
        raise RecordError(problems(exc, wording=_FEED)[0].message) from None
    if isinstance(m, _Order):
        return OrderRecord(id=m.id, version=m.version, site=m.site, product=m.product, qty=m.qty, created=m.created,
                           due=m.due, status=m.status, done_qty=m.done_qty, operation=m.operation,
                           done_by_step=m.done_by_step)
    assert isinstance(m, _Shipment)
    return ShipmentRecord(id=m.id, version=m.version, site=m.site, sku=m.sku, qty=m.qty, eta=m.eta,
                          origin=m.origin, status=m.status, planned_eta=m.planned_eta)


def _t(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def record_to_json(record: BusinessRecord) -> str:
    """The canonical JSON text of a record (sorted keys), as the ledger keeps it."""
    d: dict[str, Any]
    if isinstance(record, OrderRecord):
        d = {"kind": "order", "id": record.id, "version": record.version, "site": record.site,
             "product": record.product, "qty": record.qty, "created": _t(record.created),
             "due": _t(record.due),
             "status": record.status.value, "done_qty": record.done_qty}
        if record.operation:
            d["operation"] = record.operation
        if record.done_by_step:
            d["done_by_step"] = list(record.done_by_step)
    else:
        d = {"kind": "shipment", "id": record.id, "version": record.version, "site": record.site,
             "sku": record.sku, "qty": record.qty, "eta": _t(record.eta), "origin": record.origin,
             "status": record.status.value, "planned_eta": _t(record.planned_eta)}
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def record_from_json(text: str) -> BusinessRecord:
    """The record of :func:`record_to_json`'s text."""
    d = {k: v for k, v in json.loads(text).items() if v is not None}
    return parse_record(d, None)
