"""The orders and shipments feeds: how open orders and inbound shipments from ERP/logistics enter the twin.

``parse`` reads CSV / JSON Lines files and JSON bodies into ``twin.business`` records, one reason per
bad record; ``ledger`` keeps the highest version of every id in SQLite (idempotence, durability);
``intake`` checks records against the fleet and commits them; ``drop`` watches a folder and
``endpoint`` serves ``POST /api/v1/orders`` and ``/api/v1/shipments``. Both hand the committed records
to the collector (``Collector.submit``), which folds them in with ``twin.business.apply_records``.
"""

from __future__ import annotations

__all__: list[str] = []
