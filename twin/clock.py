"""Wall-clock time, the one way every part of the product asks for it (injectable as a ``Clock``).

Defined here so there is one; ``twin`` itself never calls it (its code is given the time): the
collector, the dashboard and the commands pass ``utc_now`` in, tests pass a fixed or stepped clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

__all__ = ["Clock", "utc_now"]

Clock = Callable[[], datetime]  # the current time, timezone-aware UTC; tests pass a fixed or stepped one

# The current time, timezone-aware UTC. A partial, not a def: the Modbus poller calls it for every
# block read, and a partial of a C function adds no Python frame.
utc_now: Clock = partial(datetime.now, UTC)
