"""A running plant for end-to-end tests: emulated PLCs + collector + dashboard, all on 127.0.0.1.

``running_plant(tmp, ...)`` writes a copy of the example fleet with free Modbus ports and its own
SQLite store into ``tmp``, backfills a short EMULATED history, then runs the PLC emulator, the
emulated order/shipment exports and the collector (the real ``connectors.emulator.Emulator``,
``connectors.emulator.feeds.FeedEmulator``, ``connectors.feeds`` file drop and
``connectors.collector.Collector``) in an asyncio loop on a background thread, and serves the
dashboard (real what-if engine) from another thread. Everything is stopped when the context ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tomli_w
from serve import serving

from connectors.collector import Collector, resume_state
from connectors.config import PlantConfig, load
from connectors.emulator.backfill import backfill
from connectors.emulator.feeds import FeedEmulator
from connectors.emulator.server import Emulator
from connectors.feeds.drop import FileDrop
from connectors.feeds.intake import Intake
from connectors.feeds.ledger import Ledger
from connectors.store import SqliteHistorian
from dashboard.app import create_app
from dashboard.attention import AttentionService, AttentionSettings
from dashboard.auth import AuthSettings
from dashboard.queries import QueryService
from dashboard.services import Services
from dashboard.whatif_engine import EngineRunner
from twin.historian import WriterRecorder

ROOT = Path(__file__).resolve().parents[2]
SEED = 7
LOW_STOCK = ("pod-berlin", "PLA-1KG", 4.0)  # starts below its reorder point (12 kg): a stock alarm


_EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ROUND_THE_CLOCK = [{"name": "day", "days": _EVERY_DAY, "start": "06:00", "end": "18:00"},
                   {"name": "night", "days": _EVERY_DAY, "start": "18:00", "end": "06:00"}]  # ends the next day


def write_config(tmp: Path, ports: Iterator[int], *, stale_after_polls: int, round_the_clock: bool = True) -> Path:
    """A copy of examples/fleet.toml with free ports, a store in ``tmp`` and one item short of stock.

    With ``round_the_clock`` every site works all day, every day, with no holidays: the emulated
    machines make parts only inside their shifts, and tests that watch values move must pass on a
    Sunday night too. (The screenshots keep the example's shifts.)
    """
    data: dict[str, Any] = tomllib.loads((ROOT / "examples" / "fleet.toml").read_text())
    if round_the_clock:
        for s in data["sites"]:
            s["shifts"] = ROUND_THE_CLOCK
            s.pop("holidays", None)
    data["fleet"]["stale_after_polls"] = stale_after_polls
    data["historian"]["path"] = str(tmp / "twin.sqlite")
    data["historian"]["checkpoint_interval_s"] = 30
    data["feeds"] = {"drop_dir": str(tmp / "feeds" / "in"), "poll_s": 0.5, "ledger": str(tmp / "feeds.db")}
    moved: dict[int, int] = {}
    for src in data["sources"]["modbus"]:
        src["port"] = moved.setdefault(src["port"], next(ports))
    site, sku, qty = LOW_STOCK
    for s in data["sites"]:
        for item in s["inventory"] if s["id"] == site else []:
            if item["sku"] == sku:
                item["initial_on_hand"] = qty
    path = tmp / "fleet.toml"
    path.write_text(tomli_w.dumps(data))
    return path


@dataclass
class RunningPlant:
    """Handles on the running parts."""

    config: PlantConfig
    url: str
    emulator: Emulator
    collector: Collector
    services: Services
    history_start: datetime

    def device_of(self, site: str, kind: str = "cell") -> str:
        return next(d.id for d in self.config.modbus if d.site == site and d.id.endswith(kind))


class _Loop:
    """Emulator and collector in one asyncio loop on a thread."""

    def __init__(self, cfg: PlantConfig, historian: SqliteHistorian, history_start: datetime, speed: float) -> None:
        now = datetime.now(UTC)
        self.emulator = Emulator(cfg.fleet, cfg.modbus, seed=SEED, speed=speed, start=history_start, resume_at=now)
        self.collector = Collector(cfg.fleet, cfg.modbus, sink=historian, flush_interval_s=0.5,
                                   checkpoint_interval_s=30.0, state=resume_state(cfg.fleet, historian, now))
        assert cfg.feeds is not None and cfg.feeds.drop_dir is not None
        self.ledger = Ledger(cfg.feeds.ledger_path(cfg.historian.path))
        # the feed exports start at the history's start: the first step drops that history's orders
        self.feeds = FeedEmulator(cfg.fleet, self.emulator.plant, cfg.feeds.drop_dir, seed=SEED)
        self.collector.add_source(FileDrop(cfg.feeds.drop_dir, Intake(cfg.fleet, self.ledger), self.collector.submit,
                                           poll_s=cfg.feeds.poll_s, rejects_log=cfg.feeds.rejects_log))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="e2e-plant", daemon=True)

    def _main(self) -> None:
        async def go() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.emulator.run(self._stop))
                tg.create_task(self.collector.run(self._stop))
                tg.create_task(self._exports(self._stop))

        try:
            asyncio.run(go())
        except BaseException as exc:  # reported by stop()
            self.error = exc
            self._ready.set()

    async def _exports(self, stop: asyncio.Event) -> None:
        """The ERP/logistics exports: order and shipment files every second of wall time."""
        while not stop.is_set():
            self.feeds.step(self.emulator.plant.now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed between the check and the call
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        assert not self._thread.is_alive(), "emulator/collector loop did not stop"
        self.ledger.close()
        if self.error is not None:
            raise self.error


@contextmanager
def running_plant(tmp: Path, ports: Iterator[int], *, history: timedelta, step_s: float, stale_after_polls: int,
                  speed: float = 60.0, auth: AuthSettings | None = None,
                  round_the_clock: bool = True) -> Iterator[RunningPlant]:
    path = write_config(tmp, ports, stale_after_polls=stale_after_polls, round_the_clock=round_the_clock)
    cfg = load(path)
    now = datetime.now(UTC)
    start = now - history
    with ExitStack() as stack:
        writer = SqliteHistorian(cfg.historian.path, cfg.fleet)
        stack.callback(writer.close)
        backfill(cfg.fleet, writer, start=start, end=now, step_s=step_s, seed=SEED, checkpoint_every_s=600.0)
        loop = _Loop(cfg, writer, start, speed)
        loop.start()
        stack.callback(loop.stop)
        deadline = time.monotonic() + 60
        while loop.collector.flushes < 3 or loop.collector.readings_written == 0:
            assert time.monotonic() < deadline, "the collector wrote nothing"
            time.sleep(0.2)
        reader = SqliteHistorian(cfg.historian.path, cfg.fleet)  # the dashboard's own connection (acks write)
        stack.callback(reader.close)
        queries = QueryService(fleet=cfg.fleet, historian=reader, clock=lambda: datetime.now(UTC), ttl_s=1.0,
                               recorder=WriterRecorder(reader))
        queries.start_refresher()
        stack.callback(queries.stop_refresher)
        fleet, store = cfg.fleet, cfg.historian.path
        runner = EngineRunner(fleet=fleet, open_historian=lambda: SqliteHistorian(store, fleet, readonly=True),
                              workers=0, calibrate_days=1.0)
        # the attention list rebuilt every refresh (1 s), as twin dashboard --refresh 1 does; stopped first
        attention = AttentionService(queries=queries, settings=AttentionSettings(list_every_s=1.0))
        stack.callback(attention.stop)
        services = Services(queries=queries, whatif=runner, cache_dir=tmp / "jobs", extra={"attention": attention})
        app = create_app(services, auth=auth, refresh_s=1.0)
        url = stack.enter_context(serving(app, next(ports)))
        yield RunningPlant(config=cfg, url=url, emulator=loop.emulator, collector=loop.collector,
                           services=services, history_start=start)
