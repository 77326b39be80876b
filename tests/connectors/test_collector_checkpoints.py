"""The collector checkpoints a site by time and by volume, so a replay after a checkpoint stays short."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from connectors.collector import Collector
from connectors.config import load
from tests.conftest import EXAMPLES
from twin.readings import Reading
from twin.state import Event, SiteState

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class ListSink:
    def __init__(self) -> None:
        self.states: list[list[str]] = []

    def write(self, readings: Sequence[Reading], states: Sequence[SiteState] = (),
              events: Sequence[Event] = ()) -> None:
        self.states.append([s.site for s in states])


def test_a_site_is_checkpointed_after_n_readings_even_within_the_interval() -> None:
    cfg = load(EXAMPLES / "fleet.toml")
    now = [T0]
    sink = ListSink()
    c = Collector(cfg.fleet, (), sink, clock=lambda: now[0], checkpoint_interval_s=3600.0,
                  checkpoint_every_readings=100)
    c.flush()
    assert set(sink.states[-1]) == {s.id for s in cfg.fleet.sites}  # first flush: every site

    def temps(n: int, start: int) -> list[Reading]:  # a steady temperature: no events, no status change
        return [Reading(ts=now[0] - timedelta(milliseconds=n - i), site="pod-berlin", asset="P1",
                        signal="nozzle_temp_c", value=215.0 + (start + i) % 2) for i in range(n)]

    now[0] += timedelta(seconds=1)
    c.ingest(temps(99, 0))
    c.flush()
    assert sink.states[-1] == []  # 99 < 100 readings and 1 s < 3600 s: no checkpoint yet
    now[0] += timedelta(seconds=1)
    c.ingest(temps(1, 99))
    c.flush()
    assert sink.states[-1] == ["pod-berlin"]  # the 100th reading since the last one: only that site
    now[0] += timedelta(seconds=1)
    c.ingest(temps(50, 100))
    c.flush()
    assert sink.states[-1] == []  # the count started again at the checkpoint
