"""The Modbus TCP client side: the one module of the product that imports pymodbus's client.

(``connectors.emulator.modbus_server`` is the only other module importing pymodbus, for the emulator's
server side.) Everything pymodbus raises or answers is translated here into a ``ReadResult``:
both of its failure tracks, raised exceptions (``ConnectionException``, ``ModbusIOException``,
timeouts) and error responses (``isError()``, with the Modbus exception code), become a failure
with a reason such as ``exception 2: illegal data address``. Nothing pymodbus-specific leaks out.
pymodbus 3.16 is pinned: ``device_id=`` and ``count=`` are passed by name.

What a device can cost is bounded here:

* pymodbus's own log is tamed when this module is imported (:func:`tame_pymodbus_logging`): it
  logs only CRITICAL, keeps no buffered frames (after each of its errors it appended the hex dump
  of the last 20 frames of every device), and each message is cut to 300 characters. Every
  failure is told by our ``ReadResult`` reason instead, logged once by the poller.
* An answer must match its request: the same function code (or its exception, code + 0x80) and the
  same transaction id (pymodbus itself lets a transaction id 0 through, and any function code). A
  mismatch is ``Failure.PROTOCOL`` ("answer to another request...") and the connection is reset.
* At most ``MAX_RX_BYTES`` may arrive for one request (two of the largest Modbus TCP frames): a
  device sending more (endless bytes) has its connection dropped at once (``Failure.PROTOCOL``).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.logging import Log as _PymodbusLog
from pymodbus.pdu import ModbusPDU

from connectors.modbus.spec import RegisterKind, exception_reason
from twin.errors import SourceError

__all__ = ["MAX_RX_BYTES", "ConnectFailed", "Failure", "ModbusConnection", "ReadResult", "tame_pymodbus_logging"]

log = logging.getLogger(__name__)

MAX_ADU_BYTES = 260  # the largest Modbus TCP frame: 7-byte MBAP header + 253-byte PDU
MAX_RX_BYTES = 2 * MAX_ADU_BYTES  # most bytes accepted for one request (a late answer and the answer fit)
_LOG_CHARS = 300


class _Bounded(logging.Filter):
    """Cuts every pymodbus log message to ``_LOG_CHARS`` characters (a frame dump is unbounded)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if len(text) > _LOG_CHARS:
            record.msg, record.args = text[:_LOG_CHARS] + f"... ({len(text)} characters)", None
        return True


