"""Turn feed text (CSV with a header row, JSON Lines, JSON bodies) into order and shipment records.

Every record is checked on its own and either becomes a ``twin.business`` record or gets one
clear reason (missing field, wrong type, a timestamp without a time zone, unknown field...); the
good records of a file count even when other lines are bad. References to the fleet (site,
product, SKU) are checked later, by ``twin.business.validate``.

Fields (required unless a default is named):

* order: ``id``, ``version`` or ``updated_at``, ``site``, ``product``, ``qty`` (whole number),
  ``created``, ``due``, ``status`` (``open`` | ``done`` | ``cancelled``, default open),
  ``done_qty`` (default 0), ``operation`` (the routing role the order is at now, e.g. ``print``;
  default empty: not started or not reported);
* shipment: ``id``, ``version`` or ``updated_at``, ``site``, ``sku``, ``qty``, ``eta``,
  ``origin`` (default empty), ``status`` (``in_transit`` | ``arrived`` | ``cancelled``, default
  in_transit), ``planned_eta`` (default: the first ETA the twin saw).

A record may also carry ``kind`` (``order`` | ``shipment``); a file whose name starts with
``orders`` or ``shipments`` (an HTTP path likewise) fixes the kind, otherwise ``kind`` is required.
Timestamps are ISO 8601 with an offset or ``Z``. The version is either an integer ``version`` or
``updated_at``, a timestamp turned into milliseconds since the Unix epoch (one of the two, not both;
use one scheme per source so that versions of one id compare).

>>> rec = parse_record({"id": "o1", "version": 2, "site": "s", "product": "p", "qty": 3,
...                     "created": "2026-03-02T08:00:00Z", "due": "2026-03-04T08:00:00+01:00"},
...                    RecordKind.ORDER)
>>> rec.due.isoformat(), rec.status.value
('2026-03-04T07:00:00+00:00', 'open')
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from twin.business import BusinessRecord, OrderRecord, OrderStatus, RecordKind, ShipmentRecord, ShipmentStatus

__all__ = [
    "Line",
    "RecordError",
    "kind_of_name",
    "parse_body",
    "parse_file",
    "parse_record",
    "record_from_json",
    "record_to_json",
]

_COMMON = ("kind", "id", "version", "updated_at", "site", "qty", "status")
_FIELDS = {
    RecordKind.ORDER: frozenset((*_COMMON, "product", "created", "due", "done_qty", "operation")),
    RecordKind.SHIPMENT: frozenset((*_COMMON, "sku", "eta", "origin", "planned_eta")),
}


class RecordError(ValueError):
    """A record that cannot be read; the message is the reason shown to the sender."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    """One line (or array element) of an input: its record, or why there is none."""

    line: int  # 1-based line of a file (the header is line 1 of a CSV), or index in a JSON array
    raw: str
    record: BusinessRecord | None = None
    reason: str = ""


def kind_of_name(name: str) -> RecordKind | None:
    """The kind a file name or path fixes (``orders-*.csv``, ``/api/v1/shipments``), or None."""
    base = name.rsplit("/", 1)[-1].lower()
    if base.startswith("order"):
        return RecordKind.ORDER
    if base.startswith("shipment"):
        return RecordKind.SHIPMENT
    return None


def _describe(value: object) -> str:
    return f"{type(value).__name__} {value!r}"


class _Fields:
    """Typed access to one raw record: CSV values are text to parse, JSON values must have their type."""

    def __init__(self, raw: Mapping[str, Any], text: bool) -> None:
        self.raw = {k: v for k, v in raw.items() if not (text and v == "")}  # an empty CSV cell is absent
        self.text = text

    def has(self, name: str) -> bool:
        return self.raw.get(name) is not None

    def _get(self, name: str, required: bool) -> Any:
        value = self.raw.get(name)
        if value is None and required:
            raise RecordError(f"missing field {name!r}")
        return value

    def text_of(self, name: str, *, required: bool = True, default: str = "") -> str:
        value = self._get(name, required)
        if value is None:
            return default
        if not isinstance(value, str):
            raise RecordError(f"{name} must be text (got {_describe(value)})")
        if required and not value.strip():
            raise RecordError(f"{name} is empty")
        return value.strip()

    def whole(self, name: str, *, required: bool = True, default: int = 0) -> int:
        value = self._get(name, required)
        if value is None:
            return default
        if self.text and isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise RecordError(f"{name} must be a whole number (got {value!r})") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecordError(f"{name} must be a whole number (got {_describe(value)})")
        return value

    def number(self, name: str) -> float:
        value = self._get(name, True)
        if self.text and isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise RecordError(f"{name} must be a number (got {value!r})") from None
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise RecordError(f"{name} must be a number (got {_describe(value)})")
        else:
            number = float(value)
        if not math.isfinite(number):
            raise RecordError(f"{name} must be a finite number (got {value!r})")
        return number

    def time(self, name: str, *, required: bool = True) -> datetime | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise RecordError(f"{name} must be an ISO 8601 timestamp text (got {_describe(value)})")
        try:
            t = datetime.fromisoformat(value.strip())
        except ValueError:
            raise RecordError(f"{name} is not an ISO 8601 timestamp (got {value!r})") from None
        if t.tzinfo is None or t.utcoffset() is None:
            raise RecordError(f"{name} has no time zone: add an offset or Z (got {value!r})")
        return t.astimezone(UTC)


def _version(f: _Fields) -> int:
    if f.has("version") and f.has("updated_at"):
        raise RecordError("give either version or updated_at, not both")
    if f.has("updated_at"):
        t = f.time("updated_at")
        assert t is not None
        return int(t.timestamp() * 1000)
    if not f.has("version"):
        raise RecordError("missing field 'version' (or 'updated_at')")
    v = f.whole("version")
    if v < 0:
        raise RecordError(f"version must be >= 0 (got {v})")
    return v


def parse_record(raw: object, kind: RecordKind | None, *, text: bool = False) -> BusinessRecord:
    """One record from a decoded JSON object (``text=False``) or a CSV row (``text=True``).

    ``kind`` is what the file name or path fixes (None: the record's ``kind`` field decides).
    Raises ``RecordError`` with the reason.
    """
    if not isinstance(raw, Mapping):
        raise RecordError(f"not a JSON object (got {type(raw).__name__})")
    f = _Fields(raw, text)
    given = f.text_of("kind", required=False)
    if given:
        try:
            own = RecordKind(given)
        except ValueError:
            raise RecordError(f"kind must be 'order' or 'shipment' (got {given!r})") from None
        if kind is not None and own is not kind:
            raise RecordError(f"kind {own.value!r} sent to the {kind.value}s feed")
        kind = own
    if kind is None:
        raise RecordError("missing field 'kind' ('order' or 'shipment'): the file name does not say")
    unknown = sorted(str(k) for k in f.raw if k not in _FIELDS[kind])
    if unknown:
        known = ", ".join(sorted(_FIELDS[kind]))
        raise RecordError(f"unknown field(s) {', '.join(map(repr, unknown))} (known: {known})")
    rid, version, site = f.text_of("id"), _version(f), f.text_of("site")
    if kind is RecordKind.ORDER:
        status_text = f.text_of("status", required=False, default="open")
        try:
            status = OrderStatus(status_text)
        except ValueError:
            raise RecordError(f"status must be open, done or cancelled (got {status_text!r})") from None
        created, due = f.time("created"), f.time("due")
        assert created is not None and due is not None
        return OrderRecord(id=rid, version=version, site=site, product=f.text_of("product"),
                           qty=f.whole("qty"), created=created, due=due, status=status,
                           done_qty=f.whole("done_qty", required=False),
                           operation=f.text_of("operation", required=False))
    status_text = f.text_of("status", required=False, default="in_transit")
    try:
        sstatus = ShipmentStatus(status_text)
    except ValueError:
        raise RecordError(f"status must be in_transit, arrived or cancelled (got {status_text!r})") from None
    eta = f.time("eta")
    assert eta is not None
    return ShipmentRecord(id=rid, version=version, site=site, sku=f.text_of("sku"), qty=f.number("qty"),
                          eta=eta,
                          origin=f.text_of("origin", required=False), status=sstatus,
                          planned_eta=f.time("planned_eta", required=False))


def _line(n: int, raw: str, obj: object, kind: RecordKind | None, text: bool) -> Line:
    try:
        return Line(line=n, raw=raw, record=parse_record(obj, kind, text=text))
    except RecordError as exc:
        return Line(line=n, raw=raw, reason=str(exc))


def parse_file(name: str, data: bytes) -> tuple[list[Line], str]:
    """The lines of a dropped ``*.csv`` or ``*.jsonl`` file, and a reason if the whole file is unreadable."""
    if b"\x00" in data:
        return [], "binary data, not a text file"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], f"not UTF-8 text (byte {exc.start})"
    kind = kind_of_name(name)
    out: list[Line] = []
    if name.lower().endswith(".jsonl"):
        for n, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                out.append(Line(line=n, raw=raw, reason=f"not valid JSON: {exc.msg} at column {exc.colno}"))
                continue
            out.append(_line(n, raw, obj, kind, False))
        return out, ""
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        return [], f"not valid CSV: {exc}"
    raw_lines = text.splitlines()
    if not rows:
        return [], "empty file: a header row is required"
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header) or any(not h for h in header):
        return [], f"header row has empty or repeated column names (got {header})"
    # csv.reader has no line numbers per row; rows with quoted newlines are rare in ERP exports, so
    # the physical line is used when rows and lines agree and the row index otherwise
    aligned = len(raw_lines) == len(rows)
    for i, row in enumerate(rows[1:], start=2):
        raw = raw_lines[i - 1] if aligned else ",".join(row)
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            out.append(Line(line=i, raw=raw, reason=f"{len(row)} fields, the header has {len(header)}"))
            continue
        out.append(_line(i, raw, dict(zip(header, row, strict=True)), kind, True))
    return out, ""


def parse_body(body: bytes, kind: RecordKind) -> list[Line]:
    """The records of an HTTP body: one JSON object or an array of them. ``ValueError`` if not JSON."""
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"body is not JSON: {exc}") from None
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise ValueError(f"body must be a JSON object or an array of objects (got {type(doc).__name__})")
    return [_line(i, json.dumps(obj)[:500], obj, kind, False) for i, obj in enumerate(doc)]


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
    else:
        d = {"kind": "shipment", "id": record.id, "version": record.version, "site": record.site,
             "sku": record.sku, "qty": record.qty, "eta": _t(record.eta), "origin": record.origin,
             "status": record.status.value, "planned_eta": _t(record.planned_eta)}
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def record_from_json(text: str) -> BusinessRecord:
    """The record of :func:`record_to_json`'s text."""
    d = {k: v for k, v in json.loads(text).items() if v is not None}
    return parse_record(d, None)
