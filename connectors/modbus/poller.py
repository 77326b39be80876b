"""The Modbus poller: one asyncio task and one connection per device, turning registers into readings.

Each device is polled at its own fixed rate by its own task under one ``TaskGroup``, so a dead or
slow device never delays the others. Every request has a timeout; a failed request makes only its
own points BAD (with the reason, e.g. ``exception 2: illegal data address``); a lost connection
makes the device's points STALE at once and BAD once ``bad_after_s`` have passed since its last
answered read, whatever reconnects happen in between (a device that accepts connections but never
answers goes BAD like one that refuses them); the connection is re-opened with exponential backoff
and jitter (also when it connects and then fails again): ``connectors.linkhealth``, as for the
InfluxDB feed and store-and-forward. An answer that does not fit its request
(another function code or transaction id, more bytes than one answer) resets the connection. The
same failure is logged once when it starts and once when it ends, never on every poll: a failure
is its kind (exception, timeout, protocol), so an exception code changing every poll is one
failure. Readings carry the UTC time their block was read and go to a ``sink`` callback.
``Poller`` is a ``connectors.collector.Source`` like the InfluxDB feed: ``run(stop)``.

Usage::

    poller = Poller(cfg.modbus, sink=lambda readings: print(len(readings)))
    await poller.run(stop_event)
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence

from connectors.linkhealth import Backoff, Change, LinkHealth, PartFaults
from connectors.modbus.client import ConnectFailed, Failure, ModbusConnection
from connectors.modbus.points import Block, BlockDecoder, plan_blocks
from connectors.modbus.spec import ModbusDevice, RegisterKind, exception_reason
from connectors.pacing import every
from twin.clock import Clock, utc_now
from twin.readings import Quality, Reading

__all__ = ["DevicePoller", "Poller", "ReadingSink"]

log = logging.getLogger(__name__)

ReadingSink = Callable[[Sequence[Reading]], None]


_ILLEGAL_ADDRESS = exception_reason(2)


def _key(block: Block) -> tuple[RegisterKind, int, int]:
    return block.kind, block.address, block.count


def _within(outer: Block, inner: Block) -> bool:
    """Whether ``inner`` is a part of ``outer`` (the same table, inside its addresses)."""
    return (inner.kind is outer.kind and outer.address <= inner.address
            and inner.address + inner.count <= outer.address + outer.count)


class DevicePoller:
    """Polls one device over one connection. ``poll_once`` reads every block once.

    ``reachable`` tells whether the last poll got through to the device; ``link`` is its health
    (down since when and why, the backoff). Counters ``block_reads`` (answered requests) and
    ``failed_reads`` serve tests and the benchmark.
    """

    def __init__(self, device: ModbusDevice, *, clock: Clock = utc_now, rng: random.Random | None = None) -> None:
        self.device = device
        self.blocks: tuple[Block, ...] = plan_blocks(
            device.points, max_registers=device.max_registers_per_request,
            max_bits=device.max_bits_per_request, max_gap=device.max_gap,
        )
        self._decoders = tuple(BlockDecoder(b) for b in self.blocks)  # one compiled decoder per block
        self.conn = ModbusConnection(device.host, device.port, device_id=device.device_id,
                                     timeout_s=device.timeout_s)
        self._clock = clock
        # loop times; down since the first failure after the last answered read
        self.link = LinkHealth(bad_after_s=device.bad_after_s,
                               backoff=Backoff(device.reconnect_min_s, device.reconnect_max_s, jitter=True,
                                               rng=rng or random.Random()))
        self._block_errors: PartFaults[tuple[RegisterKind, int, int], Failure] = PartFaults()  # as reported
        self.splits = 0  # blocks split to isolate addresses the device lacks (exception 2)
        self._split_logged: list[Block] = []
        self.reachable = False
        self.block_reads = 0
        self.failed_reads = 0

    def close(self) -> None:
        self.conn.close()

    def _went_down(self, now: float, reason: str, *, back_off: bool = True) -> None:
        if self.link.fail(now, reason, back_off=back_off) is Change.DOWN:  # a new reason while down: not logged
            log.warning("device %s (%s:%d): %s; its points are STALE, BAD after %g s",
                        self.device.id, self.device.host, self.device.port, reason, self.device.bad_after_s)
        self.reachable = False

    def _split(self, i: int) -> None:
        """Replace block ``i`` by two blocks of half its points each (its read answered exception 2).

        As commercial drivers do with a device lacking some registers (libmodbus-style servers
        refuse a whole request for one missing address): halving again where the exception
        persists isolates the missing points in log2(points) steps; the others read GOOD. The
        finer blocks are kept for the following polls (until the collector restarts).
        """
        block, d = self.blocks[i], self.device
        half = len(block.points) // 2
        parts = tuple(b for pts in (block.points[:half], block.points[half:])
                      for b in plan_blocks(pts, max_registers=d.max_registers_per_request,
                                           max_bits=d.max_bits_per_request, max_gap=d.max_gap))
        if not any(_within(logged, block) for logged in self._split_logged):  # once per block of the plan
            self._split_logged.append(block)
            log.warning("device %s: %s %d+%d answers %s: reading it in smaller blocks to find the points "
                        "at missing addresses", d.id, block.kind.value, block.address, block.count, _ILLEGAL_ADDRESS)
        self.splits += 1
        self.blocks = (*self.blocks[:i], *parts, *self.blocks[i + 1:])
        self._decoders = (*self._decoders[:i], *(BlockDecoder(b) for b in parts), *self._decoders[i + 1:])

    def _answered(self, now: float) -> None:
        """The first answered read since the device went down: it is up again."""
        downtime = self.link.answered(now)
        assert downtime is not None
        log.warning("device %s: answering again after %.1f s", self.device.id, downtime)

    def _unreachable(self, now: float, points: Sequence[Block] | None = None) -> list[Reading]:
        quality = self.link.quality(now)
        ts = self._clock()
        site = self.device.site
        reason = self.link.reason
        new = Reading.new
        return [new(ts, site, p.asset, p.signal, None, quality, reason)
                for b in (points if points is not None else self.blocks) for p in b.points]

    async def poll_once(self) -> list[Reading]:
        """Read every block once (connecting first if needed) and return the readings."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        link = self.link
        if not self.conn.connected:
            if not link.may_try(now):
                return self._unreachable(now)
            try:
                await self.conn.connect()
            except ConnectFailed as exc:
                now = loop.time()
                self._went_down(now, exc.reason)
                return self._unreachable(now)
            # connected; the device counts as up again only once it answers (see _answered)
        readings: list[Reading] = []
        new = Reading.new
        bad = Quality.BAD
        site = self.device.site
        pause = self.device.pause_s
        read = self.conn.read
        i = -1
        while i + 1 < len(self.blocks):
            i += 1
            block = self.blocks[i]
            if i and pause:
                await asyncio.sleep(pause)
            result = await read(block.kind, block.address, block.count)
            ts = self._clock()
            if result.values is not None:
                self.block_reads += 1
                if link.down_since is not None:
                    self._answered(loop.time())
                readings += self._decoders[i].readings(result.values, ts, site)
                if self._block_errors and self._block_errors.cleared(_key(block)):
                    log.warning("device %s: %s %d+%d answers again", self.device.id, block.kind.value,
                                block.address, block.count)
                continue
            self.failed_reads += 1
            failure = result.failure
            if failure is Failure.EXCEPTION:
                if link.down_since is not None:
                    self._answered(loop.time())  # an exception response is an answer: the link is up
                if result.reason == _ILLEGAL_ADDRESS and len(block.points) > 1:
                    self._split(i)
                    i -= 1  # read its first half now: only the points at missing addresses go BAD
                    continue
            if failure is Failure.EXCEPTION or failure is Failure.PROTOCOL or (
                failure is Failure.TIMEOUT and self.conn.connected
            ):
                reset = failure is Failure.TIMEOUT or not self.conn.connected  # the device is down: logged so
                if not reset and self._block_errors.failed(_key(block), failure):  # a new failure
                    log.warning("device %s: read of %s %d+%d failed: %s", self.device.id, block.kind.value,
                                block.address, block.count, result.reason)
                reason = result.reason
                readings.extend(new(ts, site, p.asset, p.signal, None, bad, reason) for p in block.points)
                if reset:
                    # the link is suspect (or the client reset it): start over on a fresh one, with backoff
                    self.conn.close()
                    now = loop.time()
                    self._went_down(now, f"no answer ({reason})" if failure is Failure.TIMEOUT else reason)
                    readings.extend(self._unreachable(now, self.blocks[i + 1:]))
                    return readings
                continue
            now = loop.time()  # the connection is gone: this and the remaining blocks are STALE
            self.conn.close()
            # it was answering: try again at once; lost again before a single answer: back off as for
            # a refused connection
            self._went_down(now, result.reason or "connection lost", back_off=not link.up)
            readings.extend(self._unreachable(now, self.blocks[i:]))
            return readings
        self.reachable = True
        return readings

    async def run(self, sink: ReadingSink, stop: asyncio.Event) -> None:
        """Poll at the device's fixed rate until ``stop`` is set; missed ticks are skipped, not queued."""

        async def step() -> None:
            readings = await self.poll_once()
            if readings:
                sink(readings)

        try:
            await every(self.device.poll_interval_s, stop, step)
        finally:
            self.close()


class Poller:
    """Polls many devices concurrently: one task and one connection per device, under a ``TaskGroup``."""

    def __init__(self, devices: Sequence[ModbusDevice], sink: ReadingSink, *, clock: Clock = utc_now,
                 seed: int | None = None) -> None:
        rng = random.Random(seed)
        self.devices = {d.id: DevicePoller(d, clock=clock, rng=random.Random(rng.random())) for d in devices}
        self._sink = sink

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tg:
            for dp in self.devices.values():
                tg.create_task(dp.run(self._sink, stop), name=f"modbus-poll-{dp.device.id}")
