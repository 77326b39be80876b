"""Parsing feed records: one clear reason per bad record, versions, time zones, file-level failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from connectors.feeds.parse import RecordError, parse_body, parse_file, parse_record, record_from_json, record_to_json
from twin.business import OrderRecord, RecordKind, ShipmentRecord, ShipmentStatus

ORDER = {"id": "o1", "version": 1, "site": "pod-berlin", "product": "custom-bracket", "qty": 5,
         "created": "2026-03-02T08:00:00Z", "due": "2026-03-04T08:00:00+01:00"}
SHIPMENT = {"id": "s1", "version": 1, "site": "lm-rotterdam", "sku": "DRIVE-UNIT", "qty": 200,
            "eta": "2026-04-01T00:00:00Z"}


def reason(raw: object, kind: RecordKind | None = RecordKind.ORDER, text: bool = False) -> str:
    with pytest.raises(RecordError) as err:
        parse_record(raw, kind, text=text)
    return str(err.value)


@pytest.mark.parametrize(("change", "expected"), [
    ({"qty": None}, "missing field 'qty'"),
    ({"version": None}, "missing field 'version' (or 'updated_at')"),
    ({"created": "2026-03-02T08:00:00"}, "created has no time zone: add an offset or Z (got '2026-03-02T08:00:00')"),
    ({"due": "tomorrow"}, "due is not an ISO 8601 timestamp (got 'tomorrow')"),
    ({"qty": "5"}, "qty must be a whole number (got str '5')"),
    ({"qty": 2.5}, "qty must be a whole number (got float 2.5)"),
    ({"qty": True}, "qty must be a whole number (got bool True)"),
    ({"id": 17}, "id must be text (got int 17)"),
    ({"qyt": 5}, "unknown field(s) 'qyt' (known: created, done_by_step, done_qty, due, id, kind, operation, "
                 "product, qty, site, status, updated_at, version)"),
    ({"status": "shipped"}, "status must be open, done or cancelled (got 'shipped')"),
    ({"updated_at": "2026-03-02T09:00:00Z"}, "give either version or updated_at, not both"),
    ({"version": -1}, "version must be within 0..2^63-1 (got -1)"),
        ({"version": 2**63}, "version must be within +-(2^63 - 1) (got 9223372036854775808)"),
    ({"kind": "shipment"}, "kind 'shipment' sent to the orders feed"),
])
def test_order_reasons(change: dict[str, object], expected: str) -> None:
    raw = {k: v for k, v in {**ORDER, **change}.items() if v is not None}
    assert reason(raw) == expected


def test_not_an_object_and_no_kind() -> None:
    assert reason([1, 2]) == "not a JSON object (got list)"
    assert reason(ORDER, None) == "missing field 'kind' ('order' or 'shipment'): the file name does not say"
    assert isinstance(parse_record({**ORDER, "kind": "order"}, None), OrderRecord)


def test_updated_at_becomes_milliseconds_and_times_become_utc() -> None:
    raw = {k: v for k, v in ORDER.items() if k != "version"} | {"updated_at": "2026-03-02T09:00:00.250+01:00"}
    rec = parse_record(raw, RecordKind.ORDER)
    # 2026-03-02T08:00:00.250Z in milliseconds since the Unix epoch
    assert rec.version == int(datetime(2026, 3, 2, 8, 0, tzinfo=UTC).timestamp()) * 1000 + 250
    assert rec.due == datetime(2026, 3, 4, 7, 0, tzinfo=UTC)


def test_shipment_defaults_and_round_trip() -> None:
    rec = parse_record(SHIPMENT, RecordKind.SHIPMENT)
    assert isinstance(rec, ShipmentRecord)
    assert (rec.qty, rec.origin, rec.status, rec.planned_eta) == (200.0, "", ShipmentStatus.IN_TRANSIT, None)
    assert record_from_json(record_to_json(rec)) == rec
    assert reason({**SHIPMENT, "qty": "many"}, RecordKind.SHIPMENT) == "qty must be a number (got str 'many')"


def test_csv_text_values_and_bad_lines() -> None:
    data = (b"id,version,site,product,qty,created,due\n"
            b"o1,1,pod-berlin,custom-bracket,5,2026-03-02T08:00:00Z,2026-03-04T08:00:00Z\n"
            b"o2,1,pod-berlin,custom-bracket,five,2026-03-02T08:00:00Z,2026-03-04T08:00:00Z\n"
            b"o3,1,pod-berlin,custom-bracket,5\n"
            b"\n")
    lines, error = parse_file("orders-1.csv", data)
    assert error == ""
    assert [(ln.line, ln.record is not None, ln.reason) for ln in lines] == [
        (2, True, ""),
        (3, False, "qty must be a whole number (got 'five')"),
        (4, False, "5 fields, the header has 7"),
    ]
    assert lines[2].raw == "o3,1,pod-berlin,custom-bracket,5"


def test_corrupt_files() -> None:
    assert parse_file("orders.csv", b"\x89PNG\r\n\x1a\n\x00\x00garbage") == ([], "binary data, not a text file")
    # a line that is not UTF-8 is rejected by itself (byte 0 of line 2); the file goes on
    lines, error = parse_file("orders.csv", b"id,qty\n\xff\xfe5\n")
    assert (error, [(ln.line, ln.reason) for ln in lines]) == ("", [(2, "not UTF-8 text (byte 0 of the line)")])
    assert parse_file("orders.csv", b"")[1] == "empty file: a header row is required"
    truncated = json.dumps(ORDER).encode() + b'\n{"id": "o2", "version": 1, "si'
    lines, error = parse_file("orders.jsonl", truncated)
    assert error == "" and lines[0].record is not None
    assert lines[1].reason.startswith("not valid JSON: Unterminated string")


def test_body_object_or_array() -> None:
    assert len(parse_body(json.dumps(ORDER).encode(), RecordKind.ORDER)) == 1
    lines = parse_body(json.dumps([ORDER, {"id": "x"}]).encode(), RecordKind.ORDER)
    assert [(ln.line, ln.reason) for ln in lines] == [(0, ""), (1, "missing field 'version' (or 'updated_at')")]
    with pytest.raises(ValueError, match="not JSON"):
        parse_body(b"{nope", RecordKind.ORDER)
    with pytest.raises(ValueError, match="object or an array"):
        parse_body(b"42", RecordKind.ORDER)
