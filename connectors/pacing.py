"""Fixed-rate loops for pollers: run a step every interval until stopped, skipping missed ticks.

Used by the Modbus device pollers and the InfluxDB feed pollers, so both keep their configured rate
the same way: a step that overruns its interval starts the next one at once, and the missed ticks are
dropped rather than queued (a slow device never builds up a burst of catch-up reads).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

__all__ = ["every"]


async def every(interval_s: float, stop: asyncio.Event, step: Callable[[], Awaitable[None]]) -> None:
    """Await ``step()`` every ``interval_s`` seconds (loop time) until ``stop`` is set."""
    loop = asyncio.get_running_loop()
    next_t = loop.time()
    while not stop.is_set():
        await step()
        next_t += interval_s
        now = loop.time()
        if next_t < now:
            next_t = now
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=next_t - now)
