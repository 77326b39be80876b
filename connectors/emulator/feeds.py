"""Emulated ERP and logistics exports: order and shipment files for the demo, dropped atomically in a folder.

``FeedEmulator.step(to)`` brings the feeds to plant time ``to`` and writes what happened since the
last step:

* **orders** arrive at each site by its demand (``orders_per_day`` × weekday factor × hour factor,
  in the site's local time; a Poisson process drawn by thinning), ``batch_min..batch_max`` units,
  due ``due_h`` after creation; each is closed (status ``done``) after a random lead time of
  0.2–1.2 × ``due_h``, so about one in six ships late. Files ``orders-<time>-<n>.jsonl``.
* **shipments** are the plant's own (s, Q) replenishment orders (``Plant.shipments``): announced
  when placed with the nominal ETA; when the plant drew a delay of more than an hour, a new
  version with the later ETA follows at three quarters of the planned lead time; ``arrived`` when
  they arrive. Files ``shipments-<time>-<n>.csv``.

Files are written to a hidden temporary name and renamed (atomic), as an ERP export does. The same
seed and the same sequence of steps give the same files. No wall clock: times are plant times.

Usage::

    feeds = FeedEmulator(fleet, plant, Path("var/demo/feeds/in"), seed=7)
    feeds.step(plant.now)
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from connectors.emulator.plant import PlacedShipment, Plant
from twin.spec import DemandSpec, FleetSpec

__all__ = ["FeedEmulator"]

log = logging.getLogger(__name__)

_DAY_S = 86400.0
_DELAY_NOTICE = 0.75  # a delay becomes known at this share of the planned lead time
_SHIPMENT_COLUMNS = ("id", "version", "site", "sku", "qty", "origin", "eta", "planned_eta", "status")


@dataclass(slots=True)
class _Demand:
    site: str
    tz: ZoneInfo
    spec: DemandSpec
    rng: random.Random
    max_rate_per_s: float
    hour_norm: float
    next_t: datetime


@dataclass(slots=True)
class _Order:
    id: str
    site: str
    product: str
    qty: int
    created: datetime
    due: datetime
    close_at: datetime


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


class FeedEmulator:
    """Write emulated order and shipment files for ``plant`` into ``folder``."""

    def __init__(self, fleet: FleetSpec, plant: Plant, folder: Path, *, seed: int) -> None:
        self.fleet = fleet
        self.plant = plant
        self.folder = folder
        self._t = plant.start
        self._demands: list[_Demand] = []
        for site in fleet.sites:
            for d in site.demand:
                hf = d.hour_factors or (1.0,)
                norm = sum(hf) / len(hf) or 1.0
                peak = d.orders_per_day * max(d.weekday_factors or (1.0,)) * max(hf) / norm
                if peak <= 0:
                    continue
                rng = random.Random(f"{seed}:feeds:{site.id}:{d.product}")
                dem = _Demand(site=site.id, tz=ZoneInfo(site.timezone), spec=d, rng=rng,
                              max_rate_per_s=peak / _DAY_S, hour_norm=norm, next_t=self._t)
                dem.next_t = self._t + timedelta(seconds=rng.expovariate(dem.max_rate_per_s))
                self._demands.append(dem)
        self._seq: dict[str, int] = {}
        self._open: list[_Order] = []
        self._shipment_version: dict[str, int] = {}  # announced shipments and their last version
        self._files = 0
        self.orders_written = 0
        self.shipments_written = 0

    def _rate_per_s(self, d: _Demand, t: datetime) -> float:
        local = t.astimezone(d.tz)
        wfs, hfs = d.spec.weekday_factors, d.spec.hour_factors
        wf = wfs[local.weekday() % len(wfs)] if wfs else 1.0
        hf = hfs[local.hour % len(hfs)] if hfs else 1.0
        return d.spec.orders_per_day * wf * hf / d.hour_norm / _DAY_S

    def _new_orders(self, to: datetime) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for d in self._demands:
            while d.next_t <= to:
                t = d.next_t
                d.next_t = t + timedelta(seconds=d.rng.expovariate(d.max_rate_per_s))
                if d.rng.random() * d.max_rate_per_s > self._rate_per_s(d, t):
                    continue  # thinned: the rate is lower at this hour or weekday
                product = self.fleet.product(d.spec.product)
                if product is None:
                    continue
                n = self._seq[d.site] = self._seq.get(d.site, 0) + 1
                qty = d.rng.randint(product.batch_min, max(product.batch_min, product.batch_max))
                due = t + timedelta(hours=product.due_h)
                lead = timedelta(hours=product.due_h * d.rng.uniform(0.2, 1.2))
                order = _Order(id=f"{d.site}-O{n:06d}", site=d.site, product=str(product.id), qty=qty,
                               created=t, due=due, close_at=t + lead)
                self._open.append(order)
                out.append(self._order_line(order, 1, "open", 0))
        still: list[_Order] = []
        for o in sorted(self._open, key=lambda o: (o.close_at, o.id)):
            if o.close_at <= to:
                out.append(self._order_line(o, 2, "done", o.qty))
            else:
                still.append(o)
        self._open = still
        return out

    @staticmethod
    def _order_line(o: _Order, version: int, status: str, done: int) -> dict[str, object]:
        return {"id": o.id, "version": version, "site": o.site, "product": o.product, "qty": o.qty,
                "created": _iso(o.created), "due": _iso(o.due), "status": status, "done_qty": done}

    def _shipment_lines(self, to: datetime) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for s in self.plant.shipments():
            if s.ordered > to:
                continue
            delayed = s.arrival - s.planned_eta > timedelta(hours=1)
            notice = s.ordered + (s.planned_eta - s.ordered) * _DELAY_NOTICE
            steps: list[tuple[str, datetime]] = [("in_transit", s.planned_eta)]
            if delayed and notice <= to and notice < s.arrival:
                steps.append(("in_transit", s.arrival))
            if s.arrival <= to:
                steps.append(("arrived", s.arrival))
            done = self._shipment_version.get(s.id, 0)
            for version, (status, eta) in enumerate(steps, start=1):
                if version > done:
                    out.append(self._shipment_line(s, version, status, eta))
            self._shipment_version[s.id] = len(steps)
        return out

    @staticmethod
    def _shipment_line(s: PlacedShipment, version: int, status: str, eta: datetime) -> dict[str, object]:
        return {"id": s.id, "version": version, "site": s.site, "sku": s.sku, "qty": f"{s.qty:g}",
                "origin": s.origin, "eta": _iso(eta), "planned_eta": _iso(s.planned_eta), "status": status}

    def step(self, to: datetime) -> list[Path]:
        """Bring the feeds to plant time ``to`` (never backwards); returns the files written."""
        if to < self._t:
            raise ValueError(f"cannot go back in time: feeds at {self._t.isoformat()}, "
                             f"asked {to.isoformat()}")
        self._t = to
        orders = self._new_orders(to)
        shipments = self._shipment_lines(to)
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
