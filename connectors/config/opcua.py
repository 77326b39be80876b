"""``[[sources.opcua]]``: machines read from OPC UA servers, node by node, like a register map.

The TOML shape is checked by the pydantic models below (through ``twin.validation``, so every
problem is ``file: sources.opcua[0].nodes[1].node: what is wrong (got X)``); ``convert_opcua`` then
checks what needs the rest of the configuration (the site, its machines and SKUs, their signals,
signals already fed by a Modbus device or another OPC UA node, the files security needs) and builds
the frozen ``OpcUaSource`` values ``connectors.opcua.source`` reads. A password is never in the
file: ``password_env``/``password_file`` say where it is (``connectors.config.secrets``), read when
the source connects.

TOML shape::

    [[sources.opcua]]
    id = "berlin-cnc"
    site = "pod-berlin"
    endpoint = "opc.tcp://10.0.0.7:4840"
    security = "SignAndEncrypt"          # None (default), Sign, SignAndEncrypt (Basic256Sha256)
    certificate = "pki/twin-cert.pem"    # the client's, for Sign and SignAndEncrypt
    private_key = "pki/twin-key.pem"
    user = "twin"                        # optional; its password from password_env or password_file
    password_env = "OPCUA_PASSWORD"
    sampling_interval_s = 0.5
    deadband = 0.0                       # absolute, for numeric nodes (0: every change)
    poll = false                         # true: read every poll_interval_s instead of subscribing
    nodes = [
      { asset = "CNC1", signal = "status", node = "ns=2;s=CNC1.Status", enum = { "7" = 3 } },
      { asset = "CNC1", signal = "spindle_temp_c", browse_path = "0:Objects/2:CNC1/2:SpindleTemp", scale = 0.1 },
    ]

``enum`` maps the server's value, as text (a string, or an integer's decimal digits), to what the
twin gets (a status code or a label); a value not in the map is BAD. ``unit`` overrides the
server's EngineeringUnits.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.config.signals import check_signal
from twin.errors import Problem
from twin.frozen import FrozenDict
from twin.spec import FleetSpec
from twin.validation import Id, Num, fail

__all__ = [
    "OpcUaNode",
    "OpcUaNodeModel",
    "OpcUaSource",
    "OpcUaSourceModel",
    "Security",
    "convert_opcua",
    "opcua_intervals",
]

Security = Literal["None", "Sign", "SignAndEncrypt"]
Name = Annotated[str, Field(min_length=1, max_length=512)]

_ENDPOINT = re.compile(r"^opc\.tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):(\d{1,5})(/\S*)?$")
_NODE_ID = re.compile(r"^(ns=\d+;)?(i=\d+|s=.+|g=[0-9A-Fa-f\-]{36}|b=\S+)$")
_PATH_PART = re.compile(r"^\d+:[^/]+$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, str_strip_whitespace=True)


class OpcUaNodeModel(_Model):
    """One node read into one signal of one asset."""

    asset: Id
    signal: Id
    node: Name | None = None
    browse_path: Name | None = None
    scale: Num | None = None
    offset: Num | None = None
    deadband: Num | None = Field(default=None, ge=0)
    unit: str | None = None
    enum: dict[Annotated[str, Field(min_length=1)], int | str] | None = None

    @field_validator("node")
    @classmethod
    def _node(cls, v: str | None) -> str | None:
        if v is not None and not _NODE_ID.match(v):
            raise fail("not an OPC UA node id: expected ns=N;s=NAME, ns=N;i=NUMBER, ns=N;g=GUID or ns=N;b=BYTES")
        return v

    @field_validator("browse_path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None and not all(_PATH_PART.match(p) for p in v.strip("/").split("/")):
            raise fail("not a browse path: expected NS:NAME parts joined by '/', e.g. 0:Objects/2:CNC1/2:Status")
        return v

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: float | None) -> float | None:
        if v == 0:
            raise fail("scale must not be 0")
        return v

    @model_validator(mode="after")
    def _one_address(self) -> OpcUaNodeModel:
        if (self.node is None) == (self.browse_path is None):
            raise fail("a node needs exactly one of 'node' (a node id) or 'browse_path'", has_got=False,
                       key="node")
        if self.enum is not None and (self.scale is not None or self.offset is not None):
            raise fail("an enum map reads the server's values as they are: it cannot be combined with scale or "
                       "offset", has_got=False, key="enum")
        if self.enum is not None and not self.enum:
            raise fail("an enum map needs at least one value", has_got=False, key="enum")
        return self


class OpcUaSourceModel(_Model):
    """``[[sources.opcua]]``: one OPC UA server and the nodes read from it."""

    id: Id
    site: Id
    endpoint: Name
    security: Security = "None"
    certificate: Name | None = None
    private_key: Name | None = None
    user: Name | None = None
    password_env: Name | None = None
    password_file: Name | None = None
    password: str | None = None  # refused: secrets never come from the configuration
    sampling_interval_s: Num = Field(default=1.0, ge=0, le=3600)
    publish_interval_s: Num | None = Field(default=None, gt=0, le=3600)
    deadband: Num = Field(default=0.0, ge=0)
    poll: bool = False
    poll_interval_s: Num = Field(default=1.0, ge=0.01, le=3600)
    timeout_s: Num = Field(default=4.0, gt=0, le=60)
    bad_after_s: Num = Field(default=10.0, gt=0, le=86400)
    reconnect_min_s: Num = Field(default=0.5, gt=0, le=60)
    reconnect_max_s: Num = Field(default=30.0, gt=0, le=3600)
    nodes: list[OpcUaNodeModel] = Field(min_length=1)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        m = _ENDPOINT.match(v)
        if m is None or not 1 <= int(m.group(2)) <= 65535:
            raise fail("expected opc.tcp://HOST:PORT (a port 1..65535)")
        return v

    @field_validator("password")
    @classmethod
    def _no_password(cls, v: str | None) -> str | None:
        if v is not None:
            raise fail("a password is never written in the configuration: use password_env or password_file",
                       has_got=False)
        return v


@dataclass(frozen=True, slots=True, kw_only=True)
class OpcUaNode:
    """One node of a source: ``ref`` is ("node", node id) or ("path", browse path)."""

    asset: str
    signal: str
    ref: tuple[str, str]
    scale: float = 1.0
    offset: float = 0.0
    deadband: float = 0.0
    unit: str | None = None  # None: the server's EngineeringUnits, when it has them
    enum: FrozenDict[str, int | str] = field(default_factory=FrozenDict)

    @property
    def where(self) -> str:
        """The node as the configuration names it."""
        return self.ref[1]


@dataclass(frozen=True, slots=True, kw_only=True)
class OpcUaSource:
    """A validated ``[[sources.opcua]]``: paths resolved against the configuration's folder."""

    id: str
    site: str
    endpoint: str
    nodes: tuple[OpcUaNode, ...]
    security: Security = "None"
    certificate: Path | None = None
    private_key: Path | None = None
    user: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    sampling_interval_s: float = 1.0
    publish_interval_s: float | None = None
    poll: bool = False
    poll_interval_s: float = 1.0
    timeout_s: float = 4.0
    bad_after_s: float = 10.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0

    @property
    def interval_s(self) -> float:
        """How often its values reach the twin: every poll, or (subscribed) every check of the session.

        A subscription sends a value when it changes; each successful check of the session re-sends
        the values it has not changed since, so the twin sees them refreshed like polled ones.
        """
        if self.poll:
            return self.poll_interval_s
        return max(0.1, min(1.0, self.bad_after_s / 4))

    @property
    def publish_s(self) -> float:
        """The subscription's publishing interval: as configured, else the sampling interval (at least 50 ms)."""
        return self.publish_interval_s or max(self.sampling_interval_s, 0.05)


