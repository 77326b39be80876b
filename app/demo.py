"""``twin demo``: the whole product on one machine, on EMULATED data, in one command.

1. validates the plant configuration, writes a demo copy of it (embedded SQLite store in
   ``--data-dir``, the PLCs on 127.0.0.1, the feeds' file drop and endpoint) and prints its path,
   for the other commands (``twin replay``, ``twin whatif``...);
2. backfills ``--days`` (8) of EMULATED history from the seeded plant process (with the hidden truth
   of ``--truth``; with the example fleet ``examples/demo-truth.toml`` by default, whose faults, late
   boxes (material shortage), over-temperature episode and alarm flood give the Shift and Alarms pages
   and the report something to show), faster than real time, as ``twin backfill`` does: readings, events and the
   plant's orders and shipments (through the feeds ledger), so the what-ifs can calibrate from a
   week of history and a fork into any past moment starts from the orders and shipments of then.
   The last day is sampled every ``BACKFILL_STEP_S``, older days every ``OLDER_STEP_S`` (the demo's
   stale threshold covers both);
3. starts the emulated PLCs and OPC UA server (``twin emulate``, continuing that history: same seed,
   truth and start; with ``--opcua-site auto``, the default, a mixed site: pod-berlin's printers
   P1-P4, the first cell's machines of its first register map, are served over OPC UA on
   ``--opcua-port`` instead of Modbus, the rest of the site stays on Modbus;
   also writing emulated order and shipment files into ``DATA_DIR/feeds/in``, which repeat the
   backfilled records first: the ledger takes them as duplicates), the collector
   (``twin collect``, resuming the twin's totals from the history and taking the feed files) and the dashboard
   (``twin dashboard``, which acknowledges alarms through the collector's endpoint), each as its
   own process on 127.0.0.1;
4. prints the dashboard's URL once everything answers, then waits. Ctrl-C (or SIGTERM) stops
   every process it started, cleanly, and nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import tomli_w

from twin.clock import utc_now

if TYPE_CHECKING:
    from connectors.config.modbus import ModbusDeviceModel
    from connectors.config.opcua import OpcUaSourceModel
    from connectors.config.schema import PlantModel
    from connectors.emulator.truth import Truth
    from twin.spec import FleetSpec

__all__ = [
    "BACKFILL_STEP_S",
    "DEFAULT_CONFIG",
    "DEFAULT_DAYS",
    "DEMO_CHECKPOINT_S",
    "DEMO_POLL_S",
    "DEMO_TRUTH",
    "FINE_HOURS",
    "OLDER_ORDERS_EVERY_S",
    "OLDER_STEP_S",
    "STALE_AFTER_S",
    "register",
    "run",
]

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("examples") / "fleet.toml"
# the example fleet's demo truth: examples/truth.toml and the disturbances of a realistic alarm and downtime
# history (faults with codes, late boxes, an over-temperature episode, an alarm flood; see the file)
DEMO_TRUTH = Path("examples") / "demo-truth.toml"
# The last FINE_HOURS of emulated history are sampled every BACKFILL_STEP_S and older days every
# OLDER_STEP_S (8 days: 1,440 + 2,016 samples instead of 11,520; ~21 s CPU, see
# bench/backfill_bench.py --demo); a site's order and shipment changes before those hours are
# checkpointed once per OLDER_ORDERS_EVERY_S (a checkpoint is a whole site state, tens of kB: one
# per change is the biggest cost after the readings). Live polling runs every DEMO_POLL_S and a
# signal counts as stale after STALE_AFTER_S, which covers the history's spacing: replaying the
# emulated history (or forking a what-if from it) never shows gaps between samples as stale data.
DEFAULT_DAYS = 8.0
BACKFILL_STEP_S = 60.0
OLDER_STEP_S = 300.0
FINE_HOURS = 24.0
OLDER_ORDERS_EVERY_S = 3600.0
DEMO_POLL_S = 5.0
STALE_AFTER_S = OLDER_STEP_S
DEMO_FORECAST_MIN = 5.0  # the demo's forecaster (predictive alarms) runs every 5 minutes
DEMO_CHECKPOINT_S = 60.0  # the twin's state checkpointed every minute, unless the plant file says otherwise


def _fine_from(fleet: FleetSpec, truth: Truth | None, history_from: datetime, now: datetime) -> datetime:
    """Where the history starts to be sampled every ``BACKFILL_STEP_S``.

    The last ``FINE_HOURS``, and from 10 minutes before the truth's first episode (a chattering
    alarm is only seen as such at the fine step).
    """
    fine = now - timedelta(hours=FINE_HOURS)
    if truth is not None:
        from connectors.emulator.backfill import episode_spans

        starts = [t for _, t in episode_spans(fleet, truth, history_from, now)]
        fine = min([fine, *(t - timedelta(minutes=10) for t in starts)])
    return max(history_from, fine)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="emulated PLCs + collector + dashboard on emulated data, in one command")
    p.add_argument("config", nargs="?", default=str(DEFAULT_CONFIG),
                   help=f"plant configuration (default {DEFAULT_CONFIG})")
    p.add_argument("--data-dir", type=Path, default=Path("var") / "demo", help="where the demo keeps its files")
    p.add_argument("--port", type=int, default=8050, help="dashboard port (default 8050)")
    p.add_argument("--feeds-port", type=int, default=8081,
                   help="port of the orders/shipments endpoint on 127.0.0.1 (default 8081)")
    p.add_argument("--modbus-port-base", type=int, default=0, metavar="PORT",
                   help="move the emulated PLCs to consecutive ports from PORT (default: the configured ports)")
    p.add_argument("--opcua-site", default="auto", metavar="SITE",
                   help="a mixed site: SITE's first cell's machines of its first register map read over OPC UA "
                        "instead of Modbus (default auto: the first site with such a cell, pod-berlin's printers "
                        "P1-P4 in the example fleet; none: every machine on Modbus)")
    p.add_argument("--opcua-port", type=int, default=0, metavar="PORT",
                   help="port of the emulated OPC UA server on 127.0.0.1 (default: the port after the last PLC)")
    p.add_argument("--days", type=float, default=DEFAULT_DAYS,
                   help=f"days of emulated history to backfill (default {DEFAULT_DAYS:g}; the what-ifs "
                        f"calibrate from the last 7)")
    p.add_argument("--seed", type=int, default=7, help="seed of the emulated plant (default 7)")
    p.add_argument("--truth", type=Path, default=None, metavar="FILE",
                   help="the emulated plant's hidden truth (TOML, see connectors.emulator.truth), for the "
                        f"backfill and the live PLCs alike (default: {DEMO_TRUTH} with the example fleet, "
                        "else the plant runs as configured)")
    p.add_argument("--ready-timeout", type=float, default=60.0, help="give up if not ready after S seconds")
    p.add_argument("--duration", type=float, default=0.0, metavar="S", help="stop after S seconds (default: never)")
    p.set_defaults(func=run)


@dataclass
class _Children:
    """The processes the demo started, stopped in reverse order."""

    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
        out = log_path.open("ab")
        # a session of its own: Ctrl-C reaches the demo only, which then stops the children in order
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        out.close()
        self.procs.append((name, proc))
        return proc

    def dead(self) -> list[tuple[str, int]]:
        return [(name, p.returncode) for name, p in self.procs if p.poll() is not None]

    def stop(self, timeout_s: float = 10.0) -> None:
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)  # the twin command shuts down cleanly on SIGINT
        deadline = time.monotonic() + timeout_s
        for name, p in reversed(self.procs):
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time: killing it", name)
                p.kill()
                p.wait()


def _token_file(data_dir: Path) -> Path:
    """The demo endpoint's bearer token, made once per data folder, readable by its owner only."""
    path = data_dir / "feeds.token"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    return path


