"""The embedded historian on a real SQLite file: exact storage, downsampling, retention, readers."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from connectors.store import SqliteHistorian, from_us, to_us
from tests.connectors.store.conftest import T0
from twin.errors import HistorianError
from twin.frozen import FrozenDict
from twin.historian import Historian, SeriesKey
from twin.readings import Quality, Reading
from twin.spec import FleetSpec, SiteId
from twin.state import Event, EventKind, SiteState

ROOT = Path(__file__).resolve().parents[3]
TEMP = SeriesKey(site="s1", asset="P1", signal="temp_c")


def r(sec: float, value: object, signal: str = "temp_c", asset: str = "P1", **kw: object) -> Reading:
    return Reading(ts=T0 + timedelta(seconds=sec), site="s1", asset=asset, signal=signal, value=value,  # type: ignore[arg-type]
                   **kw)  # type: ignore[arg-type]


def test_it_is_a_historian(store: SqliteHistorian) -> None:
    assert isinstance(store, Historian)


def test_microsecond_conversion_is_exact() -> None:
    t = T0 + timedelta(microseconds=123457)
    assert from_us(to_us(t)) == t
    assert to_us(T0) == 1_767_600_000_000_000  # 2026-01-05T08:00Z: 20458 days × 86400 s + 8 h, in µs


def test_readings_come_back_exactly_as_written(store: SqliteHistorian) -> None:
    written = [
        r(0, 2, signal="status"),
        r(0, 21.0),
        r(1, True, signal="door"),
        r(1, "J-17", signal="job"),
        r(2, None, quality=Quality.BAD, reason="timeout"),
        r(3, 19.5, quality=Quality.STALE, reason="not refreshed for 3 s"),
        r(4, float("inf")),
    ]
    store.write(written)
    back = store.readings("s1", None, T0 + timedelta(seconds=10))
    nan = r(5, float("nan"))
    store.write([nan])
    assert sorted(back, key=lambda x: (x.ts, x.signal)) == sorted(written, key=lambda x: (x.ts, x.signal))
    kinds = {x.signal: type(x.value) for x in back if x.value is not None}
    assert kinds["status"] is int and kinds["door"] is bool and kinds["job"] is str and kinds["temp_c"] is float
    last = store.readings("s1", T0 + timedelta(seconds=4), T0 + timedelta(seconds=5))
    assert len(last) == 1 and isinstance(last[0].value, float) and math.isnan(last[0].value)
    assert store.signals("s1") == [SeriesKey(site="s1", asset="P1", signal=s)
                                   for s in ("door", "job", "status", "temp_c")]


def test_short_series_is_returned_raw(store: SqliteHistorian) -> None:
    store.write([r(i, 20.0 + i) for i in range(10)] + [r(3, "text", signal="job")])
    (res,) = store.series([TEMP], T0, T0 + timedelta(seconds=9), 100)
    assert not res.downsampled
    assert [p.value for p in res.points] == [20.0 + i for i in range(10)]
    assert all(p.min == p.max == p.value and p.count == 1 for p in res.points)
    # a string series has no numeric points; an unknown series is empty, not an error
    job, missing = store.series([SeriesKey(site="s1", asset="P1", signal="job"),
                                 SeriesKey(site="s1", asset="P9", signal="x")], T0, T0 + timedelta(hours=1), 10)
    assert job.points == () and missing.points == ()


def test_downsampling_keeps_the_spike(store: SqliteHistorian) -> None:
    # 600 readings at 1 Hz, all 20.0 except one spike of 500.0 at t = 300 s; BAD readings are left out
    store.write([r(i, 500.0 if i == 300 else 20.0) for i in range(600)]
                + [r(i + 0.5, 9999.0, quality=Quality.BAD) for i in range(0, 600, 7)])
    (res,) = store.series([TEMP], T0, T0 + timedelta(seconds=599), 100)
    assert res.downsampled and len(res.points) == 100
    # bucket width = ceil(599,000,001 µs / 100) = 5,990,001 µs; the spike (300 s) falls in bucket 50,
    # which holds the readings of seconds 300..305 (6 readings): mean = (500 + 5 × 20) / 6 = 100
    spike = res.points[50]
    assert spike.max == 500.0 and spike.min == 20.0 and spike.count == 6
    assert spike.value == pytest.approx(100.0)
    assert max(p.max for p in res.points) == 500.0
    assert sum(p.count for p in res.points) == 600
    assert spike.ts == T0 + timedelta(microseconds=50 * 5_990_001)


def test_long_ranges_come_from_rollups(store: SqliteHistorian) -> None:
    # 3 h at 1 Hz, value = second of the minute: every minute holds 0..59 (min 0, max 59, mean 29.5)
    store.write([r(i, float(i % 60)) for i in range(3 * 3600)])
    (res,) = store.series([TEMP], T0, T0 + timedelta(seconds=3 * 3600 - 1), 60)
    # bucket = 3 h / 60 = 180 s ≥ one 60 s rollup: 180 rollup rows grouped 3 by 3 into 60 points
    assert res.downsampled and len(res.points) == 60
    assert {(p.min, p.max, p.value, p.count) for p in res.points} == {(0.0, 59.0, 29.5, 180)}
    assert res.points[1].ts == T0 + timedelta(seconds=180)


def test_retention_deletes_raw_and_keeps_rollups(store: SqliteHistorian) -> None:
    old = [r(i, float(i % 60)) for i in range(600)]
    new = [r(10 * 86400 + i, 1.0) for i in range(60)]
    store.write(old + new)
    assert store.apply_retention(T0 + timedelta(days=10, hours=1)) == 600  # 7 days kept: day 0 goes
    assert store.readings("s1", None, T0 + timedelta(days=1)) == []
    assert len(store.readings("s1", None, T0 + timedelta(days=11))) == 60
    (res,) = store.series([TEMP], T0, T0 + timedelta(seconds=599), 1000)
    # before the horizon only 1-minute rollups remain: 10 buckets of 0..59
    assert res.downsampled and [(p.min, p.max, p.value) for p in res.points] == [(0.0, 59.0, 29.5)] * 10


def test_events_and_checkpoints(store: SqliteHistorian) -> None:
    e1 = Event(ts=T0, site=SiteId("s1"), asset="P1", kind=EventKind.ALARM_RAISED, message="hot",
               data=FrozenDict({"value": 251.0, "rule": "hot"}))
    e2 = Event(ts=T0, site=SiteId("s2"), asset="P1", kind=EventKind.STATUS_CHANGE, message="run")
    e3 = Event(ts=T0 + timedelta(seconds=5), site=SiteId("s1"), asset="P2", kind=EventKind.ALARM_CLEARED,
               message="ok")
    s_a = SiteState(site=SiteId("s1"), as_of=T0)
    s_b = SiteState(site=SiteId("s1"), as_of=T0 + timedelta(minutes=5), recent_events=(e1,))
    store.write([], states=[s_a], events=[e1, e2])
    store.write([], states=[s_b], events=[e3])
    assert store.events(None, T0, T0 + timedelta(minutes=1)) == [e1, e2, e3]
    assert store.events("s1", T0, T0 + timedelta(seconds=4)) == [e1]
    assert store.checkpoint_at("s1", T0 + timedelta(minutes=4)) == s_a
    assert store.checkpoint_at("s1", T0 + timedelta(minutes=5)) == s_b
    assert store.checkpoint_at("s1", T0 - timedelta(seconds=1)) is None
    assert store.latest_states() == {"s1": s_b}


def test_failed_write_is_rolled_back_entirely(store: SqliteHistorian, store_path: Path) -> None:
    store.write([r(0, 1.0)])
    bad_state = SiteState(site=SiteId("s1"), as_of=T0.replace(tzinfo=None))  # naive: cannot be encoded
    with pytest.raises(TypeError, match="naive"):
        store.write([r(1, 2.0, signal="new_signal")], states=[bad_state])
    assert [x.value for x in store.readings("s1", None, T0 + timedelta(seconds=9))] == [1.0]
    assert store.signals() == [TEMP]  # the series created inside the failed transaction is gone too
    store.write([r(2, 3.0, signal="new_signal")])  # and the id cache did not keep a dead id
    assert len(store.readings("s1", None, T0 + timedelta(seconds=9))) == 2


def test_reader_in_another_process_is_not_blocked_by_a_writer(store: SqliteHistorian, store_path: Path,
                                                              fleet: FleetSpec) -> None:
    store.write([r(i, float(i)) for i in range(100)])
    other = sqlite3.connect(store_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a writer mid-transaction: uncommitted rows must stay invisible
    other.execute("INSERT INTO readings VALUES (1, 1, 1.0, 0)")
    script = (
        "import sys; from connectors.store import SqliteHistorian; from twin.spec import FleetSpec; "
        "from datetime import datetime, UTC; "
        "h = SqliteHistorian(sys.argv[1], FleetSpec(id='f', name='F', sites=(), templates=()), readonly=True, "
        "timeout_s=0.5); print(len(h.readings('s1', None, datetime(2100, 1, 1, tzinfo=UTC))))"
    )
    try:
        out = subprocess.run([sys.executable, "-c", script, str(store_path)], cwd=ROOT, capture_output=True,
                             text=True, timeout=30, check=True)
        assert out.stdout.strip() == "100"
    finally:
        other.execute("ROLLBACK")
        other.close()
    reader = SqliteHistorian(store_path, fleet, readonly=True)
    try:
        store.write([r(200, 1.0)])
        assert len(reader.readings("s1", None, T0 + timedelta(hours=1))) == 101  # sees new commits
        with pytest.raises(HistorianError, match="read-only"):
            reader.write([r(300, 1.0)])
    finally:
        reader.close()


def test_missing_file_for_a_reader_is_an_error(tmp_path: Path, fleet: FleetSpec) -> None:
    with pytest.raises(HistorianError, match="does not exist"):
        SqliteHistorian(tmp_path / "nope.sqlite", fleet, readonly=True)


def test_file_is_in_wal_mode(store: SqliteHistorian, store_path: Path) -> None:
    store.write([r(0, 1.0)])
    con = sqlite3.connect(store_path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("SELECT count(*) FROM readings").fetchone()[0] == 1
    finally:
        con.close()
