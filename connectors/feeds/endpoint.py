"""The collector's HTTP endpoint for orders, shipments and operator events (aiohttp), binding 127.0.0.1 by default.

* ``POST /api/v1/orders`` and ``POST /api/v1/shipments``: a JSON object or an array of objects
  (fields in ``connectors.feeds.parse``), with ``Authorization: Bearer <token>``;
* ``POST /api/v1/events`` (when the endpoint is given ``record``, the collector's): operator events
  (alarm acknowledgements of the dashboard, fields in ``connectors.feeds.events``), same token;
* ``GET /healthz``: ``{"status": "ok"}``, no token needed.

Answers: 401 without the right token (compared in constant time; the token is never logged),
400 when the body is not JSON (or not an object/array), 413 over ``max_body_bytes`` (told by the
``Content-Length`` header before the body is read; a body without one is read up to the limit
only), and 200 with ``{"accepted", "duplicates", "late", "rejected": [{"index", "reason"}]}`` once
the accepted records are committed to the ledger: a 200 means they survive a crash. A record over
the parser's limits (nested too deep, an integer of too many digits, a version over 2^63-1) is one
rejected record of the answer, never a failed batch: the batch's good records are taken. Records
are then handed to the collector (``Collector.submit``). Repeating a request changes nothing
(duplicates).

Events are answered ``{"accepted", "rejected": [{"index", "reason"}]}`` with 200 only once the
accepted ones are committed to the historian by the collector's writer (``Collector.record``): the
dashboard reads them back right after. 503 when the historian refused them (they are not recorded:
send them again) or did not commit them within ``commit_timeout_s`` (they may still be recorded).

Usage::

    endpoint = FeedEndpoint(intake, collector.submit, token=token, port=8081, record=collector.record)
    await endpoint.run(stop)
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from connectors.feeds.drop import Submit
from connectors.feeds.events import parse_events
from connectors.feeds.intake import Intake
from connectors.feeds.parse import parse_body
from twin.business import RecordKind
from twin.clock import Clock, utc_now
from twin.errors import SourceError, TwinError
from twin.state import Event

__all__ = ["FeedEndpoint", "RecordEvents"]

log = logging.getLogger(__name__)

RecordEvents = Callable[[Sequence[Event]], Awaitable[None]]  # Collector.record: done once committed


class FeedEndpoint:
    """Serve the feed endpoint on ``host:port`` (``port=0``: any free port, see :attr:`port` after start)."""

    def __init__(self, intake: Intake, submit: Submit, *, token: str, host: str = "127.0.0.1",
                 port: int = 8081, max_body_bytes: int = 1024 * 1024, record: RecordEvents | None = None,
                 commit_timeout_s: float = 10.0, clock: Clock = utc_now) -> None:
        if not token:
            raise ValueError("the feed endpoint needs a non-empty token")
        self.intake = intake
        self.submit = submit
        self.record = record
        self.commit_timeout_s = commit_timeout_s
        self._clock = clock
        self._token = ("Bearer " + token).encode("utf-8")
        self.host = host
        self.port = port
        self.max_body_bytes = max_body_bytes
        self._runner: web.AppRunner | None = None
        self.requests = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes)
        app.router.add_post("/api/v1/orders", self._orders)
        app.router.add_post("/api/v1/shipments", self._shipments)
        if self.record is not None:
            app.router.add_post("/api/v1/events", self._events)
        app.router.add_get("/healthz", self._health)
        return app

    async def start(self) -> None:
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            where = f"{self.host}:{self.port}"
            raise SourceError(f"feed endpoint cannot listen on {where}: {exc.strerror}") from exc
        self._runner = runner
        addresses = runner.addresses  # the bound socket tells the port when 0 was asked
        if addresses:
            self.port = int(addresses[0][1])
        paths = "orders,shipments,events" if self.record is not None else "orders,shipments"
        log.info("feed endpoint on http://%s:%d/api/v1/{%s}", self.host, self.port, paths)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    def _too_large(self, size: int | None) -> web.Response:
        told = f" of {size} bytes" if size is not None else ""
        return web.json_response({"error": f"body{told} over the limit of {self.max_body_bytes} bytes "
                                           f"({self.max_body_bytes // 1024} KiB): send fewer records per "
                                           "request"}, status=413, headers={"Connection": "close"})

    def _authorised(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "").encode("utf-8", "replace")
        return hmac.compare_digest(given, self._token)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _orders(self, request: web.Request) -> web.Response:
        return await self._post(request, RecordKind.ORDER)

    async def _shipments(self, request: web.Request) -> web.Response:
        return await self._post(request, RecordKind.SHIPMENT)

    async def _body(self, request: web.Request) -> bytes | web.Response:
        """The request's body, or the answer refusing it (no token, too large)."""
        self.requests += 1
        if not self._authorised(request):
            return web.json_response({"error": "missing or wrong bearer token"}, status=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="twin-feeds"'})
        declared = request.content_length
        if declared is not None and declared > self.max_body_bytes:  # refused before reading a byte of it
            return self._too_large(declared)
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large(None)

    async def _post(self, request: web.Request, kind: RecordKind) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        try:  # parsing a 1 MiB body takes about a second: off the event loop, as the ledger's commit
            lines = await asyncio.to_thread(parse_body, body, kind)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        try:
            result = await asyncio.to_thread(self.intake.take, lines)
        except TwinError as exc:
            log.error("feed endpoint: %s", exc)
            return web.json_response({"error": "could not store the records; retry later"}, status=503)
        except Exception:  # not the sender's fault and not to be retried blindly: say so, keep serving
            log.exception("feed endpoint: unexpected error taking %d records", len(lines))
            return web.json_response({"error": "internal error; the records were not stored"}, status=500)
        if result.to_apply:
            self.submit(result.to_apply)  # in the loop: the twin state has one writer
        answer: dict[str, Any] = {
            "accepted": result.accepted, "duplicates": result.duplicates, "late": result.late,
            "rejected": [{"index": r.line, "reason": r.reason} for r in result.rejected],
        }
        return web.json_response(answer)

    async def _events(self, request: web.Request) -> web.Response:
        assert self.record is not None  # the route exists only then
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        try:
            parsed = await asyncio.to_thread(parse_events, body, self.intake.fleet, self._clock())
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if parsed.events:
            committed = asyncio.ensure_future(self.record(parsed.events))
            try:  # shielded: a timeout stops the waiting, not the commit of the batch the events are in
                await asyncio.wait_for(asyncio.shield(committed), self.commit_timeout_s)
            except TimeoutError:
                committed.add_done_callback(_consume)  # its outcome has no one left to tell
                log.error("feed endpoint: %d events not committed within %g s", len(parsed.events),
                          self.commit_timeout_s)
                return web.json_response({"error": f"the historian did not commit the events within "
                                                   f"{self.commit_timeout_s:g} s: they may still be recorded"},
                                         status=503)
            except TwinError as exc:
                log.error("feed endpoint: %s", exc)
                return web.json_response({"error": "could not store the events; retry later"}, status=503)
        answer: dict[str, Any] = {"accepted": len(parsed.events),
                                  "rejected": [{"index": r.index, "reason": r.reason} for r in parsed.rejected]}
        return web.json_response(answer)


def _consume(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("feed endpoint: events answered 503 (not committed in time) were not recorded either: %s",
                    future.exception())
