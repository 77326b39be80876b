"""The write path and store-and-forward against a real line-protocol server (VictoriaMetrics).

VictoriaMetrics stores the numeric fields of line protocol as ``<measurement>_<field>`` series with
the tags as labels and ignores string fields; that is enough to check what arrived, in order, once.
The Flux read side cannot be checked here (no InfluxDB 2.x server on these machines).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.forward import StoreAndForward
from connectors.influx.historian import InfluxHistorian
from connectors.influx.lineproto import batch_lines
from connectors.store import SqliteHistorian
from tests.connectors.influx.conftest import VictoriaMetrics
from twin.errors import HistorianError
from twin.readings import Reading
from twin.spec import FleetSpec

T0 = datetime(2026, 1, 5, tzinfo=UTC)
FLEET = FleetSpec(id="f", name="F", sites=(), templates=())
pytestmark = pytest.mark.server


def readings(start: int, n: int) -> list[Reading]:
    return [Reading(ts=T0 + timedelta(seconds=i), site="s1", asset="P1", signal="temp_c", value=float(i))
            for i in range(start, start + n)]


def stored(vm: VictoriaMetrics) -> list[tuple[int, float]]:
    series = vm.export('{__name__="reading_value",site="s1",asset="P1",signal="temp_c"}')
    return sorted((ts, v) for s in series for ts, v in zip(s["timestamps"], s["values"], strict=True))


def test_write_path_sends_every_point_in_chunks(vm: VictoriaMetrics) -> None:
    h = InfluxHistorian(vm.url, "org", "plant", "test-token", FLEET, batch_size=7)
    try:
        h.write(readings(0, 20))  # 3 chunks of 7, 7, 6 lines
        assert "test-token" not in repr(h)
    finally:
        h.close()
    # VictoriaMetrics keeps milliseconds: second i → (1,767,571,200 + i) × 1000 ms, value i
    assert stored(vm) == [((1_767_571_200 + i) * 1000, float(i)) for i in range(20)]


def test_unreachable_server_is_a_historian_error(port: int) -> None:
    h = InfluxHistorian(f"http://127.0.0.1:{port}", "org", "plant", "t", FLEET, timeout_s=2)
    try:
        with pytest.raises(HistorianError, match=r"InfluxDB write to .* failed"):
            h.write(readings(0, 1))
    finally:
        h.close()


def test_store_and_forward_across_an_outage_and_a_restart(vm: VictoriaMetrics, tmp_path: Path) -> None:
    path = tmp_path / "edge.sqlite"
    clock = [0.0]

    def open_saf() -> StoreAndForward:
        store = SqliteHistorian(path, FLEET, outbox=batch_lines)
        sink = InfluxHistorian(vm.url, "org", "plant", "t", FLEET, timeout_s=2)
        return StoreAndForward(store, sink, backoff_s=(5.0, 60.0), clock=lambda: clock[0])

    saf = open_saf()
    saf.write(readings(0, 10))  # server up: forwarded at once
    assert saf.backlog() == 0
    vm.stop()
    for k in range(1, 5):  # outage: every write is still acknowledged locally
        saf.write(readings(10 * k, 10))
        clock[0] += 1.0  # within the back-off after the first failure: no retry, no delay
    assert saf.backlog() == 4
    assert len(saf.store.readings("s1", None, T0 + timedelta(hours=1))) == 50
    saf.close()  # the collector restarts during the outage (close tries once more, fails quietly)

    vm.start()
    saf = open_saf()  # the durable cursor is in the SQLite file
    assert saf.backlog() == 4
    clock[0] += 100.0
    saf.write(readings(50, 10))  # the next write forwards the backlog in order, then itself
    assert saf.backlog() == 0
    saf.close()
    assert stored(vm) == [((1_767_571_200 + i) * 1000, float(i)) for i in range(60)]  # all, once each
