"""The OPC UA source: one session per server, its nodes as readings, through a subscription or polling.

``OpcUaReader`` serves one ``[[sources.opcua]]``: it connects (security, user and password read
with ``connectors.config.secrets`` when it connects, never logged), resolves each node (a node id
or a browse path), reads the server's EngineeringUnits, then subscribes to every node with the
configured sampling interval and deadband (data change notifications become readings as they
arrive) or, with ``poll = true``, reads them all every ``poll_interval_s``. Between notifications
it checks that the session answers, and re-sends each node's latest value with the time of the
check (the subscription would have said if it had changed: the twin sees it refreshed as if
polled, and judges it stale only when the server stops confirming it; once per ``bad_after_s``
it reads them all, as not every server notifies a node deleted under a subscription); a failure
closes it and the nodes go STALE, BAD once the server has been gone ``bad_after_s``, and the
session and subscription are made again with backoff (``connectors.linkhealth``, as for Modbus and
InfluxDB): a server restart costs one outage, logged once when it starts and once when it ends.

A value's status code is its quality: Good → GOOD, Uncertain → STALE with the status name as the
reason, Bad → BAD with the status name. A value that is not a scalar (an array, a structure) is BAD
with the reason. ``scale``/``offset`` apply to numbers; ``enum`` maps the server's value, as text,
to the twin's. Readings carry the collector's clock, as every source's do (the twin judges
staleness by it; a server whose clock is off would otherwise look stale or early).

``OpcUaSources`` runs many readers under one ``TaskGroup``: a ``connectors.collector.Source``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from datetime import datetime

from connectors.config.opcua import OpcUaNode, OpcUaSource
from connectors.config.secrets import SecretUnavailable, read_secret
from connectors.linkhealth import Backoff, Change, LinkHealth, PartFaults
from connectors.opcua.client import ConnectFailed, Handle, OpcUaConnection, OpcUaError, Sample
from connectors.pacing import every
from twin.clock import Clock, utc_now
from twin.readings import Quality, Reading, Value

__all__ = ["OpcUaReader", "OpcUaSources", "ReadingSink", "convert"]

log = logging.getLogger(__name__)

ReadingSink = Callable[[Sequence[Reading]], None]


def _key(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def convert(node: OpcUaNode, sample: Sample) -> tuple[Value, Quality, str]:
    """The twin's value, quality and reason for ``sample`` of ``node``."""
    if sample.severity == "bad":
        return None, Quality.BAD, sample.status
    if sample.problem:
        return None, Quality.BAD, sample.problem
    value = sample.value
    if node.enum:
        mapped = node.enum.get(_key(value))
        if mapped is None:
            return None, Quality.BAD, f"value {value!r} not in the node's enum map"
        value = mapped
    elif (node.scale != 1.0 or node.offset != 0.0) and value is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, Quality.BAD, f"scale and offset need a number (got {type(value).__name__})"
        value = value * node.scale + node.offset
    if sample.severity == "uncertain":
        return value, Quality.STALE, sample.status
    return value, Quality.GOOD, ""


