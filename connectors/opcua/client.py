"""The one OPC UA client module: the only import of asyncua on the collector's side.

It maps asyncua's sessions, data values and errors into plain values: a ``Sample`` (the value as
a plain Python scalar, its status code's severity and name, the source time), a ``ConnectFailed``
or ``OpcUaError`` with a one-line reason. Nothing outside this module sees an asyncua type.

``OpcUaConnection`` is one session to one endpoint: ``connect`` (security mode None, Sign or
SignAndEncrypt with the client's certificate and key; user and password when given), ``resolve``
(node ids or browse paths to handles), ``read`` (one request for many nodes), ``units`` (the
EngineeringUnits property, when the server has it), ``subscribe`` (one subscription, each node
with the sampling interval and an absolute deadband), ``check`` (is the session alive) and
``browse`` (the address space for ``twin browse``). Credentials are passed in, never logged (nor by
asyncua, whose log is held at WARNING unless configured).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from asyncua import Client, ua
from asyncua.crypto import security_policies

from twin.readings import Value

__all__ = [
    "BrowseRow",
    "ConnectFailed",
    "Handle",
    "OpcUaConnection",
    "OpcUaError",
    "Sample",
    "SampleCallback",
    "Severity",
    "sample_of",
]

log = logging.getLogger(__name__)

# asyncua's DEBUG and INFO lines print whole requests, a session's password included, and every
# connect: unless someone set its level on purpose, it says only its warnings (ours say the rest).
if logging.getLogger("asyncua").level == logging.NOTSET:
    logging.getLogger("asyncua").setLevel(logging.WARNING)

Severity = Literal["good", "uncertain", "bad"]
Handle = Any  # an asyncua Node, opaque outside this module


class OpcUaError(Exception):
    """A request failed; ``reason`` is one line for a reading or a log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConnectFailed(OpcUaError):
    """The session could not be opened (refused, timed out, security or credentials rejected)."""


class Sample(NamedTuple):
    """One value as the server gave it: ``severity`` and ``status`` name its status code.

    A named tuple: one is made per data change, thousands a second (a tuple is built in one step,
    a frozen dataclass field by field: bench/opcua_bench.py).
    """

    value: Value
    severity: Severity
    status: str  # the status code's name, e.g. "Good", "BadSensorFailure"
    stamp: datetime | None  # the source (else server) timestamp as decoded (naive UTC): ``ts`` is it, aware
    problem: str = ""  # why the value cannot be used (an array, an unsupported type), else ""

    @property
    def ts(self) -> datetime | None:
        """The source (else server) timestamp, UTC; None when the server gave none.

        Made when asked: the readings carry the collector's clock, and the conversion would be a
        third of a sample's cost.
        """
        return _utc(self.stamp)


SampleCallback = Callable[[int, Sample], None]


@dataclass(frozen=True, slots=True)
class BrowseRow:
    """One variable of the address space: where it is, what it is, what it holds now."""

    path: str  # "0:Objects/2:CNC1/2:Status"
    node_id: str  # "ns=2;s=CNC1.Status"
    data_type: str  # "Int32"
    value: str  # the current value as text, or the status name when it is not Good


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ua.UaStatusCodeError):
        return str(ua.StatusCode(exc.code).name)
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    text = str(exc).strip().splitlines()
    return text[0] if text and text[0] else type(exc).__name__


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None or ts.year < 1602:  # asyncua's "no time" is 1601-01-01
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


_SCALARS = (bool, int, float, str)


def _plain(variant: Any) -> tuple[Value, str]:
    """The variant's value as a plain scalar, or None and why it is not one."""
    if variant is None:
        return None, ""
    value = variant.Value
    if variant.is_array or isinstance(value, list | tuple):
        return None, f"arrays are not supported (got an array of {len(value or [])} {variant.VariantType.name})"
    if value is None or isinstance(value, bool | int | float | str):
        return value, ""
    if isinstance(value, datetime):
        utc = _utc(value)
        return (utc.timestamp() if utc is not None else None), ""
    if isinstance(value, ua.LocalizedText):
        return value.Text, ""
    if isinstance(value, ua.QualifiedName):
        return value.Name, ""
    if isinstance(value, ua.EUInformation):
        return value.DisplayName.Text, ""
    return None, f"data type {variant.VariantType.name} is not supported (a signal is a number, a flag or text)"


