"""Serve emulated machines over OPC UA: the second and last module importing asyncua.

``OpcUaEndpoint`` is one asyncua server on ``host:port`` (127.0.0.1 by default) with an object per
asset and a variable per signal, node id ``ns=2;s=ASSET.signal`` and browse path
``0:Objects/2:ASSET/2:signal``, a signal with a unit carrying it as its EngineeringUnits. ``set``
writes a value with a status code (``Good``, or any name such as ``BadSensorFailure`` or
``UncertainLastUsableValue``); ``stop`` and ``start`` take the server away and bring a new one up
on the same port with the last values (a restart, sessions lost). ``OpcUaMachines`` feeds an
endpoint from the emulated plant (``connectors.emulator.plant``), as ``connectors.emulator.server``
feeds the Modbus PLCs: ``update()`` writes every machine's current values.

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
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole

from connectors.emulator.plant import Plant
from twin.clock import Clock, utc_now
from twin.readings import Value
from twin.spec import FleetSpec

__all__ = ["NAMESPACE", "OpcUaEndpoint", "OpcUaMachines", "Variable"]

log = logging.getLogger(__name__)

NAMESPACE = "urn:digital-twin:emulator"
Variable = tuple[str, str, Value | list[float], str]  # asset, signal, initial value, unit ("" for none)


def _variant_type(value: Value | list[float]) -> ua.VariantType:
    if isinstance(value, list):  # an array (a server may have them; the source refuses them clearly)
        return _variant_type(value[0] if value else 0.0)
    if isinstance(value, bool):
        return ua.VariantType.Boolean
    if isinstance(value, int):
        return ua.VariantType.Int64
    if isinstance(value, float):
        return ua.VariantType.Double
    return ua.VariantType.String


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


class OpcUaEndpoint:
    """One OPC UA server serving ``variables``; restartable on the same port.

    With ``certificate`` and ``private_key`` (the server's, PEM or DER) it offers only
    SignAndEncrypt (Basic256Sha256); with ``users`` (name -> password) only those may log in.
    """

    def __init__(self, port: int, variables: Iterable[Variable], *, host: str = "127.0.0.1",
                 certificate: str | None = None, private_key: str | None = None,
                 users: dict[str, str] | None = None) -> None:
        self.host, self.port = host, port
        self._certificate, self._private_key, self._users = certificate, private_key, users
        self._values: dict[tuple[str, str], tuple[Value | list[float], str]] = {}
        self._units: dict[tuple[str, str], str] = {}
        self._types: dict[tuple[str, str], ua.VariantType] = {}
        self._initial: dict[tuple[str, str], Value | list[float]] = {}  # the last value that was not None (a restart's)
        for asset, signal, value, unit in variables:
            self._initial[(asset, signal)] = value
            self._values[(asset, signal)] = (value, "Good")
            self._units[(asset, signal)] = unit
            self._types[(asset, signal)] = _variant_type(value)
        self._server: Server | None = None
        self._nodes: dict[tuple[str, str], ua.NodeId] = {}

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    @staticmethod
    def node_id(asset: str, signal: str) -> str:
        return f"ns=2;s={asset}.{signal}"

    async def start(self) -> None:
        if self._server is not None:
            return
        server = Server(user_manager=_Users(self._users) if self._users else None)
        await server.init()
        server.set_endpoint(f"opc.tcp://{self.host}:{self.port}/")
        server.set_server_name("digital twin emulator")
        if self._certificate and self._private_key:
            await server.load_certificate(self._certificate)
            await server.load_private_key(self._private_key)
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])  # an emulator: open by default
        server.set_identity_tokens([ua.UserNameIdentityToken] if self._users else [ua.AnonymousIdentityToken])
        idx = await server.register_namespace(NAMESPACE)
        objects: dict[str, object] = {}
        self._nodes = {}
        for (asset, signal), value in self._initial.items():
            obj = objects.get(asset)
            if obj is None:
                obj = objects[asset] = await server.nodes.objects.add_object(ua.NodeId(asset, idx),
                                                                          ua.QualifiedName(asset, idx))
            vt = self._types[(asset, signal)]
            var = await obj.add_variable(ua.NodeId(f"{asset}.{signal}", idx),  # type: ignore[attr-defined]
                                         ua.QualifiedName(signal, idx), ua.Variant(value, vt))
            unit = self._units[(asset, signal)]
            if unit:
                eu = ua.EUInformation(NamespaceUri="http://www.opcfoundation.org/UA/units/un/cefact",
                                      UnitId=-1, DisplayName=ua.LocalizedText(unit),
                                      Description=ua.LocalizedText(unit))
                await var.add_property(ua.NodeId(f"{asset}.{signal}.EngineeringUnits", idx),
                                       ua.QualifiedName("EngineeringUnits", 0), eu)
            self._nodes[(asset, signal)] = var.nodeid
        try:
            await server.start()
        except OSError as exc:
            raise OSError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from exc
        self._server = server
        for key, (value, status) in self._values.items():
            if status != "Good":
                await self._write(key, value, status)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            clock = server.iserver.time_task  # it ends within a second once told; cancelled, it ends now
            if clock is not None:
                clock.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await clock
                server.iserver.time_task = None
            await server.stop()

    async def set(self, asset: str, signal: str, value: Value, status: str = "Good") -> None:
        """Write ``value`` with the status code named ``status`` (kept across restarts)."""
        key = (asset, signal)
        if key not in self._values:
            raise KeyError(f"no variable {asset}.{signal}")
        self._values[key] = (value, status)
        if value is not None:
            self._initial[key] = value
        if self._server is not None:
            await self._write(key, value, status)

    async def _write(self, key: tuple[str, str], value: Value | list[float], status: str) -> None:
        assert self._server is not None
        code = ua.StatusCode(getattr(ua.StatusCodes, status))
        variant = ua.Variant(value, self._types[key]) if code.is_good() or value is not None else ua.Variant()
        dv = ua.DataValue(variant, StatusCode_=code, SourceTimestamp=datetime.now(UTC),
                          ServerTimestamp=datetime.now(UTC))
        await self._server.write_attribute_value(self._nodes[key], dv)

    async def delete(self, asset: str, signal: str) -> None:
        """Remove a variable from the running server (a node deleted at runtime)."""
        assert self._server is not None
        await self._server.delete_nodes([self._server.get_node(self._nodes[(asset, signal)])])


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
        for (asset, signal) in list(self.endpoint._values):
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
