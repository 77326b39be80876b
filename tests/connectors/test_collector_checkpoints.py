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


class EventSink(ListSink):
    def __init__(self) -> None:
        super().__init__()
        self.event_sites: list[set[str]] = []

    def write(self, readings: Sequence[Reading], states: Sequence[SiteState] = (),
              events: Sequence[Event] = ()) -> None:
        super().write(readings, states, events)
        self.event_sites.append({str(e.site) for e in events})


def test_a_collector_of_one_site_records_only_that_site() -> None:
    # one collector per site, one central historian: Berlin's collector sees no readings of Lyon, and
    # the staleness it would infer (Lyon's machines going STALE, then UNKNOWN) is not Lyon's to record
    cfg = load(EXAMPLES / "fleet.toml")
    now = [T0]
    sink = EventSink()
    c = Collector(cfg.fleet, (), sink, clock=lambda: now[0], checkpoint_interval_s=60.0, sites={"pod-berlin"})
    for minute in range(5):
        now[0] = T0 + timedelta(minutes=minute)
        c.ingest([Reading(ts=now[0], site="pod-berlin", asset="P1", signal="status", value=2)])
        c.flush()
    assert {s for batch in sink.states for s in batch} == {"pod-berlin"}  # checkpoints of Berlin only
    assert set().union(*sink.event_sites) == {"pod-berlin"}  # P1's status change: Berlin's; nothing of Lyon
    everyone = EventSink()
    c = Collector(cfg.fleet, (), everyone, clock=lambda: T0, checkpoint_interval_s=60.0)
    c.flush()
    assert set(everyone.states[-1]) == {s.id for s in cfg.fleet.sites}  # one collector for all: every site
