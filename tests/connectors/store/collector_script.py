"""A stand-in collector for the crash test: writes batches, prints each acknowledged last id.

Usage: python collector_script.py PATH BATCH_SIZE. Reading ``i`` has value ``i`` and timestamp
T0 + i ms, spread over 10 signals; after ``write`` returns, the batch's last ``i`` is printed.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from connectors.store import SqliteHistorian
from twin.readings import Reading
from twin.spec import FleetSpec

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def main() -> None:
    path, batch = sys.argv[1], int(sys.argv[2])
    h = SqliteHistorian(path, FleetSpec(id="f", name="F", sites=(), templates=()))
    i = 0
    for _ in range(100_000):  # bounded; the test kills us long before
        rows = [Reading(ts=T0 + timedelta(milliseconds=j), site="s1", asset="A", signal=f"x{j % 10}", value=j)
                for j in range(i, i + batch)]
        h.write(rows)
        i += batch
        print(i - 1, flush=True)


if __name__ == "__main__":
    main()
