"""Serve emulated machines over OPC UA: the second and last module importing asyncua.

``OpcUaEndpoint`` is one asyncua server on ``host:port`` (127.0.0.1 by default). Given plain
``Variable`` tuples it makes an object per asset and a variable per signal, node id
``ns=2;s=ASSET.signal`` and browse path ``0:Objects/2:ASSET/2:signal``; given ``Placed`` variables
it puts each where a configuration expects it (its node id, its browse path). A signal with a unit
carries it as its EngineeringUnits. ``set`` writes a value with a status code (``Good``, or any name
such as ``BadSensorFailure`` or ``UncertainLastUsableValue``); ``stop`` and ``start`` take the server
away and bring a new one up on the same port with the last values (a restart, sessions lost).
Faults: ``hang`` (the server keeps its connections and accepts new ones but answers nothing until
``hang(False)``), ``drop_connections`` (every client's socket closed), ``stop`` (killed).

``OpcUaMachines`` feeds an endpoint from an emulated plant of its own (``connectors.emulator.plant``),
for tests. ``OpcUaServers`` serves every ``[[sources.opcua]]`` of a configuration from the values
of the plant the Modbus PLCs are fed by (``twin emulate``): each node where the source reads it,
its value encoded the way the source decodes it (the inverse of ``scale``/``offset``, the server's
key of an ``enum`` map), with faults by source id (``hang``, ``freeze``, ``drop_connections``,
``kill``/``revive``; sources sharing a port share a server, as Modbus devices behind one gateway).

Usage (inside a running event loop)::

    ep = OpcUaEndpoint(port, [("CNC1", "status", 0, ""), ("CNC1", "spindle_temp_c", 21.5, "degC")])
    await ep.start()
    await ep.set("CNC1", "status", 2)
    await ep.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole

from connectors.config.opcua import OpcUaNode, OpcUaSource
from connectors.config.secrets import SecretUnavailable, read_secret
from connectors.emulator.plant import Plant
from connectors.emulator.shopfloor import ValueKey
from twin.clock import Clock, utc_now
from twin.readings import Value
from twin.spec import FleetSpec

__all__ = ["BASIC_TYPES", "NAMESPACE", "OpcUaEndpoint", "OpcUaMachines", "OpcUaServers", "Placed", "Variable",
           "encode_node", "self_signed", "signal_units"]

log = logging.getLogger(__name__)

NAMESPACE = "urn:digital-twin:emulator"
Variable = tuple[str, str, Value | list[float], str]  # asset, signal, initial value, unit ("" for none)
Key = tuple[str, str]  # how ``set`` names a variable: (asset, signal), or (source id, node index)


@dataclass(frozen=True, slots=True, kw_only=True)
class Placed:
    """One variable where a configuration expects it.

    ``path`` is its browse path under Objects, (namespace index, name) per step: the objects, then
    the variable. ``data_type`` names the OPC UA built-in type (``"UInt16"``, ``"ByteString"``...);
    empty, it follows the value (Boolean, Int64, Double or String).
    """

    key: Key
    node_id: str
    path: tuple[tuple[int, str], ...]
    value: object
    unit: str = ""
    data_type: str = ""


def _basic_types() -> dict[str, object]:
    """A value of every OPC UA built-in type (ids 1..25 but Variant, which only wraps others), for tests."""
    return {
        "Boolean": True, "SByte": -100, "Byte": 200, "Int16": -30000, "UInt16": 60000, "Int32": -2_000_000,
        "UInt32": 4_000_000_000, "Int64": -(2**40), "UInt64": 2**63 + 5, "Float": 1.5, "Double": 2.25,
        "String": "ready", "DateTime": datetime(2026, 11, 17, 6, 0, 30, tzinfo=UTC),
        "Guid": uuid.UUID("72962b91-fa75-4ae6-8d28-b404dc7daf63"), "ByteString": b"\x01\x02\x03",
        "XmlElement": ua.XmlElement("<state>ok</state>"), "NodeId": ua.NodeId(42, 2),
        "ExpandedNodeId": ua.ExpandedNodeId(7, 2), "StatusCode": ua.StatusCode(ua.StatusCodes.BadSensorFailure),
        "QualifiedName": ua.QualifiedName("Milling", 2), "LocalizedText": ua.LocalizedText("Automatic"),
        "ExtensionObject": ua.Range(Low=0.0, High=250.0),
        "DataValue": ua.DataValue(ua.Variant(3.5, ua.VariantType.Double)),
        "DiagnosticInfo": ua.DiagnosticInfo(SymbolicId=3),
    }


BASIC_TYPES: Mapping[str, object] = _basic_types()


def _variant_type(value: object) -> ua.VariantType:
    if isinstance(value, list):  # an array (a server may have them; the source refuses them clearly)
        return _variant_type(value[0] if value else 0.0)
    if isinstance(value, bool):
        return ua.VariantType.Boolean
    if isinstance(value, int):
        return ua.VariantType.Int64
    if isinstance(value, float):
        return ua.VariantType.Double
    return ua.VariantType.String


_INTEGERS = {"SByte", "Byte", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64"}


def _coerce(value: object, vt: ua.VariantType) -> object:
    """``value`` in the variable's type: the plant gives 3 or 3.0 alike; the server keeps its type."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if vt.name in _INTEGERS:
        return round(value)
    if vt.name in ("Double", "Float"):
        return float(value)
    return value


