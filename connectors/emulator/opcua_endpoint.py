"""One emulated OPC UA server endpoint: the emulator's only module importing asyncua.

``OpcUaEndpoint`` is one asyncua server on ``host:port`` (127.0.0.1 by default). Given plain
``Variable`` tuples it makes an object per asset and a variable per signal, node id
``ns=2;s=ASSET.signal`` and browse path ``0:Objects/2:ASSET/2:signal``; given ``Placed`` variables
it puts each where a configuration expects it (its node id, its browse path). A signal with a unit
carries it as its EngineeringUnits. ``set`` writes a value with a status code (``Good``, or any name
such as ``BadSensorFailure`` or ``UncertainLastUsableValue``); ``stop`` and ``start`` take the server
away and bring a new one up on the same port with the last values (a restart, sessions lost).
Faults: ``hang`` (the server keeps its connections and accepts new ones but answers nothing until
``hang(False)``), ``drop_connections`` (every client's socket closed), ``stop`` (killed).

What feeds endpoints from the emulated plant is ``connectors.emulator.opcua_server``.

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
import socket
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole

from twin.readings import Value

__all__ = ["BASIC_TYPES", "NAMESPACE", "Key", "OpcUaEndpoint", "Placed", "Variable", "self_signed"]

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
