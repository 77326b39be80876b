"""The embedded historian: one SQLite file in WAL mode, written by the collector, read by anyone.

One job a module: ``schema`` (tables, the row encoding of a reading, epoch microseconds),
``historian`` (``SqliteHistorian``: open, write, read, replay), ``ingest`` (the write path of
readings), ``rollups`` (the rollups kept at write time), ``replay`` (the replay shortcut of
``state_at``), ``retention`` (raw horizon, checkpoint thinning) and ``outbox`` (batches waiting
for a forwarder).
"""

from __future__ import annotations

from connectors.store.historian import SqliteHistorian
from connectors.store.outbox import OutboxBuilder
from connectors.store.retention import CHECKPOINT_KEEP_S
from connectors.store.schema import SCHEMA_VERSION, from_us, to_us

__all__ = ["CHECKPOINT_KEEP_S", "SCHEMA_VERSION", "OutboxBuilder", "SqliteHistorian", "from_us", "to_us"]