class OpcUaReader:
    """Reads one OPC UA server. ``poll_once`` reads every node once (connecting first if needed).

    ``polling`` (default: the source's ``poll``) reads every node each ``poll_interval_s`` instead of
    subscribing. ``link`` is the server's health, ``units`` the unit of each (asset, signal) (the configured one,
    else the server's EngineeringUnits), ``reachable`` whether the last attempt got through.
    """

    def __init__(self, source: OpcUaSource, *, clock: Clock = utc_now, rng: random.Random | None = None,
                 polling: bool | None = None) -> None:
        self.source = source
        self.polling = source.poll if polling is None else polling  # ``twin poll`` reads, never subscribes
        self._clock = clock
        self.link = LinkHealth(bad_after_s=source.bad_after_s,
                               backoff=Backoff(source.reconnect_min_s, source.reconnect_max_s, jitter=True,
                                               rng=rng or random.Random()))
        self.conn: OpcUaConnection | None = None
        self._handles: list[Handle | None] = [None] * len(source.nodes)
        self._node_faults: PartFaults[int, str] = PartFaults()
        self.units: dict[tuple[str, str], str] = {(n.asset, n.signal): n.unit for n in source.nodes if n.unit}
        self.reachable = False
        self.notifications = 0  # data changes received (tests, the benchmark)
        self._last: dict[int, Reading] = {}  # subscribed: each node's latest reading, re-sent on each check
        self._checks = 0  # session checks since the nodes were last read in full
        self._interval_s = source.poll_interval_s if self.polling else source.interval_s
        # nodes whose server value is the twin's as it is (no scale, offset or enum map)
        self._plain = [not n.enum and n.scale == 1.0 and n.offset == 0.0 for n in source.nodes]

    # ------------------------------------------------------------------ readings
    def _reading(self, i: int, sample: Sample, ts: datetime | None = None) -> Reading:
        node = self.source.nodes[i]
        value, quality, reason = convert(node, sample)
        if quality is Quality.BAD and self._node_faults.failed(i, reason):
            log.warning("OPC UA source %s: %s (%s.%s) is BAD: %s", self.source.id, node.where, node.asset,
                        node.signal, reason)
        elif quality is not Quality.BAD and self._node_faults and self._node_faults.cleared(i):
            log.warning("OPC UA source %s: %s (%s.%s) reads again", self.source.id, node.where, node.asset,
                        node.signal)
        reading = Reading.new(ts or self._clock(), self.source.site, node.asset, node.signal, value, quality, reason)
        self._last[i] = reading
        return reading

    def _unreachable(self, now: float) -> list[Reading]:
        quality, reason, ts, site = self.link.quality(now), self.link.reason, self._clock(), self.source.site
        return [Reading.new(ts, site, n.asset, n.signal, None, quality, reason) for n in self.source.nodes]

    def _unresolved(self) -> list[Reading]:
        return [self._reading(i, Sample(None, "bad", self._node_faults.get(i, "BadNodeIdUnknown"), None))
                for i, h in enumerate(self._handles) if h is None]

    # ------------------------------------------------------------------ link
    def _went_down(self, now: float, reason: str) -> None:
        if self.link.fail(now, reason) is Change.DOWN:
            log.warning("OPC UA source %s (%s): %s; its nodes are STALE, BAD after %g s", self.source.id,
                        self.source.endpoint, reason, self.source.bad_after_s)
        self.reachable = False

    def _connection(self) -> OpcUaConnection:
        s = self.source
        password = None
        if s.password_env or s.password_file:
            try:
                password = read_secret(s.password_env, s.password_file, max_bytes=4096)
            except SecretUnavailable as exc:
                where = " or ".join(x for x in (s.password_env and f"${s.password_env}",
                                                s.password_file and str(s.password_file)) if x)
                raise ConnectFailed(f"no password in {where} ({exc.problem.value})") from None
        return OpcUaConnection(s.endpoint, timeout_s=s.timeout_s, security=s.security,
                               certificate=str(s.certificate) if s.certificate else None,
                               private_key=str(s.private_key) if s.private_key else None,
                               user=s.user, password=password)

    async def _open(self) -> list[Reading]:
        """Connect, resolve the nodes, read their units; subscribe unless polling. Returns BAD readings."""
        conn = self._connection()
        self.conn = conn
        await conn.connect()
        resolved = await conn.resolve([n.ref for n in self.source.nodes])
        self._handles = [None if isinstance(h, str) else h for h in resolved]
        for i, h in enumerate(resolved):
            if isinstance(h, str):
                self._node_faults.pop(i, None)
                self._node_faults.failed(i, h)
                n = self.source.nodes[i]
                log.warning("OPC UA source %s: %s (%s.%s) is BAD: %s", self.source.id, n.where, n.asset, n.signal, h)
        live = [(i, h) for i, h in enumerate(self._handles) if h is not None]
        for (i, _), unit in zip(live, await conn.units([h for _, h in live]), strict=True):
            key = (self.source.nodes[i].asset, self.source.nodes[i].signal)
            if unit and self.source.nodes[i].unit is None:
                self.units[key] = unit
        bad = self._unresolved()
        if not self.polling and live:
            await self._subscribe(conn, live, bad)
        return bad

    async def _subscribe(self, conn: OpcUaConnection, live: list[tuple[int, Handle]], bad: list[Reading]) -> None:
        s = self.source
        index = [i for i, _ in live]
        loop = asyncio.get_running_loop()
        pending: list[tuple[int, Sample]] = []

        def flush() -> None:
            """The data changes of one publish response, as readings to the sink in one call."""
            batch = pending.copy()
            pending.clear()
            if self._sink is not None:
                self._sink(self._readings(batch))

        def notified(k: int, sample: Sample) -> None:
            self.notifications += 1
            if 0 <= k < len(index):
                if not pending:  # the first of its response: the others follow in the same step of the loop
                    loop.call_soon(flush)
                pending.append((index[k], sample))

        errors = await conn.subscribe([h for _, h in live], publish_ms=1000.0 * s.publish_s,
                                      sampling_ms=[1000.0 * s.sampling_interval_s] * len(live),
                                      deadbands=[s.nodes[i].deadband for i in index], callback=notified)
        for (i, _), error in zip(live, errors, strict=True):
            if error:
                bad.append(self._reading(i, Sample(None, "bad", error, None)))

    def _readings(self, batch: Sequence[tuple[int, Sample]]) -> list[Reading]:
        """Readings of many samples received together, with one time: the hot path of a subscription.

        A GOOD scalar of a node without scale, offset or enum becomes its reading straight away;
        anything else goes through ``_reading``.
        """
        ts, site, nodes, plain, last = self._clock(), self.source.site, self.source.nodes, self._plain, self._last
        out: list[Reading] = []
        for i, sample in batch:
            if plain[i] and sample.severity == "good" and not sample.problem and not self._node_faults:
                node = nodes[i]
                reading = Reading.new(ts, site, node.asset, node.signal, sample.value)
                last[i] = reading
            else:
                reading = self._reading(i, sample, ts)
            out.append(reading)
        return out

    async def _close(self, *, graceful: bool = True) -> None:
        self._last.clear()  # nothing is confirmed without a session
        conn, self.conn = self.conn, None
        if conn is not None:
            await conn.close(graceful=graceful)

    async def _ensure_open(self, loop: asyncio.AbstractEventLoop) -> list[Reading] | None:
        """The session open (readings of nodes that cannot be read), or None: unreachable (readings sent)."""
        if self.conn is not None and self.conn.connected:
            return []
        now = loop.time()
        if not self.link.may_try(now):
            return None
        try:
            bad = await self._open()
        except OpcUaError as exc:
            await self._close(graceful=False)
            self._went_down(loop.time(), exc.reason)
            return None
        downtime = self.link.answered(loop.time())
        if downtime is not None:
            log.warning("OPC UA source %s: answering again after %.1f s", self.source.id, downtime)
        self.reachable = True
        return bad

    # ------------------------------------------------------------------ the two ways of reading
    _sink: ReadingSink | None = None

    async def poll_once(self) -> list[Reading]:
        """Read every node once (connecting first if needed) and return the readings."""
        loop = asyncio.get_running_loop()
        bad = await self._ensure_open(loop)
        if bad is None:
            return self._unreachable(loop.time())
        live = [(i, h) for i, h in enumerate(self._handles) if h is not None]
        assert self.conn is not None
        try:
            samples = await self.conn.read([h for _, h in live]) if live else []
        except OpcUaError as exc:
            await self._close(graceful=False)
            self._went_down(loop.time(), exc.reason)
            return self._unreachable(loop.time())
        self.reachable = True
        batch = [(i, sample) for (i, _), sample in zip(live, samples, strict=True)]
        if len(live) == len(self._handles):  # every node resolved: the readings in the nodes' order
            return self._readings(batch)
        readings = dict(zip([i for i, _ in live], self._readings(batch), strict=True))
        readings.update({i: r for i, r in zip([i for i, h in enumerate(self._handles) if h is None],
                                               self._unresolved(), strict=True)})
        return [readings[i] for i in sorted(readings)]

    async def _watch_once(self) -> list[Reading]:
        """Subscription mode: open it if needed, else check the session; readings only for faults."""
        loop = asyncio.get_running_loop()
        opened = self.conn is None or not self.conn.connected
        bad = await self._ensure_open(loop)
        if bad is None:
            return self._unreachable(loop.time())
        if opened:
            return bad
        assert self.conn is not None
        try:
            await self.conn.check()
        except OpcUaError as exc:
            await self._close(graceful=False)
            self._went_down(loop.time(), exc.reason)
            return self._unreachable(loop.time())
        self._checks += 1
        if self._checks * self._interval_s >= self.source.bad_after_s:  # once per bad_after_s: read them all
            self._checks = 0
            live = [(i, h) for i, h in enumerate(self._handles) if h is not None]
            try:
                samples = await self.conn.read([h for _, h in live]) if live else []
            except OpcUaError as exc:
                await self._close(graceful=False)
                self._went_down(loop.time(), exc.reason)
                return self._unreachable(loop.time())
            for (i, _), sample in zip(live, samples, strict=True):
                self._reading(i, sample)  # a node deleted since, say, is BAD now (not every server notifies it)
        # the session and its subscription work: what did not change since its notification still holds
        ts = self._clock()
        return [r._replace(ts=ts) for r in self._last.values()]

    async def run(self, sink: ReadingSink, stop: asyncio.Event) -> None:
        """Read until ``stop`` is set: subscribed (checking the session) or polled, reconnecting as needed."""
        self._sink = sink
        interval = self._interval_s

        async def step() -> None:
            readings = await (self.poll_once() if self.polling else self._watch_once())
            if readings:
                sink(readings)

        try:
            await every(interval, stop, step)
        finally:
            self._sink = None
            await self._close()

    async def close(self) -> None:
        await self._close()


class OpcUaSources:
    """Reads many OPC UA servers concurrently, one task and one session each (a collector ``Source``)."""

    def __init__(self, sources: Sequence[OpcUaSource], sink: ReadingSink, *, clock: Clock = utc_now,
                 seed: int | None = None) -> None:
        rng = random.Random(seed)
        self.readers = {s.id: OpcUaReader(s, clock=clock, rng=random.Random(rng.random())) for s in sources}
        self._sink = sink

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tg:
            for r in self.readers.values():
                tg.create_task(r.run(self._sink, stop), name=f"opcua-{r.source.id}")
