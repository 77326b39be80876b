"""Operator events on the real collector endpoint on 127.0.0.1: checked, committed before the 200, or refused."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from connectors.collector import Collector, Sink
from connectors.feeds.endpoint import FeedEndpoint
from connectors.feeds.events import MAX_COMMENT_CHARS, MAX_EVENTS_PER_REQUEST
from connectors.feeds.intake import Intake
from connectors.store import SqliteHistorian
from dashboard.queries import MAX_ACK_COMMENT_CHARS
from tests.connectors.feeds.conftest import T0
from tests.connectors.feeds.test_endpoint import TOKEN
from twin import codec
from twin.errors import HistorianError
from twin.readings import Reading
from twin.spec import FleetSpec
from twin.state import Event, EventKind, SiteState

Call = Callable[..., Awaitable[tuple[int, Any]]]
EVENTS = "/api/v1/events"


def ack(user: str = "ana", comment: str = "fan replaced", **kw: Any) -> dict[str, Any]:
    """An acknowledgement as the dashboard sends it (``twin.codec.event_to_dict``)."""
    data = {"rule": "machine-down", "key": "machine-down:CNC1", "user": user, "comment": comment, "priority": 3,
            **kw.pop("data", {})}
    return {"ts": codec.dt_to_json(T0), "site": "pod-lyon", "asset": "CNC1", "kind": "alarm_acknowledged",
            "message": f"acknowledged by {user}: {comment}", "data": data, **kw}


def run_collector(collector: Collector, intake: Intake, body: Callable[[Call, FeedEndpoint], Awaitable[None]], *,
                  max_body_bytes: int = 64 * 1024, commit_timeout_s: float = 10.0) -> None:
    """Run ``collector`` with its endpoint (port 0: a free one), ``body`` against it over real HTTP, then stop."""

    async def main() -> None:
        endpoint = FeedEndpoint(intake, collector.submit, token=TOKEN, port=0, max_body_bytes=max_body_bytes,
                                record=collector.record, commit_timeout_s=commit_timeout_s, clock=lambda: T0)
        collector.add_source(endpoint)
        stop = asyncio.Event()
        task = asyncio.create_task(collector.run(stop))
        for _ in range(200):
            if endpoint.port:
                break
            await asyncio.sleep(0.02)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:

            async def call(path: str, data: str, token: str | None = TOKEN) -> tuple[int, Any]:
                headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
                async with session.post(f"http://127.0.0.1:{endpoint.port}{path}", data=data,
                                        headers=headers) as resp:
                    text = await resp.text()
                    try:
                        return resp.status, json.loads(text)
                    except ValueError:
                        return resp.status, text

            try:
                await body(call, endpoint)
            finally:
                stop.set()
                await asyncio.wait_for(task, 10.0)

    asyncio.run(main())


def acks_in(store: SqliteHistorian) -> list[Event]:
    return [e for e in store.events("pod-lyon", T0 - timedelta(days=1), T0 + timedelta(days=1))
            if e.kind is EventKind.ALARM_ACKNOWLEDGED]


def test_the_comment_limit_is_the_dashboards() -> None:
    assert MAX_COMMENT_CHARS == MAX_ACK_COMMENT_CHARS


@pytest.mark.server
def test_events_are_checked_and_committed_before_the_answer(tmp_path: Path, fleet: FleetSpec,
                                                            intake: Intake) -> None:
    store = SqliteHistorian(tmp_path / "history.db", fleet)
    reader = SqliteHistorian(tmp_path / "history.db", fleet, readonly=True)
    collector = Collector(fleet, [], store, clock=lambda: T0, flush_interval_s=0.05)
    batch = [ack(), ack(site="pod-mars"), ack(comment="x" * 201), ack(kind="alarm_raised"),
             ack(ts="2026-03-02T08:00:00"), ack(data={"key": "machine-down:CNC2"}), 7,
             ack(ts=codec.dt_to_json(T0 + timedelta(hours=1))), ack(user="ben", comment="")]

    async def body(call: Call, endpoint: FeedEndpoint) -> None:
        assert await call(EVENTS, json.dumps(batch), token=None) == (401, {"error": "missing or wrong bearer token"})
        assert (await call(EVENTS, json.dumps(batch), token="wrong"))[0] == 401
        status, answer = await call(EVENTS, json.dumps(batch))
        assert status == 200
        assert answer == {"accepted": 2, "rejected": [
            {"index": 1, "reason": "unknown site 'pod-mars'"},
            # the house wording of twin.validation: path, what, and the value got (quoted within bounds:
            # the repr of 201 x's cut to 200 characters, "'" and 199 x's, then "...")
            {"index": 2, "reason": "data.comment: String should have at most 200 characters (got '"
                                   + "x" * 199 + "...)"},
            {"index": 3, "reason": "kind: Input should be 'alarm_acknowledged', 'stop_classified' or "
                                   "'alarm_shelving' (got 'alarm_raised')"},
            {"index": 4, "reason": "ts must be an ISO 8601 time with an offset, e.g. 2026-03-02T08:00:00Z "
                                   "(got '2026-03-02T08:00:00')"},
            {"index": 5, "reason": "data.key must be RULE:ASSET, here machine-down:CNC1"},
            {"index": 6, "reason": "an event is a JSON object (got a number)"},
            {"index": 7, "reason": "ts is 3,600 s ahead of the collector's clock (at most 300 s)"},
        ]}
        # committed before the answer: another connection (the dashboard's, read-only) reads them now
        got = acks_in(reader)
        assert [(e.data["user"], e.data["comment"]) for e in got] == [("ana", "fan replaced"), ("ben", "")]
        assert got[0] == codec.event_from_dict(ack())  # exactly what was sent
        status, answer = await call(EVENTS, json.dumps(ack(user="cleo")))  # one object, not an array
        assert (status, answer) == (200, {"accepted": 1, "rejected": []})
        assert [e.data["user"] for e in acks_in(reader)] == ["ana", "ben", "cleo"]
        status, answer = await call(EVENTS, "{not json")
        assert status == 400 and answer["error"].startswith("body is not JSON")
        status, answer = await call(EVENTS, json.dumps([ack()] * (MAX_EVENTS_PER_REQUEST + 1)))
        assert status == 413  # over the endpoint's 64 KiB before the count is looked at
        status, answer = await call(EVENTS, json.dumps("ack"))
        assert (status, answer) == (400, {"error": "body must be a JSON object or an array of objects (got str)"})

    try:
        run_collector(collector, intake, body)
    finally:
        reader.close()
        store.close()


@pytest.mark.server
def test_too_many_events_and_a_large_body_are_refused(tmp_path: Path, fleet: FleetSpec, intake: Intake) -> None:
    store = SqliteHistorian(tmp_path / "history.db", fleet)
    collector = Collector(fleet, [], store, clock=lambda: T0, flush_interval_s=0.05)

    async def body(call: Call, endpoint: FeedEndpoint) -> None:
        status, answer = await call(EVENTS, json.dumps([ack()] * 40))
        assert status == 413  # 40 events are over this endpoint's 4 KiB
        assert answer["error"].startswith("body of ") and "over the limit of 4096 bytes" in answer["error"]
        status, answer = await call(EVENTS, json.dumps([{}] * (MAX_EVENTS_PER_REQUEST + 1)))
        assert (status, answer) == (400, {"error": "1,001 events in one request (at most 1,000)"})
        status, answer = await call(EVENTS, json.dumps(ack(data={"comment": "x" * 3000})))
        assert status == 200 and answer["accepted"] == 0

    try:
        run_collector(collector, intake, body, max_body_bytes=4096)
        assert acks_in(store) == []
    finally:
        store.close()


class RefusingSink:
    """A historian that refuses every batch (a locked database), or blocks until released."""

    def __init__(self, *, block: threading.Event | None = None) -> None:
        self.block = block
        self.batches: list[tuple[int, int]] = []

    def write(self, readings: Sequence[Reading], states: Sequence[SiteState] = (),
              events: Sequence[Event] = ()) -> None:
        self.batches.append((len(readings), len(events)))
        if self.block is not None:
            self.block.wait(10)
            return
        raise HistorianError("database is locked")


@pytest.mark.server
def test_events_the_historian_refused_are_answered_503_and_not_kept(fleet: FleetSpec, intake: Intake) -> None:
    sink = RefusingSink()
    collector = Collector(fleet, [], sink, clock=lambda: T0, flush_interval_s=0.05)

    async def body(call: Call, endpoint: FeedEndpoint) -> None:
        status, answer = await call(EVENTS, json.dumps([ack()]))
        assert (status, answer) == (503, {"error": "could not store the events; retry later"})
        n = len(sink.batches)
        await asyncio.sleep(0.3)  # the batch is retried with the next ones, without the event
        assert len(sink.batches) > n and all(events == 0 for _, events in sink.batches[n:])

    run_collector(collector, intake, body)
    assert any(events == 1 for _, events in sink.batches)


@pytest.mark.server
def test_events_not_committed_in_time_are_answered_503(fleet: FleetSpec, intake: Intake) -> None:
    release = threading.Event()
    sink: Sink = RefusingSink(block=release)
    collector = Collector(fleet, [], sink, clock=lambda: T0, flush_interval_s=0.05)

    async def body(call: Call, endpoint: FeedEndpoint) -> None:
        try:
            status, answer = await call(EVENTS, json.dumps([ack()]))
        finally:
            release.set()
        assert status == 503
        assert answer == {"error": "the historian did not commit the events within 0.5 s: they may still be recorded"}

    run_collector(collector, intake, body, commit_timeout_s=0.5)


@pytest.mark.server
def test_without_record_the_endpoint_has_no_events_path(intake: Intake, collector: Collector) -> None:
    from tests.connectors.feeds.test_endpoint import serve

    async def body(call: Any, endpoint: FeedEndpoint) -> None:
        status, _ = await call("POST", EVENTS, json.dumps([ack()]))
        assert status == 404

    serve(intake, collector, body)
