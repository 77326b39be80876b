"""The historian on InfluxDB read through InfluxQL (the v1 query API), against a real InfluxDB 1.6 (issue 21).

Six hours of two emulated sites are backfilled through the same writer into the embedded store
and into InfluxDB 1.x (``/write``), then every read is asked of both: a replay (``state_at``) at
several moments, series raw and downsampled, the events, the signals, and a calibration. The
embedded store is the reference: the InfluxQL path must give the same twin, not a similar one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.historians import open_historian
from connectors.config import load
from connectors.emulator.backfill import backfill
from connectors.influx.historian import InfluxQLHistorian
from connectors.store import SqliteHistorian
from tests.conftest import ROOT
from twin.calibrate import calibrate
from twin.errors import HistorianError
from twin.historian import SeriesKey
from twin.readings import Reading
from twin.spec import FleetSpec
from twin.state import Event, SiteState

pytestmark = pytest.mark.server

START = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # a Monday morning: both sites in their shifts
END = START + timedelta(hours=6)
SITES = ("pod-berlin", "lm-rotterdam")


class _Both:
    """One writer feeding the store and InfluxDB the same batches (what store-and-forward delivers)."""

    def __init__(self, store: SqliteHistorian, influx: InfluxQLHistorian) -> None:
        self.store, self.influx = store, influx

    def write(self, readings: Sequence[Reading], states: Sequence[SiteState] = (),
              events: Sequence[Event] = ()) -> None:
        self.store.write(readings, states, events)
        self.influx.write(readings, states, events)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def close(self) -> None:
        self.store.close()


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FleetSpec, SqliteHistorian, InfluxQLHistorian]]:
    from tests.connectors.influx_feed.conftest import _influxd

    root = tmp_path_factory.mktemp("influxql")
    fleet = load(ROOT / "examples" / "fleet.toml").fleet
    fleet = replace(fleet, sites=tuple(s for s in fleet.sites if s.id in SITES))
    for server in _influxd(root / "influxd"):
        server.query('CREATE DATABASE "twin"')
        influx = InfluxQLHistorian(server.url, "twin", {}, fleet)
        store = SqliteHistorian(root / "h.sqlite", fleet)
        backfill(fleet, _Both(store, influx), start=START, end=END, step_s=60.0, seed=7)  # type: ignore[arg-type]
        store.close()
        reader = SqliteHistorian(root / "h.sqlite", fleet, readonly=True)
        yield fleet, reader, influx
        reader.close()
        influx.close()


@pytest.mark.parametrize("hours", [0.5, 2.0, 5.99, 6.0])
def test_a_replay_is_the_same_twin(both: tuple[FleetSpec, SqliteHistorian, InfluxQLHistorian], hours: float) -> None:
    _, store, influx = both
    t = START + timedelta(hours=hours)
    for site in SITES:
        expected, got = store.state_at(site, t), influx.state_at(site, t)
        assert expected is not None and got == expected  # every machine, counter, stock level, alarm, order


def test_series_raw_and_downsampled_agree(both: tuple[FleetSpec, SqliteHistorian, InfluxQLHistorian]) -> None:
    _, store, influx = both
    key = SeriesKey(site="pod-berlin", asset="P1", signal="good_count")
    (raw_s,), (raw_i,) = store.series([key], START, END, 10_000), influx.series([key], START, END, 10_000)
    assert not raw_i.downsampled and [(p.ts, p.value) for p in raw_i.points] == [(p.ts, p.value) for p in raw_s.points]
    assert len(raw_i.points) > 300  # a sample a minute for 6 h (only GOOD ones are series points)
    # 36 windows of 10 min from START: each window's count, min and max are those of its raw points
    (down,) = influx.series([key], START, END, 36)
    assert down.downsampled and sum(p.count for p in down.points) == len(raw_i.points)
    for p in down.points:
        inside = [q.value for q in raw_i.points if p.ts <= q.ts < p.ts + timedelta(minutes=10)]
        assert (p.count, p.min, p.max) == (len(inside), min(inside), max(inside))
        assert math.isclose(p.value, sum(inside) / len(inside))


def test_events_and_signals_agree(both: tuple[FleetSpec, SqliteHistorian, InfluxQLHistorian]) -> None:
    _, store, influx = both
    for site in (None, "lm-rotterdam"):
        expected = store.events(site, START, END)
        assert expected and influx.events(site, START, END) == expected
    assert influx.signals("pod-berlin") == store.signals("pod-berlin")


def test_calibration_reads_the_same_figures(both: tuple[FleetSpec, SqliteHistorian, InfluxQLHistorian]) -> None:
    fleet, store, influx = both
    a = calibrate(fleet, store, START, END, sites=["pod-berlin"])
    b = calibrate(fleet, influx, START, END, sites=["pod-berlin"])
    assert b.params == a.params


def test_opened_from_the_configuration_and_errors_name_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 both: tuple[FleetSpec, SqliteHistorian,
                                                                             InfluxQLHistorian]) -> None:
    fleet, _, influx = both
    cfg = SimpleNamespace(kind="influxdb", path=tmp_path / "edge.db", url=influx.url, org=None, bucket=None,
                          token_env=None, token_file=None, query="influxql", write_api="v1", database="twin",
                          retention_policy=None, username=None, password_env=None, password_file=None,
                          rollup_interval_s=60, retention_raw_days=None)
    reader = open_historian(cfg, fleet, "read")  # type: ignore[arg-type]
    assert isinstance(reader, InfluxQLHistorian)
    assert reader.state_at("pod-berlin", END) == influx.state_at("pod-berlin", END)
    reader.close()
    missing = InfluxQLHistorian(influx.url, "nope", {}, fleet)
    with pytest.raises(HistorianError, match="InfluxDB query failed: database not found: nope"):
        missing.state_at("pod-berlin", END)
    dead = InfluxQLHistorian("http://127.0.0.1:9", "twin", {"Authorization": "Token s3cr3t"}, fleet, timeout_s=1)
    with pytest.raises(HistorianError) as info:
        dead.events(None, START, END)
    assert "influx unreachable" in str(info.value) and "s3cr3t" not in str(info.value) + repr(dead)


def test_the_central_path_end_to_end_through_the_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`twin backfill` writes through store-and-forward to InfluxDB 1.x (`/write`); `twin replay` reads it back.

    One collector per site writing one InfluxDB, readers asking it: the replay from InfluxDB must
    print exactly what the replay of the collector's own local buffer prints.
    """
    import shutil

    from app import main
    from tests.connectors.influx_feed.conftest import _influxd

    for server in _influxd(tmp_path / "influxd"):
        server.query('CREATE DATABASE "twin"')
        shutil.copytree(ROOT / "examples", tmp_path / "examples")
        plant = tmp_path / "examples" / "fleet.toml"
        text = plant.read_text(encoding="utf-8")
        local = text.replace('kind = "sqlite"\npath = "../var/northwind.db"',
                             'kind = "sqlite"\npath = "../var/buffer.db"')
        central = text.replace('kind = "sqlite"\npath = "../var/northwind.db"',
                               f'kind = "influxdb"\npath = "../var/buffer.db"\nurl = "{server.url}"\n'
                               'query = "influxql"\nwrite_api = "v1"\ndatabase = "twin"')
        plant.write_text(central, encoding="utf-8")
        (tmp_path / "examples" / "local.toml").write_text(local, encoding="utf-8")
        end = "2026-11-23T12:00:00Z"
        assert main(["backfill", str(plant), "--days", "0.25", "--end", end, "--seed", "3"]) == 0
        capsys.readouterr()
        at = "2026-11-23T11:30:00Z"
        assert main(["replay", str(plant), "--site", "pod-austin", "--at", at, "--json"]) == 0
        from_influx = capsys.readouterr().out
        assert main(["replay", str(tmp_path / "examples" / "local.toml"), "--site", "pod-austin", "--at", at,
                     "--json"]) == 0
        from_buffer = capsys.readouterr().out
        assert '"machines"' in from_influx and from_influx == from_buffer
