"""How one OPC UA value becomes the twin's: status severity → quality, scale and offset, enum maps (pure)."""

from __future__ import annotations

import pytest

from connectors.config.opcua import OpcUaNode
from connectors.opcua.client import Sample
from connectors.opcua.source import convert
from twin.frozen import FrozenDict
from twin.readings import Quality

NODE = OpcUaNode(asset="CNC1", signal="status", ref=("node", "ns=2;s=CNC1.Status"))


def good(value: object) -> Sample:
    return Sample(value=value, severity="good", status="Good", stamp=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("node", "sample", "want"), [
    (NODE, good(2), (2, Quality.GOOD, "")),
    (NODE, Sample(None, "bad", "BadCommunicationError", None), (None, Quality.BAD, "BadCommunicationError")),
    (NODE, Sample(5, "uncertain", "UncertainSensorNotAccurate", None),
     (5, Quality.STALE, "UncertainSensorNotAccurate")),
    (NODE, Sample(None, "good", "Good", None, problem="arrays are not supported (got an array of 2 Int32)"),
     (None, Quality.BAD, "arrays are not supported (got an array of 2 Int32)")),
    (OpcUaNode(asset="CNC1", signal="t", ref=("node", "i=1"), scale=0.1, offset=-40.0), good(600),
     (pytest.approx(20.0), Quality.GOOD, "")),
    (OpcUaNode(asset="CNC1", signal="t", ref=("node", "i=1"), scale=2.0), good("hot"),
     (None, Quality.BAD, "scale and offset need a number (got str)")),
    (OpcUaNode(asset="CNC1", signal="status", ref=("node", "i=1"), enum=FrozenDict({"RUN": 2, "7": 3})),
     good("RUN"), (2, Quality.GOOD, "")),
    (OpcUaNode(asset="CNC1", signal="status", ref=("node", "i=1"), enum=FrozenDict({"RUN": 2, "7": 3})),
     good(7), (3, Quality.GOOD, "")),
    (OpcUaNode(asset="CNC1", signal="status", ref=("node", "i=1"), enum=FrozenDict({"true": 2})),
     good(True), (2, Quality.GOOD, "")),
    (OpcUaNode(asset="CNC1", signal="status", ref=("node", "i=1"), enum=FrozenDict({"RUN": 2})),
     good("JAM"), (None, Quality.BAD, "value 'JAM' not in the node's enum map")),
])
def test_convert(node: OpcUaNode, sample: Sample, want: tuple[object, Quality, str]) -> None:
    assert convert(node, sample) == want