def sample_of(dv: Any) -> Sample:
    """A ``Sample`` from an asyncua DataValue."""
    status = dv.StatusCode_
    ts = dv.SourceTimestamp if dv.SourceTimestamp is not None else dv.ServerTimestamp
    if status is None or status.value == 0:  # Good: the hot path (thousands a second through a subscription)
        variant = dv.Value
        value = None if variant is None else variant.Value
        if variant is not None and not variant.is_array and type(value) in _SCALARS:
            return Sample(value, "good", "Good", ts)
        value, problem = _plain(variant)
        return Sample(value, "good", "Good", ts, problem)
    severity: Severity = "good" if status.is_good() else "uncertain" if status.is_uncertain() else "bad"
    value, problem = _plain(dv.Value) if severity != "bad" else (None, "")
    return Sample(value, severity, status.name, ts, problem)


async def _drop(client: Any) -> None:
    """Stop a broken client's background tasks (watchdog, channel renewal, publishing) and its socket.

    What ``Client.disconnect`` does minus the requests to a server that is gone; awaiting the tasks
    retrieves their exceptions (asyncio would otherwise log each one as never retrieved).
    """
    client._closing = True
    for task in (getattr(client, "_monitor_server_task", None), getattr(client, "_renew_channel_task", None),
                 getattr(client.uaclient, "_publish_task", None)):
        if task is not None and not task.done():
            task.cancel()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    protocol = getattr(client.uaclient, "protocol", None)
    if protocol is not None and protocol.state != "closed":
        client.uaclient.disconnect_socket()


class _Handler:
    """asyncua's subscription handler: each data change to ``callback(index, sample)``."""

    def __init__(self, callback: SampleCallback, on_status: Callable[[str], None]) -> None:
        self.callback = callback
        self.on_status = on_status

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        del node, val
        self.callback(data.subscription_data.client_handle - 1, sample_of(data.monitored_item.Value))

    def status_change_notification(self, status: Any) -> None:
        code = getattr(status, "Status", status)
        self.on_status(ua.StatusCode(getattr(code, "value", 0)).name if not isinstance(code, int)
                       else ua.StatusCode(code).name)


