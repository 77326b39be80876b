"""Fixtures of the OPC UA tests: the Modbus test fleet with CNC1 of pod-a on an OPC UA server, free ports."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.config import PlantConfig, load_text
from connectors.emulator.opcua_endpoint import OpcUaEndpoint
from tests.conftest import free_port
from tests.connectors.modbus.conftest import FLEET, fleet_text

# CNC1's signals as the emulator's OPC UA server names them (ns=2;s=ASSET.signal)
VARIABLES = [("CNC1", "status", 1, ""), ("CNC1", "good_count", 0, ""), ("CNC1", "scrap_count", 0, ""),
             ("CNC1", "spindle_temp_c", 215.0, "degC"), ("CNC1", "vibration_mm_s", 0.5, "mm/s")]

OPCUA = """
[[sources.opcua]]
id = "a-cnc-ua"
site = "pod-a"
endpoint = "opc.tcp://127.0.0.1:{port}"
sampling_interval_s = 0.05
publish_interval_s = 0.05
poll_interval_s = 0.1
timeout_s = 1.0
bad_after_s = 1.0
reconnect_min_s = 0.05
reconnect_max_s = 0.2
nodes = [
  {{ asset = "CNC1", signal = "status", node = "ns=2;s=CNC1.status" }},
  {{ asset = "CNC1", signal = "good_count", browse_path = "0:Objects/2:CNC1/2:good_count" }},
  {{ asset = "CNC1", signal = "spindle_temp_c", node = "ns=2;s=CNC1.spindle_temp_c", scale = 0.1 }},
]
"""


def mixed_text(modbus_port: int, opcua_port: int) -> str:
    """pod-a with P1, P2 and the stock on Modbus (a-cell-1) and CNC1 on OPC UA; no other device."""
    text = fleet_text(p15020=modbus_port, p15021=free_port(), p15022=free_port())
    text = text[: text.index('[[sources.modbus]]\nid = "a-cnc"')]
    return text + OPCUA.format(port=opcua_port)


class ServerThread:
    """An ``OpcUaEndpoint`` on its own event loop in a thread: one server start (seconds) for many tests.

    ``call(coro)`` runs a coroutine on the server's loop and waits for it (e.g. ``call(ep.set(...))``).
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.endpoint = OpcUaEndpoint(port, VARIABLES)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="opcua-test-server", daemon=True)
        self._thread.start()
        self.call(self.endpoint.start())

    def call(self, coro: Coroutine[Any, Any, Any], timeout_s: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def reset(self) -> None:
        """Every variable back to its first value, Good."""
        for asset, signal, value, _ in VARIABLES:
            self.call(self.endpoint.set(asset, signal, value))

    def close(self) -> None:
        self.call(self.endpoint.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10.0)
        self._loop.close()


@pytest.fixture(scope="module")
def shared_server() -> Iterator[ServerThread]:
    srv = ServerThread(free_port())
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def server(shared_server: ServerThread) -> Iterator[ServerThread]:
    """The module's server, its variables reset after the test."""
    yield shared_server
    shared_server.reset()


@pytest.fixture
def ua_port(request: pytest.FixtureRequest) -> int:
    """The port of the module's shared server when the test uses it, else a free one."""
    if "server" in request.fixturenames:
        return int(request.getfixturevalue("server").port)
    return free_port()


@pytest.fixture
def mixed_cfg(ua_port: int) -> PlantConfig:
    return load_text(mixed_text(free_port(), ua_port), source=FLEET)


@pytest.fixture
def mixed_file(tmp_path: Path, ua_port: int) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(mixed_text(free_port(), ua_port), encoding="utf-8")
    return path


def run(coro_fn: Callable[[], Awaitable[Any]], timeout_s: float = 30.0) -> Any:
    """Run a test's coroutine with a bound: a hung server fails the test instead of the run."""
    async def bounded() -> Any:
        return await asyncio.wait_for(coro_fn(), timeout_s)
    return asyncio.run(bounded())
