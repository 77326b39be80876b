"""Emulated ERP and logistics exports: the plant's order and shipment records as files dropped atomically in a folder.

The plant (``connectors.emulator.plant.Plant``) makes the records: an order's versions as it
arrives, moves along its routing (``operation``), finishes units at each step (``done_by_step``, a
JSON array of the good units through each routing step) and through the whole routing
(``done_qty``), and closes; a
replenishment shipment announced in transit, re-announced with a later ETA when delayed, and
arrived. ``FeedEmulator.step(to)`` only writes the versions ``plant.take_records()`` returned since
the last step (the plant must have been advanced to ``to`` first):

* **orders** as JSON Lines, files ``orders-<time>-<n>.jsonl``;
* **shipments** as CSV, files ``shipments-<time>-<n>.csv``.

Files are written to a hidden temporary name and renamed (atomic), as an ERP export does. The same
plant seed and the same sequence of steps give the same files. No wall clock: times are plant times.

Usage::

    feeds = FeedEmulator(fleet, plant, Path("var/demo/feeds/in"), seed=7)
    plant.advance(t)
    feeds.step(t)
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from datetime import datetime
from pathlib import Path

from connectors.emulator.plant import Plant
from twin.business import BusinessRecord, OrderRecord, ShipmentRecord
from twin.spec import FleetSpec

__all__ = ["FeedEmulator"]

log = logging.getLogger(__name__)

_SHIPMENT_COLUMNS = ("id", "version", "site", "sku", "qty", "origin", "eta", "planned_eta", "status")


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


def _order_line(o: OrderRecord) -> dict[str, object]:
    line: dict[str, object] = {
        "id": o.id, "version": o.version, "site": o.site, "product": o.product, "qty": o.qty,
        "created": _iso(o.created), "due": _iso(o.due), "status": o.status.value, "done_qty": o.done_qty,
        "operation": o.operation}
    if o.done_by_step:
        line["done_by_step"] = list(o.done_by_step)
    return line


def _shipment_line(s: ShipmentRecord) -> dict[str, object]:
    return {"id": s.id, "version": s.version, "site": s.site, "sku": s.sku, "qty": f"{s.qty:g}", "origin": s.origin,
            "eta": _iso(s.eta), "planned_eta": _iso(s.planned_eta) if s.planned_eta is not None else "",
            "status": s.status.value}


class FeedEmulator:
    """Write the emulated order and shipment records of ``plant`` into ``folder``.

    ``fleet`` and ``seed`` are kept for the callers' sake: the records and their randomness are the plant's.
    """

    def __init__(self, fleet: FleetSpec, plant: Plant, folder: Path, *, seed: int,
                 after: datetime | None = None) -> None:
        self.fleet = fleet
        self.plant = plant
        self.folder = folder
        self.seed = seed
        self.after = after  # records at or before it are not written (a backfill committed them)
        self._t = plant.start
        self._files = 0
        self._pending: list[tuple[datetime, BusinessRecord]] = []
        self.orders_written = 0
        self.shipments_written = 0

    def step(self, to: datetime) -> list[Path]:
        """Bring the feeds to plant time ``to`` (never backwards); returns the files written."""
        if to < self._t:
            raise ValueError(f"cannot go back in time: feeds at {self._t.isoformat()}, "
                             f"asked {to.isoformat()}")
        self._t = to
        orders: list[dict[str, object]] = []
        shipments: list[dict[str, object]] = []
        self._pending.extend(self.plant.take_records())
        due = [r for t, r in self._pending if t <= to and (self.after is None or t > self.after)]
        self._pending = [(t, r) for t, r in self._pending if t > to]  # the plant ran ahead: written later
        for record in due:
            if isinstance(record, OrderRecord):
                orders.append(_order_line(record))
            else:
                shipments.append(_shipment_line(record))
        written: list[Path] = []
        stamp = to.strftime("%Y%m%dT%H%M%SZ")
        if orders:
            text = "".join(json.dumps(o, sort_keys=True) + "\n" for o in orders)
            written.append(self._write(f"orders-{stamp}-{self._files:05d}.jsonl", text))
            self.orders_written += len(orders)
        if shipments:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=_SHIPMENT_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(shipments)
            written.append(self._write(f"shipments-{stamp}-{self._files:05d}.csv", buf.getvalue()))
            self.shipments_written += len(shipments)
        return written

    def _write(self, name: str, text: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._files += 1
        tmp = self.folder / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        target = self.folder / name
        os.replace(tmp, target)  # atomic: the watcher never sees a half-written file
        return target
