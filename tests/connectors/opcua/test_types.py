"""Every OPC UA built-in type a server may hold, read by the source: decoded or refused with the reason.

The emulator's server holds one variable of each built-in type (``BASIC_TYPES``: ids 1 to 25 of
Part 6 but 24, Variant, which only wraps another value); a polling reader
reads them all in one request. Numbers, flags and text become the twin's value unchanged; times
become seconds since 1970 (UTC); a qualified name or a localized text its text; the rest (byte
strings, GUIDs, node ids, structures...) cannot be a machine signal and is BAD, naming the type.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from connectors.config import PlantConfig
from connectors.config.opcua import OpcUaNode
from connectors.emulator.opcua_endpoint import BASIC_TYPES, OpcUaEndpoint, Placed
from connectors.opcua.source import OpcUaReader
from tests.connectors.opcua.conftest import run
from twin.readings import Quality, Reading

pytestmark = pytest.mark.server

DECODED = {
    "Boolean": True, "SByte": -100, "Byte": 200, "Int16": -30000, "UInt16": 60000, "Int32": -2_000_000,
    "UInt32": 4_000_000_000, "Int64": -(2**40), "UInt64": 2**63 + 5,
    "Float": 1.5, "Double": 2.25,  # both exact in binary: 1.5 is 3/2, 2.25 is 9/4
    "String": "ready",
    # 2026-11-17T06:00:30Z: 20,774 days after 1970-01-01 = 1,794,873,600 s, plus 6 h 0 min 30 s = 21,630 s
    "DateTime": 1_794_895_230.0,
    "QualifiedName": "Milling", "LocalizedText": "Automatic",
}
REFUSED = ["Guid", "ByteString", "XmlElement", "NodeId", "ExpandedNodeId", "StatusCode", "ExtensionObject",
           "DataValue", "DiagnosticInfo"]


def test_the_lists_cover_every_built_in_type_but_variant() -> None:
    # Part 6 numbers the built-in types 1 (Boolean) to 25 (DiagnosticInfo): 25, less 24 (Variant)
    assert len(BASIC_TYPES) == 24 and sorted(BASIC_TYPES) == sorted([*DECODED, *REFUSED])
    assert datetime(2026, 11, 17, 6, 0, 30, tzinfo=UTC).timestamp() == DECODED["DateTime"]


def test_every_basic_type_is_decoded_or_refused_with_its_name(mixed_cfg: PlantConfig, ua_port: int) -> None:
    src = mixed_cfg.opcua[0]
    template = src.nodes[0]
    names = list(BASIC_TYPES)
    # one node per type, each fed into CNC1's status (a reader reads the nodes; the twin is not involved)
    nodes = tuple(OpcUaNode(asset=template.asset, signal=template.signal, ref=("node", f"ns=2;s=T.{n}"))
                  for n in names)
    placed = [Placed(key=("T", n), node_id=f"ns=2;s=T.{n}", path=((2, "T"), (2, n)), value=BASIC_TYPES[n],
                     data_type=n) for n in names]

    async def go() -> list[Reading]:
        ep = OpcUaEndpoint(ua_port, placed)
        await ep.start()
        reader = OpcUaReader(replace(src, nodes=nodes, poll=True))
        try:
            return await reader.poll_once()
        finally:
            await reader.close()
            await ep.stop()

    readings = dict(zip(names, run(go), strict=True))
    for name, want in DECODED.items():
        r = readings[name]
        assert (r.value, r.quality, r.reason) == (want, Quality.GOOD, ""), name
        assert type(r.value) is type(want), name  # an integer stays an integer, a flag a flag
    for name in REFUSED:
        r = readings[name]
        assert (r.value, r.quality) == (None, Quality.BAD), name
        assert r.reason == f"data type {name} is not supported (a signal is a number, a flag or text)", r.reason


def test_a_subscription_refuses_them_the_same_way(mixed_cfg: PlantConfig, ua_port: int) -> None:
    """The same decoding behind a data change notification: a ByteString and an Int16."""
    src = mixed_cfg.opcua[0]
    names = ["ByteString", "Int16"]
    nodes = tuple(OpcUaNode(asset="CNC1", signal=s, ref=("node", f"ns=2;s=T.{n}"))
                  for n, s in zip(names, ["status", "good_count"], strict=True))
    placed = [Placed(key=("T", n), node_id=f"ns=2;s=T.{n}", path=((2, "T"), (2, n)), value=BASIC_TYPES[n],
                     data_type=n) for n in names]

    async def go() -> list[Reading]:
        ep = OpcUaEndpoint(ua_port, placed)
        await ep.start()
        got: list[Reading] = []
        stop = asyncio.Event()
        task = asyncio.create_task(OpcUaReader(replace(src, nodes=nodes)).run(got.extend, stop))
        try:
            while {r.signal for r in got} != {"status", "good_count"}:
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await task
            await ep.stop()
        return got

    got = run(go)
    status = next(r for r in got if r.signal == "status")
    count = next(r for r in got if r.signal == "good_count")
    assert (status.value, status.quality) == (None, Quality.BAD) and "ByteString" in status.reason
    assert (count.value, count.quality, count.reason) == (-30000, Quality.GOOD, "")
