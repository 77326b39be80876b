"""Hostile requests to the real feed endpoint on 127.0.0.1: rejected record by record, or refused early with 413.

Regression tests of the attack run of issue 18: a record nested 1,000 deep or with a version over
2^63-1 made the whole batch answer 500, so its good records could never be delivered however often
the client retried.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from connectors.collector import Collector
from connectors.feeds.endpoint import FeedEndpoint
from connectors.feeds.intake import Intake
from tests.connectors.feeds.test_endpoint import BERLIN, TOKEN, Call, order, serve


@pytest.mark.server
def test_records_over_the_limits_are_rejected_alone_and_the_good_ones_taken(intake: Intake,
                                                                            collector: Collector) -> None:
    deep = "[" * 1000 + "]" * 1000
    batch = ("[" + json.dumps(order("good-1")) + ","
             + json.dumps(order("deep"))[:-1] + ', "operation": ' + deep + "},"
             + json.dumps(order("v-63", version=2**63)) + ","
             + json.dumps(order("v-23")).replace('"version": 1', '"version": 99999999999999999999999') + ","
             + json.dumps(order("digits")).replace('"qty": 4', '"qty": ' + "9" * 5000) + ","
             + json.dumps(order("good-2")) + "]")

    async def body(call: Call, endpoint: FeedEndpoint) -> None:
        status, answer = await call("POST", "/api/v1/orders", batch)
        assert status == 200
        assert answer == {"accepted": 2, "duplicates": 0, "late": 0, "rejected": [
            {"index": 1, "reason": "JSON nested 1001 levels deep (at most 16)"},
            {"index": 2, "reason": "version must be within +-(2^63 - 1) (got 9223372036854775808)"},
            {"index": 3, "reason": "version must be a whole number (got an integer of 23 digits)"},
            {"index": 4, "reason": "qty must be a whole number (got an integer of 5000 digits)"},
        ]}
        # nested 20 deep: decoded, then rejected before anything recurses over it
        status, answer = await call("POST", "/api/v1/orders", json.dumps([order("d20", operation=[[[[[[[[[[
            [[[[[[[[[["x"]]]]]]]]]]]]]]]]]]]]), order("good-3")]))
        assert (status, answer["accepted"], answer["rejected"]) == (200, 1, [
            {"index": 0, "reason": "JSON nested more than 16 levels deep (at most 16)"}])
        # a lone surrogate (valid JSON, not valid Unicode) made SQLite's binding fail the whole batch
        status, answer = await call("POST", "/api/v1/orders",
                                    "[" + json.dumps(order("good-4")) + "," + json.dumps(order("sur")).replace(
                                        '"sur"', '"\\ud800"') + "]")
        assert (status, answer["accepted"], answer["rejected"]) == (200, 1, [
            {"index": 1, "reason": "id is not valid Unicode text (a lone surrogate at character 0)"}])
        # a single deep object (not an array) is one rejected record too, not a server error
        status, answer = await call("POST", "/api/v1/orders", '{"id": ' + deep + "}")
        assert (status, answer["accepted"], len(answer["rejected"])) == (200, 0, 1)

    serve(intake, collector, body, max_body_bytes=64 * 1024)
    collector.apply_pending()
    assert sorted(o.id for o in collector.state.sites[BERLIN].orders) == ["good-1", "good-2", "good-3", "good-4"]


async def _raw_request(port: int, head: str, body: bytes = b"") -> str:
    """Send ``head`` (and ``body``) on a raw socket; the status line and the JSON answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.encode() + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), 5.0)
    finally:
        writer.close()
    return answer.decode()


@pytest.mark.server
def test_a_body_over_the_limit_is_refused_before_it_is_read(intake: Intake, collector: Collector) -> None:
    async def body(call: Call, endpoint: FeedEndpoint) -> None:
        # 100 MB announced, not one byte of it sent: the answer comes anyway, so it was never waited for
        head = (f"POST /api/v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
        text = await _raw_request(endpoint.port, head)
        assert text.startswith("HTTP/1.1 413 ")
        assert ('"error": "body of 100000000 bytes over the limit of 4096 bytes (4 KiB): send fewer records '
                'per request"') in text

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: read up to the limit only
            for _ in range(10):
                yield b" " * 1000

        async with aiohttp.ClientSession() as session, session.post(
                f"http://127.0.0.1:{endpoint.port}/api/v1/orders", data=chunks(),
                headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            assert resp.status == 413
            assert (await resp.json())["error"].startswith("body over the limit of 4096 bytes")

    serve(intake, collector, body)
