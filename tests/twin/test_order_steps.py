"""Orders report the good units through each routing step (``done_by_step``), checked against the routing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.config import load
from connectors.feeds.parse import RecordError, parse_record, record_from_json, record_to_json
from twin.business import OrderRecord, validate

FLEET = load("examples/fleet.toml").fleet
T0 = datetime(2026, 11, 23, 8, tzinfo=UTC)
BASE = {"kind": "order", "id": "o-1", "version": 2, "site": "lm-rotterdam", "product": "smart-lamp", "qty": 10,
        "created": "2026-11-23T08:00:00Z", "due": "2026-11-30T08:00:00Z"}


def test_steps_round_trip_through_the_ledger_text() -> None:
    # smart-lamp: assemble -> inspect -> pack; 8 assembled, 5 of them inspected, 3 of those packed
    rec = parse_record({**BASE, "done_qty": 3, "operation": "assemble", "done_by_step": [8, 5, 3]}, None)
    assert isinstance(rec, OrderRecord)
    assert rec.done_by_step == (8, 5, 3)
    assert validate(FLEET, rec) is None
    assert record_from_json(record_to_json(rec)) == rec


@pytest.mark.parametrize(("steps", "done", "reason"), [
    ([8, 5], 5, "done_by_step needs one count per routing step of 'smart-lamp' (3) (got 2)"),
    ([8, 9, 3], 3, "done_by_step must be non-increasing counts between 0 and qty 10 (got [8, 9, 3])"),
    ([11, 5, 3], 3, "done_by_step must be non-increasing counts between 0 and qty 10 (got [11, 5, 3])"),
    ([8, 5, 3], 4, "done_by_step ends with 3 but done_qty is 4"),
])
def test_inconsistent_steps_are_rejected_with_their_reason(steps: list[int], done: int, reason: str) -> None:
    rec = parse_record({**BASE, "done_qty": done, "done_by_step": steps}, None)
    assert validate(FLEET, rec) == reason


def test_steps_are_whole_numbers() -> None:
    with pytest.raises(RecordError, match="done_by_step must be a list of whole numbers >= 0"):
        parse_record({**BASE, "done_by_step": [8, -1, 0]}, None)
    with pytest.raises(RecordError, match="at most 64 counts"):
        parse_record({**BASE, "done_by_step": [1] * 65}, None)


def test_order_progress_is_an_event_but_not_in_the_sites_recent_tail() -> None:
    # A confirmation per unit and step is stored as an ORDER_UPDATED event; the site's bounded tail of
    # recent events (kept in every checkpoint) holds only arrivals and closures, so 200 confirmations
    # never push the status changes and alarms out of it.
    from twin import live
    from twin.business import apply_records
    from twin.state import EventKind

    state = live.initial_state(FLEET, T0)
    first = parse_record({**BASE, "version": 1}, None)
    state, events = apply_records(FLEET, state, [first], T0)
    assert [e.kind for e in events] == [EventKind.ORDER_RECEIVED]
    for v in range(2, 12):  # ten confirmations: 1..10 units assembled
        rec = parse_record({**BASE, "version": v, "operation": "assemble", "done_by_step": [v - 1, 0, 0]}, None)
        state, events = apply_records(FLEET, state, [rec], T0)
        assert [e.kind for e in events] == [EventKind.ORDER_UPDATED]
    site = state.sites["lm-rotterdam"]
    assert [e.kind for e in site.recent_events] == [EventKind.ORDER_RECEIVED]
    assert site.orders[0].done_by_step == (10, 0, 0)