def convert_opcua(models: Sequence[OpcUaSourceModel], fleet: FleetSpec, problems: list[Problem], *, base: Path,
                  fed: Mapping[tuple[str, str, str], str] | None = None) -> tuple[OpcUaSource, ...]:
    """Build the sources of ``[[sources.opcua]]`` (validated by the plant model); problems are appended.

    ``fed`` maps (site, asset, signal) already fed by another source to the path that feeds it.
    """
    taken: dict[tuple[str, str, str], str] = dict(fed or {})
    site_ids = {s.id for s in fleet.sites}
    ids: set[str] = set()
    out: list[OpcUaSource] = []

    def resolve(p: str | None) -> Path | None:
        return None if p is None else Path(os.path.normpath(base / p))

    for i, s in enumerate(models):
        path = f"sources.opcua[{i}]"
        if s.id in ids:
            problems.append(Problem(path=f"{path}.id", message="duplicate OPC UA source id", got=s.id))
        ids.add(s.id)
        if s.reconnect_max_s < s.reconnect_min_s:
            problems.append(Problem(path=f"{path}.reconnect_max_s", message="below reconnect_min_s",
                                    got=s.reconnect_max_s))
        if s.security != "None":
            for key in ("certificate", "private_key"):
                if getattr(s, key) is None:
                    problems.append(Problem(path=f"{path}.{key}", message=f"security {s.security} needs the "
                                            "client's certificate and private_key (PEM or DER files)",
                                            has_got=False))
        if (s.password_env or s.password_file) and not s.user:
            problems.append(Problem(path=f"{path}.user", message="a password is given but no user",
                                    has_got=False))
        if s.site not in site_ids:
            problems.append(Problem(path=f"{path}.site", message="no site with this id", got=s.site))
            continue
        nodes = list(_nodes(s, path, fleet, taken, problems))
        out.append(OpcUaSource(
            id=s.id, site=s.site, endpoint=s.endpoint, nodes=tuple(nodes), security=s.security,
            certificate=resolve(s.certificate), private_key=resolve(s.private_key), user=s.user,
            password_env=s.password_env, password_file=resolve(s.password_file),
            sampling_interval_s=s.sampling_interval_s, publish_interval_s=s.publish_interval_s, poll=s.poll,
            poll_interval_s=s.poll_interval_s, timeout_s=s.timeout_s, bad_after_s=s.bad_after_s,
            reconnect_min_s=s.reconnect_min_s, reconnect_max_s=s.reconnect_max_s,
        ))
    return tuple(out)