class _NoSuchSite(ValueError):
    """``--opcua-site`` names a site without a Modbus cell of machines."""


def _opcua_site(model: PlantModel, wanted: str, port: int) -> tuple[list[ModbusDeviceModel], OpcUaSourceModel | None]:
    """The Modbus devices and the OPC UA source of a mixed site (``wanted``: a site id, "auto" or "none").

    The site's first device with register-mapped assets (a cell) gives up the assets of its first
    map (pod-berlin's printers P1-P4 in the example fleet); an OPC UA source reads the same signals
    from the emulated server on ``port`` (node ``ns=2;s=ASSET.signal``, units from its
    EngineeringUnits), polled every ``DEMO_POLL_S`` like the PLCs, so that a signal counts as stale
    after the same ``STALE_AFTER_S`` (a subscription is checked every second, which would make the
    backfilled history, sampled every minute or five, look stale on replay).
    """
    from connectors.config.opcua import OpcUaNodeModel, OpcUaSourceModel

    devices = list(model.sources.modbus)
    if wanted == "none":
        return devices, None
    cells = [d for d in devices if d.assets and wanted in ("auto", d.site)]
    if not cells:
        if wanted == "auto":
            return devices, None
        raise _NoSuchSite(f"no Modbus device of site {wanted!r} serves machines through a register map "
                          f"(sites with one: {', '.join(sorted({d.site for d in devices if d.assets})) or 'none'})")
    cell = cells[0]
    first = cell.assets[0].map
    moved = [a for a in cell.assets if a.map == first]
    points = next(m.points for m in model.sources.register_maps if m.id == first)
    nodes = [OpcUaNodeModel(asset=a.asset, signal=p.signal, node=f"ns=2;s={a.asset}.{p.signal}")
             for a in moved for p in points]
    source = OpcUaSourceModel(id=f"{cell.site}-opcua", site=cell.site, endpoint=f"opc.tcp://127.0.0.1:{port}",
                              poll=True, poll_interval_s=DEMO_POLL_S, timeout_s=2.0, bad_after_s=2 * STALE_AFTER_S,
                              nodes=nodes)
    rest = [a for a in cell.assets if a.map != first]
    kept = [d if d is not cell else d.model_copy(update={"assets": rest}) for d in devices
            if d is not cell or rest or d.points]
    return kept, source