_POLICIES = {"None": ua.SecurityPolicyType.NoSecurity, "Sign": ua.SecurityPolicyType.Basic256Sha256_Sign,
             "SignAndEncrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt}


async def self_signed(folder: Path, name: str) -> tuple[str, str]:
    """A server certificate (DER) and key (PEM) made for this machine, in ``folder``; their paths."""
    from cryptography.x509.oid import ExtendedKeyUsageOID  # asyncua's own dependency, for its cert_gen

    key, cert = folder / f"{name}-key.pem", folder / f"{name}-cert.der"
    await cert_gen.setup_self_signed_certificate(key, cert, "urn:freeopcua:python:server", socket.gethostname(),
                                                 [ExtendedKeyUsageOID.SERVER_AUTH],
                                                 {"organizationName": "digital twin emulator"})
    return str(cert), str(key)


class _Users:
    """asyncua's user manager for a secured endpoint: these users with these passwords, nobody else."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def get_user(self, iserver: object, username: str | None = None, password: str | None = None,
                 certificate: object = None) -> User | None:
        del iserver, certificate
        if username is not None and self.users.get(username) == password:
            return User(role=UserRole.User)
        return None


class _Transports(list[Any]):
    """The server's list of client sockets: one that connects while the server hangs is paused at once."""

    hung = False

    def append(self, transport: Any) -> None:
        super().append(transport)
        if self.hung:
            transport.pause_reading()


def _simple(v: Variable) -> Placed:
    asset, signal, value, unit = v
    return Placed(key=(asset, signal), node_id=OpcUaEndpoint.node_id(asset, signal), path=((2, asset), (2, signal)),
                  value=value, unit=unit)


class OpcUaEndpoint:
    """One OPC UA server serving ``variables``; restartable on the same port.

    With ``certificate`` and ``private_key`` (the server's, PEM or DER) it offers the security
    ``modes`` (default only SignAndEncrypt; "None", "Sign", "SignAndEncrypt", policy
    Basic256Sha256); with ``users`` (name -> password) only those may log in. ``path`` is the
    endpoint URL's path (``opc.tcp://HOST:PORT/PATH``).
    """

    def __init__(self, port: int, variables: Iterable[Variable | Placed], *, host: str = "127.0.0.1",
                 certificate: str | None = None, private_key: str | None = None,
                 users: dict[str, str] | None = None, path: str = "/", modes: Iterable[str] = ("SignAndEncrypt",)
                 ) -> None:
        self.host, self.port, self.path = host, port, path if path.startswith("/") else "/" + path
        self._certificate, self._private_key, self._users = certificate, private_key, users
        self.modes = tuple(modes)
        self._placed: dict[Key, Placed] = {}
        self._values: dict[Key, tuple[object, str]] = {}
        self._types: dict[Key, ua.VariantType] = {}
        self._initial: dict[Key, object] = {}  # the last value that was not None (a restart's)
        for v in variables:
            p = v if isinstance(v, Placed) else _simple(v)
            if p.key in self._placed:
                raise ValueError(f"variable {p.key} given twice")
            self._placed[p.key] = p
            self._initial[p.key] = p.value
            self._values[p.key] = (p.value, "Good")
            self._types[p.key] = ua.VariantType[p.data_type] if p.data_type else _variant_type(p.value)
        self._server: Server | None = None
        self._nodes: dict[Key, ua.NodeId] = {}
        self._transports = _Transports()

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def hung(self) -> bool:
        return self._transports.hung

    @property
    def keys(self) -> list[Key]:
        return list(self._placed)

    @staticmethod
    def node_id(asset: str, signal: str) -> str:
        return f"ns=2;s={asset}.{signal}"

    def use_certificate(self, certificate: str, private_key: str) -> None:
        """The server's certificate and key from the next ``start`` on."""
        self._certificate, self._private_key = certificate, private_key

    @property
    def secured(self) -> bool:
        return bool(self._certificate and self._private_key)

    async def start(self) -> None:
        if self._server is not None:
            return
        with socket.socket() as probe:  # a port in use is one line, not asyncua's logged traceback
            # as asyncio's listener does: a restart binds past the old connections' TIME_WAIT
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.host, self.port))
            except OSError as exc:
                raise OSError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        server = Server(user_manager=_Users(self._users) if self._users else None)
        await server.init()
        server.set_endpoint(f"opc.tcp://{self.host}:{self.port}{self.path}")
        server.set_server_name("digital twin emulator")
        if self._certificate and self._private_key:
            await server.load_certificate(self._certificate)
            await server.load_private_key(self._private_key)
            server.set_security_policy([_POLICIES[m] for m in self.modes])
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])  # an emulator: open by default
        server.set_identity_tokens([ua.UserNameIdentityToken] if self._users else [ua.AnonymousIdentityToken])
        top = max((ns for p in self._placed.values() for ns, _ in p.path), default=2)
        idx = await server.register_namespace(NAMESPACE)
        while idx < top:  # a configuration's node in namespace 3, say: namespaces up to it
            idx = await server.register_namespace(f"{NAMESPACE}:{idx + 1}")
        self._transports = _Transports()
        # asyncua (pinned to 1.1.x) keeps each client's socket in this list as it connects: ours pauses
        # the ones that connect while the server hangs, before it reads their first byte
        self._transports.extend(server.iserver.asyncio_transports)
        server.iserver.asyncio_transports = self._transports
        await self._add_nodes(server)
        try:
            await server.start()
        except OSError as exc:
            raise OSError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from exc
        self._server = server
        for key, (value, status) in self._values.items():
            if status != "Good":
                await self._write(key, value, status)

    async def _add_nodes(self, server: Server) -> None:
        objects: dict[tuple[tuple[int, str], ...], Any] = {(): server.nodes.objects}
        self._nodes = {}
        for key, p in self._placed.items():
            parent = objects[()]
            for depth in range(1, len(p.path)):
                step = p.path[:depth]
                if step not in objects:
                    ns, name = step[-1]
                    node_id = ua.NodeId(".".join(n for _, n in step), ns)
                    objects[step] = await parent.add_object(node_id, ua.QualifiedName(name, ns))
                parent = objects[step]
            ns, name = p.path[-1]
            vt = self._types[key]
            try:
                var = await parent.add_variable(ua.NodeId.from_string(p.node_id), ua.QualifiedName(name, ns),
                                                ua.Variant(_coerce(p.value, vt), vt))
            except ua.UaStatusCodeError as exc:
                raise ValueError(f"cannot add node {p.node_id} ({'/'.join(f'{n}:{x}' for n, x in p.path)}): "
                                 f"{ua.StatusCode(exc.code).name}") from exc
            if p.unit:
                eu = ua.EUInformation(NamespaceUri="http://www.opcfoundation.org/UA/units/un/cefact",
                                      UnitId=-1, DisplayName=ua.LocalizedText(p.unit),
                                      Description=ua.LocalizedText(p.unit))
                await var.add_property(ua.NodeId(f"{var.nodeid.Identifier}.EngineeringUnits", ns),
                                       ua.QualifiedName("EngineeringUnits", 0), eu)
            self._nodes[key] = var.nodeid

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            self._resume()  # hung sockets would hold the server's shutdown
            clock = server.iserver.time_task  # it ends within a second once told; cancelled, it ends now
            if clock is not None:
                clock.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await clock
                server.iserver.time_task = None
            await server.stop()

    async def set(self, asset: str, signal: str, value: Value, status: str = "Good") -> None:
        """Write ``value`` with the status code named ``status`` (kept across restarts)."""
        await self.set_key((asset, signal), value, status)

    async def set_key(self, key: Key, value: object, status: str = "Good") -> None:
        """``set`` by the variable's key (a ``Placed`` variable's)."""
        if key not in self._values:
            raise KeyError(f"no variable {key[0]}.{key[1]}")
        self._values[key] = (value, status)
        if value is not None:
            self._initial[key] = value
        if self._server is not None and not self.hung:
            await self._write(key, value, status)

    async def _write(self, key: Key, value: object, status: str) -> None:
        assert self._server is not None
        code = ua.StatusCode(getattr(ua.StatusCodes, status))
        vt = self._types[key]
        variant = ua.Variant(_coerce(value, vt), vt) if code.is_good() or value is not None else ua.Variant()
        now = datetime.now(UTC)
        await self._server.write_attribute_value(self._nodes[key], ua.DataValue(
            variant, StatusCode_=code, SourceTimestamp=now, ServerTimestamp=now))

    async def delete(self, asset: str, signal: str) -> None:
        """Remove a variable from the running server (a node deleted at runtime)."""
        assert self._server is not None
        await self._server.delete_nodes([self._server.get_node(self._nodes[(asset, signal)])])

    # ------------------------------------------------------------------ faults
    async def hang(self, on: bool = True) -> None:
        """Stop answering (connections stay open, new ones are accepted, no request is read) or resume."""
        if on:
            self._transports.hung = True
            for t in list(self._transports):
                t.pause_reading()
            return
        self._resume()
        if self._server is not None:  # what changed while it hung
            for key, (value, status) in self._values.items():
                await self._write(key, value, status)

    def _resume(self) -> None:
        if self._transports.hung:
            self._transports.hung = False
            for t in list(self._transports):
                with contextlib.suppress(RuntimeError, AttributeError):
                    t.resume_reading()

    def drop_connections(self) -> int:
        """Close every client's socket (sessions lost on the client's side); how many there were."""
        transports = list(self._transports)
        for t in transports:
            t.close()
        return len(transports)


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