def tame_pymodbus_logging(level: int = logging.CRITICAL) -> None:
    """Bound what pymodbus logs: only ``level`` and above, no buffered frame dumps, short messages.

    Called when this module is imported; call it again (e.g. ``logging.DEBUG``) to see pymodbus's
    own messages while diagnosing a device.
    """
    _PymodbusLog.MAX_FRAMES = 0  # it kept the last 20 frames of all devices to dump after an error
    _PymodbusLog.frame_dump = []
    for name in ("pymodbus", "pymodbus.logging"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if not any(isinstance(f, _Bounded) for f in logger.filters):
            logger.addFilter(_Bounded())


tame_pymodbus_logging()


class Failure(enum.Enum):
    """Why a read returned no values."""

    EXCEPTION = "exception"  # the device answered a Modbus exception response
    TIMEOUT = "timeout"  # no answer in time: the link is suspect
    CONNECTION = "connection"  # not connected, or the connection broke
    PROTOCOL = "protocol"  # an answer that does not fit the request


class ConnectFailed(SourceError):
    """The connection could not be opened; ``reason`` says why (``cannot connect to HOST:PORT: ...``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReadResult(NamedTuple):
    """The outcome of one read: ``values`` (registers as ints, bits as bools), or a failure and why."""

    values: Sequence[int] | Sequence[bool] | None
    failure: Failure | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.failure is None


_tuple_new = tuple.__new__


def _answered(values: Sequence[int]) -> ReadResult:
    """``ReadResult(values)``, built straight from its tuple (once per answered request)."""
    result: ReadResult = _tuple_new(ReadResult, (values, None, ""))
    return result


class ModbusConnection:
    """One TCP connection to one device, serving one request at a time (a second one is refused).

    It never reconnects on its own: the poller decides when (with backoff). Every request is
    bounded by ``timeout_s``, and ends at once (``Failure.CONNECTION``) when the connection is
    lost while it waits: pymodbus would only give up on it at its timeout.

    Usage::

        conn = ModbusConnection("127.0.0.1", 502, device_id=1, timeout_s=1.0)
        try:
            await conn.connect()  # raises ConnectFailed (its reason) when the device cannot be reached
            result = await conn.read(RegisterKind.HOLDING, 0, 10)
        finally:
            conn.close()
    """

    def __init__(self, host: str, port: int, *, device_id: int, timeout_s: float) -> None:
        self.host = host
        self.port = port
        self.device_id = device_id
        self.timeout_s = timeout_s
        self._client: AsyncModbusTcpClient | None = None
        self._reader: asyncio.Task[object] | None = None  # the task waiting for an answer, if any
        self._lost = False  # set when the link went down under that task
        self._rx = 0  # bytes received since the last request was sent (reset by pymodbus's send)
        self._fault = ""  # why we dropped the connection ourselves (too many bytes), reported by read()

    def _link_changed(self, up: bool) -> None:
        """Called by pymodbus (``trace_connect``): a lost link ends the request in flight at once."""
        reader = self._reader
        if up or reader is None or self._lost:
            return
        if reader is asyncio.current_task():
            return  # pymodbus closing the link from inside the request (too many timeouts): it raises itself
        self._lost = True
        reader.cancel()  # read() tells this cancellation from its caller's

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    async def connect(self) -> None:
        """Open the connection; raises ``ConnectFailed`` (with the reason) when it cannot."""
        self.close()
        client = AsyncModbusTcpClient(
            self.host, port=self.port, timeout=self.timeout_s, retries=0, reconnect_delay=0,
            name=f"{self.host}:{self.port}", trace_connect=self._link_changed,
        )
        try:
            ok = await asyncio.wait_for(client.connect(), timeout=self.timeout_s + 0.5)
        except (TimeoutError, ModbusException, OSError) as exc:
            client.close()
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {exc or type(exc).__name__}") from exc
        if not ok:
            client.close()
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}")
        self._client = client
        self._rx, self._fault = 0, ""
        protocol = client.ctx
        inner = protocol.data_received

        def counted(data: bytes) -> None:
            """Every chunk the socket delivers, counted before pymodbus sees it (asyncio calls this)."""
            self._rx += len(data)
            if self._rx <= MAX_RX_BYTES:
                inner(data)
            elif not self._fault:
                self._fault = (f"the device sent over {MAX_RX_BYTES} bytes for one request "
                               f"({self._rx} bytes): connection dropped")
                client.close()  # no more reads: an endless sender costs one socket read per connection

        send = protocol.low_level_send

        def sending(data: bytes, addr: tuple[str, int] | None = None) -> None:
            """Every request pymodbus sends (ours or any other caller's): the byte budget starts again."""
            self._rx = 0
            send(data, addr=addr)

        protocol.data_received = counted  # type: ignore[method-assign]
        protocol.low_level_send = sending

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def read(self, kind: RegisterKind, address: int, count: int) -> ReadResult:
        """Read ``count`` registers or bits of ``kind`` from protocol ``address``.

        One request at a time: the poller's one task per device never overlaps two, and a second
        caller while one waits is refused (``RuntimeError``) rather than queued behind it.
        """
        client = self._client
        if client is None or not client.connected:
            if self._fault:  # we dropped it between two requests (bytes nobody asked for)
                return ReadResult(None, Failure.PROTOCOL, self._fault)
            return ReadResult(None, Failure.CONNECTION, "not connected")
        if self._reader is not None:
            raise RuntimeError(f"{self.host}:{self.port}: a read is already in flight on this connection")
        # The request's deadline is pymodbus's own (timeout=timeout_s, retries=0: its wait for the
        # answer raises ModbusIOException). No timer of ours on top: one per request costs more than
        # decoding the answer; a lost link ends the wait through _link_changed instead.
        task = asyncio.current_task()
        self._reader, self._lost = task, False
        ours = False  # whether our cancellation reached this task as CancelledError
        try:
            request = _read_holding if kind is _HOLDING else _read_input if kind is _INPUT else _REQUESTS[kind]
            response = await request(client, address, count=count, device_id=self.device_id)
        except asyncio.CancelledError:
            if not self._lost or task is None:
                raise  # the caller's cancellation
            ours = True
            if task.uncancel() > 0:
                raise  # the caller cancelled too
            if self._fault:
                return self._reset(self._fault)
            return ReadResult(None, Failure.CONNECTION, "connection lost while waiting for the answer")
        except ConnectionException as exc:
            return ReadResult(None, Failure.CONNECTION, f"connection lost: {exc}")
        except ModbusException as exc:  # ModbusIOException: no answer within pymodbus's timeout
            if self._fault:
                return self._reset(self._fault)
            if not client.connected:
                return ReadResult(None, Failure.CONNECTION, f"connection lost: {exc}")
            return ReadResult(None, Failure.TIMEOUT, f"timeout after {self.timeout_s:g} s")
        except OSError as exc:
            return ReadResult(None, Failure.CONNECTION, f"connection lost: {exc}")
        finally:
            self._reader = None
            if self._lost and not ours and task is not None:
                task.uncancel()  # the answer (or an error) came first and absorbed our cancellation
        fc = response.function_code
        expected = 3 if kind is _HOLDING else 4 if kind is _INPUT else _FUNCTION[kind]
        if (fc & 0x7F) != expected or response.transaction_id != client.ctx.request_transaction_id:
            return self._reset(f"answer to another request: function {fc & 0x7F}, transaction "
                               f"{response.transaction_id} for function {expected}, transaction "
                               f"{client.ctx.request_transaction_id}")
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            return ReadResult(None, Failure.EXCEPTION, exception_reason(code))
        if kind is _COIL or kind is _DISCRETE:
            bits = response.bits
            if len(bits) < count:
                return ReadResult(None, Failure.PROTOCOL, f"asked {count} bits, got {len(bits)}")
            return ReadResult(bits[:count])
        regs = response.registers
        if len(regs) != count:
            return ReadResult(None, Failure.PROTOCOL, f"asked {count} registers, got {len(regs)}")
        return _answered(regs)


    def _reset(self, reason: str) -> ReadResult:
        """A protocol fault: drop the connection (the poller opens a fresh one) and say why."""
        log.debug("%s:%d: %s", self.host, self.port, reason)
        self.close()
        return ReadResult(None, Failure.PROTOCOL, reason)


# pymodbus's request per register kind, called unbound (one coroutine less per request than a
# method of ours choosing among them); the kinds compared by identity on the hot path (an Enum's
# hash is a Python-level call).
_REQUESTS: dict[RegisterKind, Callable[..., Awaitable[ModbusPDU]]] = {
    RegisterKind.HOLDING: AsyncModbusTcpClient.read_holding_registers,
    RegisterKind.INPUT: AsyncModbusTcpClient.read_input_registers,
    RegisterKind.COIL: AsyncModbusTcpClient.read_coils,
    RegisterKind.DISCRETE: AsyncModbusTcpClient.read_discrete_inputs,
}
_FUNCTION = {RegisterKind.COIL: 1, RegisterKind.DISCRETE: 2, RegisterKind.HOLDING: 3, RegisterKind.INPUT: 4}
_HOLDING, _INPUT, _COIL, _DISCRETE = RegisterKind.HOLDING, RegisterKind.INPUT, RegisterKind.COIL, RegisterKind.DISCRETE
_read_holding, _read_input = _REQUESTS[_HOLDING], _REQUESTS[_INPUT]
