"""The HTTP endpoint for real on 127.0.0.1, and crash safety: what it acknowledged survives a restart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from connectors.collector import Collector, LoggingSink, resume_state
from connectors.feeds.endpoint import FeedEndpoint
from connectors.feeds.intake import Intake
from connectors.feeds.ledger import Ledger
from connectors.store import SqliteHistorian
from tests.connectors.feeds.conftest import T0
from twin.spec import FleetSpec, SiteId, Sku

TOKEN = "s3cret-token"
BERLIN, ROTTERDAM = SiteId("pod-berlin"), SiteId("lm-rotterdam")


def order(oid: str, version: int = 1, **kw: Any) -> dict[str, Any]:
    return {"id": oid, "version": version, "site": "pod-berlin", "product": "custom-bracket", "qty": 4,
            "created": "2026-03-02T08:00:00Z", "due": "2026-03-04T08:00:00Z", **kw}


Call = Callable[..., Awaitable[tuple[int, Any]]]


def serve(intake: Intake, collector: Collector, body: Callable[[Call, FeedEndpoint], Awaitable[None]],
          max_body_bytes: int = 4096) -> None:
    """Start the endpoint on a free port, run ``body`` against it with a real HTTP client, stop it."""

    async def main() -> None:
        endpoint = FeedEndpoint(intake, collector.submit, token=TOKEN, port=0, max_body_bytes=max_body_bytes)
        stop = asyncio.Event()
        task = asyncio.create_task(endpoint.run(stop))
        for _ in range(100):
            if endpoint.port:
                break
            await asyncio.sleep(0.02)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

            async def call(method: str, path: str, data: bytes | str | None = None,
                           token: str | None = TOKEN) -> tuple[int, Any]:
                headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
                async with session.request(method, f"http://127.0.0.1:{endpoint.port}{path}", data=data,
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
                await asyncio.wait_for(task, 5.0)

    asyncio.run(main())


@pytest.mark.server
def test_endpoint_answers(intake: Intake, collector: Collector) -> None:
    async def body(call: Call, endpoint: FeedEndpoint) -> None:
        assert endpoint.host == "127.0.0.1"
        assert await call("GET", "/healthz", token=None) == (200, {"status": "ok"})
        payload = json.dumps([order("o1"), order("o2", qty=0), {"id": "o3"}, order("o4", site="pod-mars")])
        status, _ = await call("POST", "/api/v1/orders", payload, token=None)
        assert status == 401
        status, _ = await call("POST", "/api/v1/orders", payload, token="s3cret-tokem")
        assert status == 401
        assert collector._pending_records == []  # nothing unauthorised went anywhere
        status, answer = await call("POST", "/api/v1/orders", "{not json")
        assert status == 400 and answer["error"].startswith("body is not JSON")
        status, _ = await call("POST", "/api/v1/orders", json.dumps([order(f"x{i}") for i in range(200)]))
        assert status == 413  # 200 orders are over the 4 KiB limit of this endpoint
        status, answer = await call("POST", "/api/v1/orders", payload)
        assert status == 200
        assert answer == {"accepted": 1, "duplicates": 0, "late": 0, "rejected": [
            {"index": 1, "reason": "qty must be > 0 (got 0)"},
            {"index": 2, "reason": "missing field 'version' (or 'updated_at')"},
            {"index": 3, "reason": "unknown site 'pod-mars'"},
        ]}
        collector.apply_pending()
        first = collector.state
        status, answer = await call("POST", "/api/v1/orders", payload)  # the same request again
        assert (status, answer["accepted"], answer["duplicates"]) == (200, 0, 1)
        collector.apply_pending()
        assert collector.state.sites == first.sites
        status, answer = await call("POST", "/api/v1/shipments", json.dumps(
            {"id": "s1", "version": 1, "site": "lm-rotterdam", "sku": "CTRL-BOARD", "qty": 500,
             "eta": "2026-03-20T00:00:00Z", "origin": "Taipei"}))
        assert (status, answer["accepted"]) == (200, 1)
        status, answer = await call("POST", "/api/v1/shipments", json.dumps({**order("o9"), "kind": "order"}))
        assert status == 200
        assert answer["rejected"] == [{"index": 0, "reason": "kind 'order' sent to the shipments feed"}]

    serve(intake, collector, body)
    collector.apply_pending()
    assert [o.id for o in collector.state.sites[BERLIN].orders] == ["o1"]
    assert [s.id for s in collector.state.sites[ROTTERDAM].inventory[Sku("CTRL-BOARD")].in_transit] == ["s1"]


@pytest.mark.server
def test_acknowledged_records_survive_a_crash(tmp_path: Path, fleet: FleetSpec) -> None:
    """A 200 means durable: the collector dies before its next checkpoint, the restart still has the order."""
    store = SqliteHistorian(tmp_path / "history.db", fleet)
    ledger = Ledger(tmp_path / "feeds.db")
    collector = Collector(fleet, [], store, clock=lambda: T0)
    collector.flush()  # a first checkpoint of every site, without any order

    async def body(call: Call, endpoint: FeedEndpoint) -> None:
        status, answer = await call("POST", "/api/v1/orders", json.dumps([order("o1"), order("o2", version=2)]))
        assert (status, answer["accepted"]) == (200, 2)

    serve(Intake(fleet, ledger), collector, body)
    # crash: the submitted records were never applied nor checkpointed; the processes are gone
    ledger.close()
    checkpoint = store.state_at(BERLIN, T0)
    assert checkpoint is not None and checkpoint.orders == ()
    store.close()

    store = SqliteHistorian(tmp_path / "history.db", fleet)
    ledger = Ledger(tmp_path / "feeds.db")
    resumed = resume_state(fleet, store, T0)
    restarted = Collector(fleet, [], LoggingSink(), clock=lambda: T0, state=resumed)
    restarted.submit(ledger.latest())  # what `twin collect` does at start
    restarted.apply_pending()
    assert [(o.id, o.version) for o in restarted.state.sites[BERLIN].orders] == [("o1", 1), ("o2", 2)]
    # re-applying to a state that already holds them changes nothing
    before = restarted.state
    restarted.submit(ledger.latest())
    restarted.apply_pending()
    assert restarted.state.sites[BERLIN].orders == before.sites[BERLIN].orders
    ledger.close()
    store.close()

