"""Fixtures of the reliability tests: the Modbus test fleet on free ports, and a collector run under faults.

``collecting`` starts the emulator (plant time frozen unless a test advances it: ``speed=0``) and the
real collector loop (poller + twin + sink) as an asyncio task; on exit it stops both and awaits the
collector, so any exception that reached its top level fails the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from connectors.collector import Collector
from connectors.config import PlantConfig, load_text
from connectors.emulator.server import Emulator
from tests.conftest import free_port
from tests.connectors.modbus.conftest import FLEET, IN_SHIFT, fleet_text
from twin.readings import Reading
from twin.state import Event, SiteState, TwinState


def fleet_cfg(text_edit: Callable[[str], str] = lambda t: t) -> PlantConfig:
    """The Modbus test fleet (two sites, three devices, 0.1 s polls) on free ports, optionally edited."""
    text = fleet_text(p15020=free_port(), p15021=free_port(), p15022=free_port())
    return load_text(text_edit(text), source=FLEET)


@pytest.fixture
def modbus_cfg() -> PlantConfig:
    return fleet_cfg()


def run(coro_fn: Callable[[], Awaitable[Any]], timeout_s: float = 30.0) -> Any:
    """Run an async test body with a hard bound on its duration."""
    async def bounded() -> Any:
        return await asyncio.wait_for(coro_fn(), timeout_s)
    return asyncio.run(bounded())


@dataclass
class Recorder:
    """A collector sink keeping every batch, with the loop time it arrived and the twin state after it."""

    loop: asyncio.AbstractEventLoop
    collector: Collector | None = None
    readings: list[tuple[float, Reading]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    states: list[tuple[float, TwinState]] = field(default_factory=list)

    def write(self, readings: Sequence[Reading], states: Sequence[SiteState] = (),
              events: Sequence[Event] = ()) -> None:
        t = self.loop.time()
        self.readings.extend((t, r) for r in readings)
        self.events.extend(events)
        if self.collector is not None:
            self.states.append((t, self.collector.state))  # flush sets the new state before writing

    def of(self, asset: str, signal: str, t0: float = 0.0, t1: float = float("inf"),
           site: str | None = None) -> list[Reading]:
        return [r for t, r in self.readings
                if t0 <= t < t1 and r.asset == asset and r.signal == signal and (site is None or r.site == site)]


@dataclass
class Rig:
    """A running emulator and collector."""

    emu: Emulator
    collector: Collector
    sink: Recorder
    loop: asyncio.AbstractEventLoop

    def now(self) -> float:
        return self.loop.time()

    async def wait_for(self, cond: Callable[[], bool], timeout_s: float = 5.0, what: str = "condition") -> None:
        """Poll ``cond`` every 20 ms; fail after ``timeout_s``."""
        deadline = self.loop.time() + timeout_s
        while not cond():
            if self.loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.02)


@asynccontextmanager
async def collecting(cfg: PlantConfig, *, seed: int = 1, speed: float = 0.0, tick: bool = False,
                     not_emulated: frozenset[str] = frozenset(), start: datetime = IN_SHIFT) -> AsyncIterator[Rig]:
    """The emulator of ``cfg`` serving, and ``Collector`` running its loop, until the block ends.

    With ``tick`` the emulator's own loop refreshes the images every 0.1 s (plant time at ``speed``);
    otherwise tests change plant time and images themselves. Plant time starts at ``start`` (by
    default a time when both sites are working). Devices in ``not_emulated`` are polled but not
    served by the emulator (a test serves them its own way).
    """
    loop = asyncio.get_running_loop()
    emu = Emulator(cfg.fleet, [d for d in cfg.modbus if d.id not in not_emulated], seed=seed, speed=speed,
                   start=start)
    stop_emu = asyncio.Event()
    emu_task: asyncio.Task[None] | None = None
    if tick:
        emu_task = asyncio.create_task(emu.run(stop_emu))
        await asyncio.sleep(0.05)
    else:
        await emu.start()
    sink = Recorder(loop)
    col = Collector(cfg.fleet, cfg.modbus, sink, flush_interval_s=0.1, seed=seed)
    sink.collector = col
    stop = asyncio.Event()
    task = asyncio.create_task(col.run(stop))
    try:
        yield Rig(emu=emu, collector=col, sink=sink, loop=loop)
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 5.0)  # an exception in the collector loop surfaces here
        finally:
            stop_emu.set()
            if emu_task is not None:
                await emu_task
            else:
                await emu.stop()
