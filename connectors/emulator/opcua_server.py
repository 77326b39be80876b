"""Serve emulated machines over OPC UA from the emulated plant (endpoints: ``connectors.emulator.opcua_endpoint``).

``OpcUaMachines`` feeds an endpoint from an emulated plant of its own (``connectors.emulator.plant``),
for tests. ``OpcUaServers`` serves every ``[[sources.opcua]]`` of a configuration from the values
of the plant the Modbus PLCs are fed by (``twin emulate``): each node where the source reads it,
its value encoded the way the source decodes it (the inverse of ``scale``/``offset``, the server's
key of an ``enum`` map), with faults by source id (``hang``, ``freeze``, ``drop_connections``,
``kill``/``revive``; sources sharing a port share a server, as Modbus devices behind one gateway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.config.opcua import OpcUaNode, OpcUaSource
from connectors.config.secrets import SecretUnavailable, read_secret
from connectors.emulator.opcua_endpoint import Key, OpcUaEndpoint, Placed, Variable, self_signed
from connectors.emulator.plant import Plant
from connectors.emulator.shopfloor import ValueKey
from twin.clock import Clock, utc_now
from twin.readings import Value
from twin.spec import FleetSpec

__all__ = ["OpcUaMachines", "OpcUaServers", "encode_node", "signal_units"]

log = logging.getLogger(__name__)

class OpcUaMachines:
    """Machines of one site served over OPC UA, their values from a seeded emulated ``Plant``.

    Plant time runs ``speed`` times faster than ``clock``; ``update()`` advances it and writes every
    value, ``run(stop)`` serves and updates every ``tick_s`` until ``stop`` is set.
    """

    def __init__(self, fleet: FleetSpec, site: str, machines: Sequence[str], port: int, *, seed: int = 0,
                 speed: float = 1.0, clock: Clock = utc_now, tick_s: float = 0.1, host: str = "127.0.0.1") -> None:
        self.site, self.speed, self.tick_s, self._clock = site, speed, tick_s, clock
        self._wall0 = clock()
        self.plant = Plant(fleet, seed=seed, start=self._wall0, sites={site})
        values = self.plant.advance(self.plant.now)
        spec = fleet.site(site)
        variables: list[Variable] = []
        for mid in machines:
            m = spec.machine(mid)
            if m is None:
                raise KeyError(f"no machine {mid} at site {site}")
            for sig in m.template.signals:
                v = values.get((site, mid, sig.name))
                variables.append((mid, sig.name, v if v is not None else 0, sig.unit))
        self.endpoint = OpcUaEndpoint(port, variables, host=host)

    async def update(self) -> None:
        t = self.plant.start + (self._clock() - self._wall0) * self.speed
        values = self.plant.advance(max(t, self.plant.now))
        for (asset, signal) in self.endpoint.keys:
            v = values.get((self.site, asset, signal))
            if v is not None:
                with contextlib.suppress(ValueError, TypeError):
                    await self.endpoint.set(asset, signal, v)

    async def run(self, stop: asyncio.Event) -> None:
        await self.endpoint.start()
        try:
            while not stop.is_set():
                await self.update()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.tick_s)
        finally:
            await self.endpoint.stop()


# ---------------------------------------------------------------------- a configuration's servers
_ENDPOINT = re.compile(r"^opc\.tcp://[^/]+:(\d+)(/.*)?$")
_NODE_ID = re.compile(r"^(?:ns=(\d+);)?([isgb])=(.+)$")


def encode_node(node: OpcUaNode, value: Value) -> object:
    """What a server holds for the twin's ``value`` of ``node``: the inverse of the source's decoding.

    An ``enum`` map gives the server's key of the value (an integer when the key is one); ``scale``
    and ``offset`` are undone. Raises ``ValueError`` for a value the node cannot carry.
    """
    if node.enum:
        for key, mapped in node.enum.items():
            if mapped == value:
                return int(key) if re.fullmatch(r"-?\d+", key) else key
        raise ValueError(f"{value!r} is in no key of the enum map")
    if node.scale != 1.0 or node.offset != 0.0:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"scale and offset need a number (got {value!r})")
        return (value - node.offset) / node.scale
    return value


def _placement(node: OpcUaNode) -> tuple[str, tuple[tuple[int, str], ...]]:
    """The node id and browse path under Objects of a configured node."""
    kind, text = node.ref
    if kind == "path":
        parts = [p for p in text.split("/") if p]
        if parts and parts[0] in ("0:Root", "Root"):
            parts = parts[1:]
        if parts and parts[0] == "0:Objects":
            parts = parts[1:]
        if not parts:
            raise ValueError(f"browse path {text!r} names no variable under Objects")
        path = tuple((int(ns), name) for ns, name in (p.split(":", 1) for p in parts))
        if any(ns < 2 for ns, _ in path):
            raise ValueError(f"browse path {text!r}: the emulator serves namespaces 2 and up only")
        return f"ns={path[-1][0]};s={'.'.join(n for _, n in path)}", path
    m = _NODE_ID.match(text)
    if m is None:
        raise ValueError(f"not a node id: {text!r}")
    ns = int(m.group(1) or 0)
    if ns < 2:
        raise ValueError(f"node {text!r}: the emulator serves namespaces 2 and up only")
    name = m.group(3).rsplit(".", 1)[-1] if m.group(2) == "s" else node.signal
    return text, ((ns, node.asset), (ns, name))


@dataclass(slots=True)
class _Served:
    """One server of a configuration: its endpoint, the nodes it holds, its fault switches."""

    endpoint: OpcUaEndpoint
    nodes: dict[Key, tuple[ValueKey, OpcUaNode]]
    frozen: bool = False
    last: dict[Key, object] | None = None


def signal_units(fleet: FleetSpec) -> dict[ValueKey, str]:
    """The unit of every machine signal of ``fleet`` that has one, {(site, machine, signal): unit}."""
    return {(site.id, m.id, sig.name): sig.unit for site in fleet.sites for m in site.machines
            for sig in m.template.signals if sig.unit}


class OpcUaServers:
    """Every ``[[sources.opcua]]`` of a configuration, served on ``host`` at each endpoint's port.

    ``values`` are the plant's values now ({(site, asset, signal): value}, e.g. ``Plant.values()``),
    for the variables' types; ``update(values)`` writes them as they change. ``units`` gives a node
    its EngineeringUnits (its configured ``unit`` wins; e.g. the fleet's signal units, as
    ``signal_units`` gives them; a scaled node's unit is the twin's). A source with a user
    gets a server that lets that user in with the password the source reads (its ``password_env``
    or ``password_file``). A ``Sign`` or ``SignAndEncrypt`` source gets a server offering that
    mode (Basic256Sha256) with a self-signed certificate made at ``start`` in ``cert_dir`` (default:
    a temporary folder, removed by ``stop``). Sources with the same port share one server.

    Usage (inside a running event loop)::

        ua = OpcUaServers(cfg.opcua, emu.plant.values())
        await ua.start()
        await ua.update(emu.plant.values())
        await ua.hang("berlin-printers")
        await ua.stop()
    """

    def __init__(self, sources: Sequence[OpcUaSource], values: Mapping[ValueKey, Value], *,
                 host: str = "127.0.0.1", units: Mapping[ValueKey, str] | None = None,
                 cert_dir: Path | None = None) -> None:
        self.sources = {s.id: s for s in sources}
        self._cert_dir, self._tmp_dir = cert_dir, ""
        self._by_port: dict[int, _Served] = {}
        self._port_of: dict[str, int] = {}
        grouped: dict[int, list[OpcUaSource]] = {}
        for s in sources:
            m = _ENDPOINT.match(s.endpoint)
            if m is None:
                raise ValueError(f"OPC UA source {s.id}: cannot serve endpoint {s.endpoint!r}")
            port = int(m.group(1))
            grouped.setdefault(port, []).append(s)
            self._port_of[s.id] = port
        for port, group in grouped.items():
            placed: list[Placed] = []
            nodes: dict[Key, tuple[ValueKey, OpcUaNode]] = {}
            users: dict[str, str] = {}
            taken: dict[str, str] = {}
            for s in group:
                if s.user:
                    users[s.user] = self._password(s)
                for i, n in enumerate(s.nodes):
                    key, vkey = (s.id, str(i)), (s.site, n.asset, n.signal)
                    node_id, path = _placement(n)
                    if node_id in taken:
                        raise ValueError(f"OPC UA source {s.id}: node {n.where} is served twice on port {port} "
                                         f"(also {taken[node_id]})")
                    taken[node_id] = f"{s.id}: {n.where}"
                    v = values.get(vkey)
                    try:
                        initial = encode_node(n, v) if v is not None else 0.0
                    except ValueError:
                        initial = 0 if n.enum else 0.0
                    unit = n.unit or (units or {}).get(vkey, "")
                    placed.append(Placed(key=key, node_id=node_id, path=path, value=initial, unit=unit))
                    nodes[key] = (vkey, n)
            url = _ENDPOINT.match(group[0].endpoint)
            modes = list(dict.fromkeys(sorted(s.security for s in group)))
            ep = OpcUaEndpoint(port, placed, host=host, users=users or None, path=(url and url.group(2)) or "/",
                               modes=modes)
            self._by_port[port] = _Served(endpoint=ep, nodes=nodes)
        self._warned: set[Key] = set()

    @staticmethod
    def _password(s: OpcUaSource) -> str:
        if not (s.password_env or s.password_file):
            return ""
        try:
            return read_secret(s.password_env, s.password_file, max_bytes=4096)
        except SecretUnavailable as exc:
            raise ValueError(f"OPC UA source {s.id}: the emulator needs the password of user {s.user} too "
                             f"({exc.problem.value})") from None

    @property
    def endpoints(self) -> dict[int, OpcUaEndpoint]:
        """The servers by port."""
        return {port: s.endpoint for port, s in self._by_port.items()}

    def endpoint(self, source_id: str) -> OpcUaEndpoint:
        return self._served(source_id).endpoint

    def _served(self, source_id: str) -> _Served:
        if source_id not in self._port_of:
            raise KeyError(f"no OPC UA source {source_id} (known: {', '.join(self._port_of) or 'none'})")
        return self._by_port[self._port_of[source_id]]

    async def start(self) -> None:
        for port, s in self._by_port.items():
            ep = s.endpoint
            if ep.modes != ("None",) and not ep.secured:
                folder = self._cert_dir or Path(self._tmp_dir or tempfile.mkdtemp(prefix="twin-emulator-pki-"))
                self._tmp_dir = self._tmp_dir if self._cert_dir else str(folder)
                ep.use_certificate(*await self_signed(folder, f"server-{port}"))
            await ep.start()

    async def stop(self) -> None:
        for s in self._by_port.values():
            await s.endpoint.stop()
        if self._tmp_dir:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = ""
            for s in self._by_port.values():  # a new start makes new ones
                s.endpoint.use_certificate("", "")

    async def update(self, values: Mapping[ValueKey, Value]) -> None:
        """Write every value that changed, on every server that is not frozen."""
        for served in self._by_port.values():
            if served.frozen:
                continue
            last = served.last if served.last is not None else {}
            for key, (vkey, node) in served.nodes.items():
                v = values.get(vkey)
                if v is None:
                    continue
                try:
                    encoded = encode_node(node, v)
                except ValueError as exc:
                    if key not in self._warned:
                        self._warned.add(key)
                        log.warning("emulator: OPC UA source %s: cannot serve %s.%s at %s: %s", key[0],
                                    node.asset, node.signal, node.where, exc)
                    continue
                if last.get(key) != encoded:
                    last[key] = encoded
                    await served.endpoint.set_key(key, encoded)
            served.last = last

    async def run(self, values: Any, stop: asyncio.Event, tick_s: float = 0.1) -> None:
        """Serve and write ``values()`` every ``tick_s`` until ``stop`` is set."""
        await self.start()
        try:
            while not stop.is_set():
                await self.update(values())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=tick_s)
        finally:
            await self.stop()

    # ------------------------------------------------------------------ faults, by source id
    async def hang(self, source_id: str, on: bool = True) -> None:
        """The source's server stops answering (``on=False``: answers again)."""
        await self._served(source_id).endpoint.hang(on)

    def freeze(self, source_id: str, on: bool = True) -> None:
        """The source's server keeps answering with values that stop changing."""
        self._served(source_id).frozen = on

    def drop_connections(self, source_id: str) -> int:
        return self._served(source_id).endpoint.drop_connections()

    async def kill(self, source_id: str) -> None:
        """The source's server goes away (every source on its port)."""
        await self._served(source_id).endpoint.stop()

    async def revive(self, source_id: str) -> None:
        """A new server on the same port, with the last values (a restart: sessions are lost)."""
        await self._served(source_id).endpoint.start()
