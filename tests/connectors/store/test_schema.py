"""Store files of the previous version open as they are; thinning of old checkpoints by retention."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from connectors.store import CHECKPOINT_KEEP_S, SqliteHistorian, to_us
from tests.connectors.store.conftest import T0
from twin.codec import site_state_to_dict
from twin.errors import HistorianError
from twin.historian import SeriesKey
from twin.readings import Reading
from twin.spec import FleetSpec, SiteId
from twin.state import SiteState

# The layout as the previous version (schema "1", rollups recomputed from raw rows at each write)
# created it, frozen here: this version writes the same tables, so such a file opens in place.
V1_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE series(id INTEGER PRIMARY KEY, site TEXT NOT NULL, asset TEXT NOT NULL, signal TEXT NOT NULL,
    UNIQUE(site, asset, signal));
CREATE TABLE readings(series_id INTEGER NOT NULL, ts INTEGER NOT NULL, value, flags INTEGER NOT NULL,
    PRIMARY KEY(series_id, ts)) WITHOUT ROWID;
CREATE TABLE reasons(series_id INTEGER NOT NULL, ts INTEGER NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY(series_id, ts)) WITHOUT ROWID;
CREATE TABLE rollups(series_id INTEGER NOT NULL, bucket INTEGER NOT NULL, vmin REAL, vmax REAL, vsum REAL,
    n INTEGER NOT NULL, PRIMARY KEY(series_id, bucket)) WITHOUT ROWID;
CREATE TABLE checkpoints(site TEXT NOT NULL, ts INTEGER NOT NULL, state TEXT NOT NULL,
    PRIMARY KEY(site, ts)) WITHOUT ROWID;
CREATE TABLE events(id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, site TEXT NOT NULL,
    asset TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX events_site_ts ON events(site, ts);
CREATE INDEX events_ts ON events(ts);
CREATE TABLE outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL);
"""
TEMP = SeriesKey(site="s1", asset="P1", signal="temp_c")


def v1_file(path: Path, schema: str = "1") -> None:
    """A store as the previous version left it: 30 readings of minute 0 and their rollup, a checkpoint."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.executescript(V1_SCHEMA)
    con.execute("INSERT INTO meta VALUES ('schema', ?), ('rollup_interval_s', '60')", (schema,))
    con.execute("INSERT INTO series VALUES (1, 's1', 'P1', 'temp_c')")
    t0 = to_us(T0)
    con.executemany("INSERT INTO readings VALUES (1, ?, ?, 0)",
                    [(t0 + i * 1_000_000, 2.0) for i in range(30)])
    con.execute("INSERT INTO rollups VALUES (1, ?, 2.0, 2.0, 60.0, 30)", (t0 // 60_000_000,))
    state = SiteState(site=SiteId("s1"), as_of=T0)
    con.execute("INSERT INTO checkpoints VALUES ('s1', ?, ?)", (t0, json.dumps(site_state_to_dict(state))))
    con.close()


def test_a_previous_version_file_opens_and_takes_writes(tmp_path: Path, fleet: FleetSpec) -> None:
    path = tmp_path / "old.sqlite"
    v1_file(path)
    reader = SqliteHistorian(path, fleet, readonly=True)
    try:
        (res,) = reader.series([TEMP], T0, T0 + timedelta(seconds=29), 100)
        assert [p.value for p in res.points] == [2.0] * 30
        assert reader.checkpoint_at("s1", T0) == SiteState(site=SiteId("s1"), as_of=T0)
    finally:
        reader.close()
    h = SqliteHistorian(path, fleet)
    try:
        h.write([Reading(ts=T0 + timedelta(seconds=30 + i), site="s1", asset="P1", signal="temp_c", value=4.0)
                 for i in range(30)])
        (res,) = h.series([TEMP], T0, T0 + timedelta(hours=2), 2)  # one bucket of an hour: from rollups
        # the stored rollup (30 × 2.0) combined with the new points (30 × 4.0): mean 3.0 over 60
        assert res.downsampled
        assert [(p.min, p.max, p.value, p.count) for p in res.points] == [(2.0, 4.0, 3.0, 60)]
        assert h.state_at("s1", T0 + timedelta(seconds=59)) is not None
    finally:
        h.close()


def test_a_file_of_another_schema_is_refused_with_its_name(tmp_path: Path, fleet: FleetSpec) -> None:
    path = tmp_path / "future.sqlite"
    v1_file(path, schema="7")
    with pytest.raises(HistorianError, match=r"future\.sqlite has schema '7', this version reads '1'"):
        SqliteHistorian(path, fleet)


def test_retention_keeps_one_checkpoint_per_hour_before_the_horizon(store: SqliteHistorian) -> None:
    assert CHECKPOINT_KEEP_S == 3600
    # a checkpoint every 10 minutes for 5 hours, for two sites
    times = [T0 + timedelta(minutes=10 * i) for i in range(31)]
    store.write([], states=[SiteState(site=SiteId(s), as_of=t) for t in times for s in ("s1", "s2")])
    store.write([Reading(ts=T0 + timedelta(hours=5), site="s1", asset="P1", signal="temp_c", value=1.0)])
    # raw retention 7 days: the horizon at now - 7 d = T0 + 2 h 35 min
    store.apply_retention(T0 + timedelta(days=7, hours=2, minutes=35))
    for site in ("s1", "s2"):
        kept = [t for t in times if store.checkpoint_at(site, t) == SiteState(site=SiteId(site), as_of=t)]
        # before the horizon: the first of each hour (08:00, 09:00, 10:00) and the last one (10:30);
        # from the horizon on (10:40 .. 13:00) all of them
        expected = [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2), T0 + timedelta(hours=2, minutes=30)]
        assert kept == expected + [t for t in times if t >= T0 + timedelta(hours=2, minutes=35)], site
    # a moment between two kept checkpoints starts from the earlier one
    assert store.checkpoint_at("s1", T0 + timedelta(minutes=50)) == SiteState(site=SiteId("s1"), as_of=T0)