def _nodes(s: OpcUaSourceModel, path: str, fleet: FleetSpec, taken: dict[tuple[str, str, str], str],
           problems: list[Problem]) -> Iterable[OpcUaNode]:
    for j, n in enumerate(s.nodes):
        npath = f"{path}.nodes[{j}]"
        if not check_signal(fleet.site(s.site), n.asset, n.signal, npath, problems):
            continue
        key = (s.site, n.asset, n.signal)
        if key in taken:
            problems.append(Problem(path=f"{npath}.signal", message=f"{n.asset}.{n.signal} is already fed by "
                                    f"{taken[key]}", got=n.signal))
            continue
        taken[key] = npath
        ref = ("node", n.node) if n.node is not None else ("path", str(n.browse_path))
        yield OpcUaNode(asset=n.asset, signal=n.signal, ref=ref,
                        scale=1.0 if n.scale is None else n.scale, offset=0.0 if n.offset is None else n.offset,
                        deadband=s.deadband if n.deadband is None else n.deadband, unit=n.unit,
                        enum=FrozenDict(n.enum or {}))


def opcua_intervals(sources: Iterable[OpcUaSource]) -> dict[tuple[str, str], float]:
    """(site, asset) -> the shortest interval at which an OPC UA source refreshes it."""
    out: dict[tuple[str, str], float] = {}
    for s in sources:
        for n in s.nodes:
            key = (s.site, n.asset)
            out[key] = min(out.get(key, float("inf")), s.interval_s)
    return out