_MODES = {"Sign": ua.MessageSecurityMode.Sign, "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt}


class OpcUaConnection:
    """One session to ``endpoint``; every request has ``timeout_s``.

    ``security`` is "None", "Sign" or "SignAndEncrypt" (policy Basic256Sha256, with ``certificate``
    and ``private_key`` file paths); ``user``/``password`` log in with a user name, else anonymous.
    """

    def __init__(self, endpoint: str, *, timeout_s: float = 4.0, security: str = "None",
                 certificate: str | None = None, private_key: str | None = None,
                 user: str | None = None, password: str | None = None) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.security = security
        self._certificate, self._private_key = certificate, private_key
        self._user, self._password = user, password
        self._client: Any = None
        self._subscription: Any = None
        self.lost: str = ""  # set by the subscription when the server reports the session gone

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def connect(self) -> None:
        """Open the session; raises ``ConnectFailed`` with the reason."""
        await self.close()
        client = Client(self.endpoint, timeout=self.timeout_s)
        client.session_timeout = max(10_000, int(self.timeout_s * 4000))
        if self._user:
            client.set_user(self._user)
            if self._password:
                client.set_password(self._password)
        try:
            if self.security in _MODES:
                await client.set_security(security_policies.SecurityPolicyBasic256Sha256,
                                          str(self._certificate), str(self._private_key),
                                          mode=_MODES[self.security])
            await asyncio.wait_for(client.connect(), self.timeout_s * 2)
        except Exception as exc:  # asyncua raises many kinds (e.g. a rejected certificate): all are a reason
            await self._abandon(client, graceful=False)  # no session to close: drop what was opened
            raise ConnectFailed(_reason(exc)) from None
        self._client = client
        self.lost = ""

    @staticmethod
    async def _abandon(client: Any, *, graceful: bool = True) -> None:
        if not graceful:  # the server is gone: closing its session would only time out and log warnings
            await _drop(client)
            return
        try:
            await asyncio.wait_for(client.disconnect(), 1.0)
        except Exception:  # already broken: only the sockets and tasks need to go
            client.disconnect_socket()

    async def close(self, *, graceful: bool = True) -> None:
        """End the session (``graceful=False``: the link failed, only drop the socket)."""
        client, self._client, self._subscription = self._client, None, None
        if client is not None:
            await self._abandon(client, graceful=graceful)

    def _require(self) -> Any:
        if self._client is None:
            raise OpcUaError("not connected")
        return self._client

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await asyncio.wait_for(awaitable, self.timeout_s)
        except OpcUaError:
            raise
        except Exception as exc:  # every failure of a request is its reason, as data
            raise OpcUaError(_reason(exc)) from None

    async def resolve(self, refs: Sequence[tuple[str, str]]) -> list[Handle | str]:
        """Each ("node", "ns=2;s=X") or ("path", "0:Objects/2:CNC1/2:X") as a handle, or the reason it is not one."""
        client = self._require()
        out: list[Handle | str] = []
        for kind, text in refs:
            try:
                if kind == "node":
                    node = client.get_node(text)
                    await self._call(node.read_node_class())
                else:
                    parts = [p for p in text.split("/") if p]
                    if parts and parts[0] in ("0:Root", "Root"):
                        parts = parts[1:]
                    node = await self._call(client.nodes.root.get_child(parts))
                out.append(node)
            except (OpcUaError, ua.UaError, ValueError) as exc:
                out.append(exc.reason if isinstance(exc, OpcUaError) else _reason(exc))
        return out

    async def read(self, handles: Sequence[Handle]) -> list[Sample]:
        """The current value of each node, in one request."""
        client = self._require()
        values = await self._call(client.read_attributes(list(handles)))
        return [sample_of(dv) for dv in values]

    async def units(self, handles: Sequence[Handle]) -> list[str | None]:
        """Each node's EngineeringUnits display name, None where it has none."""
        out: list[str | None] = []
        for node in handles:
            try:
                prop = await self._call(node.get_child(["0:EngineeringUnits"]))
                eu = await self._call(prop.read_value())
                text = getattr(getattr(eu, "DisplayName", None), "Text", None)
                out.append(str(text) if text else None)
            except (OpcUaError, ua.UaError):
                out.append(None)
        return out

    async def subscribe(self, handles: Sequence[Handle], *, publish_ms: float, sampling_ms: Sequence[float],
                        deadbands: Sequence[float], callback: SampleCallback) -> list[str]:
        """One subscription for ``handles``; returns, per node, "" or the reason it could not be monitored."""
        client = self._require()

        def lost(status: str) -> None:
            self.lost = status

        sub = await self._call(client.create_subscription(publish_ms, _Handler(callback, lost)))
        self._subscription = sub
        requests = []
        for i, node in enumerate(handles):
            params = ua.MonitoringParameters()
            params.ClientHandle = i + 1
            params.SamplingInterval = sampling_ms[i]
            params.QueueSize = 1
            params.DiscardOldest = True
            if deadbands[i] > 0:
                flt = ua.DataChangeFilter()
                flt.Trigger = ua.DataChangeTrigger.StatusValue
                flt.DeadbandType = ua.DeadbandType.Absolute
                flt.DeadbandValue = deadbands[i]
                params.Filter = flt
            item = ua.ReadValueId()
            item.NodeId = node.nodeid
            item.AttributeId = ua.AttributeIds.Value
            req = ua.MonitoredItemCreateRequest()
            req.ItemToMonitor = item
            req.MonitoringMode = ua.MonitoringMode.Reporting
            req.RequestedParameters = params
            requests.append(req)
        results = await self._call(sub.create_monitored_items(requests))
        return [r.name if isinstance(r, ua.StatusCode) else "" for r in results]

    async def check(self) -> None:
        """Raise ``OpcUaError`` unless the session answers (the server's state, one read)."""
        client = self._require()
        if self.lost:
            raise OpcUaError(f"subscription lost ({self.lost})")
        try:
            await client.check_connection()
        except Exception as exc:  # the watchdog or publish task died: that is the reason
            raise OpcUaError(_reason(exc)) from None
        await self._call(client.nodes.server_state.read_value())

    async def browse(self, depth: int) -> list[BrowseRow]:
        """Every variable under Objects, ``depth`` levels deep (the server's own node excluded)."""
        client = self._require()
        rows: list[BrowseRow] = []
        objects = client.nodes.objects
        server_id = client.nodes.server.nodeid

        async def walk(node: Any, path: str, level: int) -> None:
            if level > depth:
                return
            children = await self._call(node.get_children(refs=ua.ObjectIds.HierarchicalReferences))
            for child in children:
                if child.nodeid == server_id:
                    continue
                name = await self._call(child.read_browse_name())
                cpath = f"{path}/{name.NamespaceIndex}:{name.Name}"
                cls = await self._call(child.read_node_class())
                if cls == ua.NodeClass.Variable:
                    rows.append(await self._row(child, cpath))
                if cls in (ua.NodeClass.Object, ua.NodeClass.Variable):
                    await walk(child, cpath, level + 1)

        await walk(objects, "0:Objects", 1)
        return rows

    async def _row(self, node: Any, path: str) -> BrowseRow:
        client = self._require()
        try:
            type_id = await self._call(node.read_data_type())
            type_name = (await self._call(client.get_node(type_id).read_browse_name())).Name
        except OpcUaError:
            type_name = "?"
        try:
            sample = sample_of(await self._call(node.read_data_value(raise_on_bad_status=False)))
            shown = sample.status if sample.severity != "good" else (sample.problem or str(sample.value))
        except OpcUaError as exc:
            shown = exc.reason
        return BrowseRow(path=path, node_id=node.nodeid.to_string(), data_type=str(type_name), value=shown)