def _demo_config(source: Path, data_dir: Path, port_base: int, feeds_port: int = 8081, opcua_site: str = "none",
                 opcua_port: int = 0) -> Path:
    """Write the demo's copy of the plant file ``source`` (validated first) into ``data_dir``; its path.

    The copy is the source's validated model with the demo's settings put in its typed sections
    (an embedded store in ``data_dir``, the emulated PLCs on 127.0.0.1, faster polling, the feeds'
    file drop and endpoint, the mixed site of ``opcua_site`` on ``opcua_port``, default the port
    after the last PLC's), written back as TOML and loaded again by every command it starts.
    """
    from connectors.config import load, read_config_text
    from connectors.config.feeds import FeedsHttpModel, FeedsModel
    from connectors.config.forecaster import ForecasterModel
    from connectors.config.schema import HistorianModel, PlantModel
    from twin.tomltext import loads_toml

    load(source)  # every problem of the user's file is reported naming it, not the demo's copy
    model = PlantModel.model_validate(loads_toml(read_config_text(source), str(source)))
    h = model.historian
    historian = HistorianModel(
        kind="sqlite", path=str((data_dir / "history.db").resolve()), retention_raw_days=h.retention_raw_days,
        rollup_interval_s=h.rollup_interval_s,
        checkpoint_interval_s=h.checkpoint_interval_s if "checkpoint_interval_s" in h.model_fields_set
        else DEMO_CHECKPOINT_S)
    feeds = FeedsModel(drop_dir=str((data_dir / "feeds" / "in").resolve()), poll_s=DEMO_POLL_S,
                       ledger=str((data_dir / "feeds.db").resolve()),
                       http=FeedsHttpModel(listen=f"127.0.0.1:{feeds_port}",
                                           token_file=str(_token_file(data_dir).resolve())))
    first = min((d.port for d in model.sources.modbus), default=0)
    plcs = [d.model_copy(update={"host": "127.0.0.1", "poll_interval_s": DEMO_POLL_S,
                                 "bad_after_s": max(d.bad_after_s, 2 * STALE_AFTER_S),
                                 "port": port_base + d.port - first if port_base else d.port})
            for d in model.sources.modbus]
    port = opcua_port or max((d.port for d in plcs), default=4839) + 1
    plcs, mixed = _opcua_site(model.model_copy(update={"sources": model.sources.model_copy(
        update={"modbus": plcs})}), opcua_site, port)
    # the file's own OPC UA servers are emulated too, on 127.0.0.1 at their ports
    servers = [u.model_copy(update={"endpoint": re.sub(r"^opc\.tcp://(\[[^]]*\]|[^:/]+)", "opc.tcp://127.0.0.1",
                                                        u.endpoint)}) for u in model.sources.opcua]
    servers += [mixed] if mixed is not None else []
    sources: dict[str, object] = {"modbus": plcs, **({"opcua": servers} if servers else {})}
    # the predictive alarms' forecaster is on in the demo (off by default): every 5 min unless the file says
    forecaster = (model.forecaster.model_copy(update={"enabled": True}) if model.forecaster is not None
                  else ForecasterModel(enabled=True, every_min=DEMO_FORECAST_MIN))
    demo = model.model_copy(update={
        "historian": historian, "feeds": feeds, "forecaster": forecaster,
        "fleet": model.fleet.model_copy(update={"stale_after_polls": STALE_AFTER_S / DEMO_POLL_S}),
        "sources": model.sources.model_copy(update=sources)})
    path = data_dir / "fleet.toml"
    header = (f"# Generated by `twin demo` from {source} — EMULATED plant, not a real one.\n"
              f"# Embedded store in {data_dir}; polling every {DEMO_POLL_S:g} s.\n\n")
    path.write_text(header + tomli_w.dumps(demo.model_dump(mode="json", exclude_unset=True)), encoding="utf-8")
    return path


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def run(args: argparse.Namespace) -> int:
    from connectors.config import load
    from connectors.emulator.backfill import backfill
    from connectors.emulator.truth import load_truth
    from connectors.feeds.intake import Intake
    from connectors.feeds.ledger import Ledger
    from connectors.store import SqliteHistorian

    t_start = time.monotonic()
    source = Path(args.config)
    if args.config == str(DEFAULT_CONFIG) and not source.exists():
        source = Path(__file__).resolve().parents[2] / DEFAULT_CONFIG  # the checkout's example fleet
    if not source.is_file():
        print(f"twin demo: no plant configuration at {source}: pass one (e.g. twin demo path/to/plant.toml)",
              file=sys.stderr)
        return 2
    if not math.isfinite(args.days) or args.days <= 0:
        print(f"twin demo: --days: must be a number of days > 0 (got {args.days:g})", file=sys.stderr)
        return 2
    if args.truth is None and args.config == str(DEFAULT_CONFIG):
        args.truth = DEMO_TRUTH if DEMO_TRUTH.exists() else Path(__file__).resolve().parents[2] / DEMO_TRUTH
    if args.truth is not None and not args.truth.is_file():
        print(f"twin demo: --truth: no such file {args.truth}", file=sys.stderr)
        return 2
    data_dir: Path = args.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    for old in data_dir.glob("history.db*"):
        old.unlink()  # each demo starts from a fresh emulated history
    for old in data_dir.glob("*.log"):
        old.unlink()
    for old in [*data_dir.glob("feeds.db*"), *data_dir.glob("feeds/in-rejects.jsonl")]:
        old.unlink()  # and from fresh emulated order and shipment feeds
    shutil.rmtree(data_dir / "feeds" / "in", ignore_errors=True)
    try:
        config_path = _demo_config(source, data_dir, args.modbus_port_base, args.feeds_port, args.opcua_site,
                                   args.opcua_port)
    except _NoSuchSite as exc:
        print(f"twin demo: --opcua-site: {exc}", file=sys.stderr)
        return 2
    cfg = load(config_path)
    fleet = cfg.fleet
    truth = load_truth(args.truth, fleet) if args.truth is not None else None
    plc_ports = sorted({d.port for d in cfg.modbus})
    ua_ports = sorted({int(s.endpoint.rsplit(":", 1)[1].split("/")[0]) for s in cfg.opcua})
    ports = [*plc_ports, *ua_ports]
    busy = [p for p in [*ports, args.port, args.feeds_port] if _port_open(p)]
    if busy:
        print(f"twin demo: port(s) {busy} on 127.0.0.1 are already in use; stop what uses them or pass "
              f"--modbus-port-base / --opcua-port / --port / --feeds-port", file=sys.stderr)
        return 1
    n_machines = sum(len(s.machines) for s in fleet.sites)
    print(f"twin demo: EMULATED plant data, not a real plant: fleet {fleet.id!r}, {len(fleet.sites)} sites, "
          f"{n_machines} machines", flush=True)
    print(f"  config: {config_path} (for the other commands, e.g. twin replay {config_path} --site "
          f"{fleet.sites[0].id if fleet.sites else 'SITE'} --at TIME)", flush=True)

    now = utc_now().replace(microsecond=0)
    history_from = now - timedelta(days=args.days)
    truth_args = ["--truth", str(args.truth.resolve())] if args.truth is not None else []
    twin = [sys.executable, "-m", "app"]
    children = _Children()
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        # The store exists (empty) before anything reads it. The emulated PLCs and the dashboard start
        # on the other core while this process backfills; only the collector waits for the backfill,
        # because it resumes the twin's totals from it.
        store = SqliteHistorian(cfg.historian.path, fleet, rollup_interval_s=int(cfg.historian.rollup_interval_s))
        children.start("emulator", [*twin, "emulate", str(config_path), "--seed", str(args.seed),
                                    "--history-from", history_from.isoformat(),
                                    "--feeds-dir", str(data_dir / "feeds" / "in"),
                                    "--feeds-every", str(DEMO_POLL_S), "--feeds-after", now.isoformat(),
                                    *truth_args],
                       data_dir / "emulator.log")
        children.start("dashboard", [*twin, "dashboard", str(config_path), "--host", "127.0.0.1",
                                     "--port", str(args.port)], data_dir / "dashboard.log")
        t0 = time.monotonic()
        assert cfg.feeds is not None  # the demo configuration has its feeds
        ledger = Ledger(cfg.feeds.ledger_path(cfg.historian.path))
        try:
            result = backfill(fleet, store, start=history_from, end=now, step_s=BACKFILL_STEP_S, seed=args.seed,
                              truth=truth, intake=Intake(fleet, ledger), older_step_s=OLDER_STEP_S,
                              fine_from=_fine_from(fleet, truth, history_from, now),
                              older_orders_every_s=OLDER_ORDERS_EVERY_S)
        finally:
            ledger.close()
            store.close()
        print(f"  backfilled {args.days:g} days of EMULATED history in {time.monotonic() - t0:.1f} s: "
              f"{result.readings:,} readings, {result.events:,} events, {result.orders:,} orders "
              f"({result.open_orders:,} open now), {result.shipments:,} shipments ({result.in_transit:,} in "
              f"transit) -> {cfg.historian.path}", flush=True)
        deadline = time.monotonic() + args.ready_timeout
        while not all(_port_open(p) for p in ports):
            if time.monotonic() > deadline or children.dead() or stopping:
                raise _NotReady("the emulated PLCs did not start", children)
            time.sleep(0.1)
        print(f"  emulated PLCs: {len(cfg.modbus)} devices on 127.0.0.1 ports {plc_ports[0]}-{plc_ports[-1]}",
              flush=True)
        for server in cfg.opcua:
            machines = ", ".join(dict.fromkeys(n.asset for n in server.nodes))
            print(f"  emulated OPC UA server: {server.site}'s {machines} on {server.endpoint} (the rest of the "
                  f"site on Modbus)", flush=True)
        children.start("collector", [*twin, "collect", str(config_path)], data_dir / "collector.log")
        url = f"http://127.0.0.1:{args.port}/"
        while not _http_ok(url):
            if time.monotonic() > deadline or children.dead() or stopping:
                raise _NotReady("the dashboard did not answer", children)
            time.sleep(0.2)
        ua = f" and {len(cfg.opcua)} OPC UA server(s)" if cfg.opcua else ""
        print(f"  collector: polling {len(cfg.modbus)} devices{ua} every {DEMO_POLL_S:g} s into the embedded store",
              flush=True)
        print(f"  feeds: EMULATED orders and shipments dropped into {data_dir / 'feeds' / 'in'}; endpoint "
              f"http://127.0.0.1:{args.feeds_port}/api/v1/orders and /api/v1/shipments "
              f"(bearer token in {data_dir / 'feeds.token'})", flush=True)
        print(f"  dashboard: {url}", flush=True)
        print(f"ready in {time.monotonic() - t_start:.1f} s; logs in {data_dir}; Ctrl-C stops everything",
              flush=True)
        end = time.monotonic() + args.duration if args.duration else None
        while not stopping and (end is None or time.monotonic() < end):
            dead = children.dead()
            if dead:
                print(f"twin demo: {', '.join(f'{n} exited with {c}' for n, c in dead)}; stopping "
                      f"(see the logs in {data_dir})", file=sys.stderr)
                code = 1
                break
            time.sleep(0.2)
    except _NotReady as exc:
        print(f"twin demo: {exc}; see the logs in {data_dir}", file=sys.stderr)
        code = 1
    finally:
        children.stop()
        for s, h in previous.items():
            signal.signal(s, h)
    print("twin demo: stopped" + (" (with errors)" if code else ""), flush=True)
    return code


class _NotReady(Exception):
    def __init__(self, what: str, children: _Children) -> None:
        dead = ", ".join(f"{n} exited with {c}" for n, c in children.dead())
        super().__init__(what + (f" ({dead})" if dead else ""))
