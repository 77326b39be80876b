"""A collector stand-in for the SIGKILL test: heavy writes through store-and-forward, each ack printed.

Usage: python kill_writer.py PATH FIRST_ID BATCH INFLUX_URL. Reading ``i`` has value ``i``, timestamp
T0 + i ms and one of 10 signals; every batch also carries one event (data ``last`` = its last id) and
goes to the SQLite store with its line protocol in the outbox, then to InfluxDB at INFLUX_URL (down
in the test: the backlog grows). After ``write`` returns (committed: the acknowledgement), the batch's
last id is printed.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from connectors.forward import StoreAndForward
from connectors.influx.historian import InfluxHistorian
from connectors.influx.lineproto import batch_lines
from connectors.store import SqliteHistorian
from twin.frozen import FrozenDict
from twin.readings import Quality, Reading
from twin.spec import FleetSpec, SiteId
from twin.state import Event, EventKind

T0 = datetime(2026, 1, 5, tzinfo=UTC)
FLEET = FleetSpec(id="f", name="F", sites=(), templates=())


def batch(first: int, n: int) -> tuple[list[Reading], list[Event]]:
    readings = [Reading(ts=T0 + timedelta(milliseconds=i), site="s1", asset="A", signal=f"x{i % 10}", value=i)
                for i in range(first, first + n)]
    # one BAD reading with a reason per batch on its own signal: the reasons table is written too
    readings.append(Reading(ts=T0 + timedelta(milliseconds=first), site="s1", asset="A", signal="bad",
                            value=None, quality=Quality.BAD, reason=f"exception 4 at {first}"))
    last = first + n - 1
    events = [Event(ts=T0 + timedelta(milliseconds=last), site=SiteId("s1"), asset="A", kind=EventKind.QUALITY_CHANGE,
                    message=f"batch up to {last}", data=FrozenDict({"last": last}))]
    return readings, events


def main() -> None:
    path, first, size, url = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    store = SqliteHistorian(path, FLEET, outbox=batch_lines)
    saf = StoreAndForward(store, InfluxHistorian(url, "org", "plant", "t", FLEET, timeout_s=1),
                          backoff_s=(0.2, 1.0))
    i = first
    for _ in range(10_000):  # bounded; the test kills us long before
        readings, events = batch(i, size)
        saf.write(readings, events=events)
        i += size
        print(i - 1, flush=True)


if __name__ == "__main__":
    main()
