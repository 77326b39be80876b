"""Rollups kept at write time: folded in from each batch, or recomputed when a batch rewrites points.

Whatever path a batch takes, the rollups table must equal a recomputation from the raw rows
(min, max, sum, count of the GOOD finite numbers per series and minute).
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from connectors.store import SqliteHistorian
from tests.connectors.store.conftest import T0
from twin.readings import Quality, Reading, Value
from twin.spec import FleetSpec

RECOMPUTED = (
    "SELECT series_id, ts / 60000000, min(value), max(value), sum(value), count(*) FROM readings "
    "WHERE flags IN (0, 4) AND typeof(value) IN ('integer', 'real') "
    "AND value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308 GROUP BY series_id, ts / 60000000"
)


def r(sec: float, value: Value, signal: str = "temp_c", **kw: object) -> Reading:
    return Reading(ts=T0 + timedelta(seconds=sec), site="s1", asset="P1", signal=signal, value=value,
                   **kw)  # type: ignore[arg-type]


def rollups(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    con = sqlite3.connect(path)
    try:
        stored = con.execute("SELECT series_id, bucket, vmin, vmax, vsum, n FROM rollups "
                             "ORDER BY 1, 2").fetchall()
        fresh = con.execute(RECOMPUTED + " ORDER BY 1, 2").fetchall()
    finally:
        con.close()
    # vmin/vmax/vsum are REAL columns: compare as floats
    return ([(s, b, float(lo), float(hi), float(sm), n) for s, b, lo, hi, sm, n in stored],
            [(s, b, float(lo), float(hi), float(sm), n) for s, b, lo, hi, sm, n in fresh])


def test_rollups_follow_appends_rewrites_and_late_data(store: SqliteHistorian, store_path: Path) -> None:
    # 1. appends in time order over three batches, a bucket (minute) spanning two batches; values are
    #    multiples of 0.5 so every sum is exact in either order of addition
    store.write([r(i, i * 0.5) for i in range(0, 90)])
    store.write([r(i, i * 0.5) for i in range(90, 150)]
                + [r(i, True, signal="door") for i in range(100, 130)])
    store.write([r(i, -i * 1.0, signal="power") for i in range(0, 200, 3)])
    stored, fresh = rollups(store_path)
    # minutes: temp 0..149 s: 3; door 100..129 s: 2; power 0..198 s: 4
    assert stored == fresh and len(stored) == 3 + 2 + 4
    # 2. values that are not counted: BAD, NaN, inf, text, None
    store.write([r(150, 1e9, quality=Quality.BAD, reason="x"), r(151, float("nan")), r(152, float("inf")),
                 r(153, "J-1", signal="job"), r(154, None, quality=Quality.STALE), r(155, 7.5)])
    stored, fresh = rollups(store_path)
    assert stored == fresh
    # temp_c, minute 2 (+120..+179 s): i × 0.5 for i in 120..149 (min 60.0, max 74.5, sum 0.5 × 4035 =
    # 2017.5, 30 points), then only the GOOD finite 7.5 of the second batch: 31 points, sum 2025.0
    assert (1, to_min(120), 7.5, 74.5, 2025.0, 31) in stored


def test_rewrites_are_not_counted_twice(store: SqliteHistorian, store_path: Path) -> None:
    store.write([r(i, 1.0) for i in range(60)])
    store.write([r(i, 3.0) for i in range(30, 90)])  # rewrites 30..59: the later write wins
    stored, fresh = rollups(store_path)
    # minute 0: 30 × 1.0 + 30 × 3.0 = 120 over 60 points; minute 1: 30 × 3.0
    assert stored == fresh == [(1, to_min(0), 1.0, 3.0, 120.0, 60), (1, to_min(60), 3.0, 3.0, 90.0, 30)]
    store.write([r(5, 2.0), r(5, 4.0)])  # twice in one batch: one point, 4.0
    stored, fresh = rollups(store_path)
    assert stored == fresh and stored[0] == (1, to_min(0), 1.0, 4.0, 123.0, 60)
    store.write([r(10, "text")])  # a number rewritten as text leaves the rollup
    stored, fresh = rollups(store_path)
    assert stored == fresh and stored[0] == (1, to_min(0), 1.0, 4.0, 122.0, 59)
    back = store.readings("s1", T0 + timedelta(seconds=4), T0 + timedelta(seconds=5))
    assert [x.value for x in back] == [4.0]


def test_late_points_without_conflict_are_added(store: SqliteHistorian, store_path: Path) -> None:
    store.write([r(i, 2.0) for i in range(0, 120, 2)])  # even seconds
    store.write([r(i, 4.0) for i in range(1, 120, 2)])  # then the odd ones, late: nothing rewritten
    stored, fresh = rollups(store_path)
    # each minute: 30 × 2.0 + 30 × 4.0 = 180 over 60 points
    assert stored == fresh == [(1, to_min(0), 2.0, 4.0, 180.0, 60), (1, to_min(60), 2.0, 4.0, 180.0, 60)]


def test_rollups_outlive_retention_and_late_points_add(store: SqliteHistorian, store_path: Path) -> None:
    store.write([r(i, 1.0) for i in range(0, 60, 2)])
    store.write([r(10 * 86400, 5.0)])
    store.apply_retention(T0 + timedelta(days=10))  # raw rows of day 0 are gone, their rollup stays
    store.write([r(1, 3.0)])  # a late point into that minute: added to what the rollup holds
    stored, _ = rollups(store_path)
    assert stored[0] == (1, to_min(0), 1.0, 3.0, 33.0, 31)


def test_a_batch_refused_by_the_database_leaves_nothing(tmp_path: Path) -> None:
    h = SqliteHistorian(tmp_path / "h.sqlite", FleetSpec(id="f", name="F", sites=(), templates=()))
    try:
        h.write([r(0, 1.0)])
        with pytest.raises(OverflowError):
            h.write([r(1, 2.0), r(2, 2**70)])  # too large for SQLite: the whole batch is refused
        assert [x.value for x in h.readings("s1", None, T0 + timedelta(minutes=1))] == [1.0]
        stored, fresh = rollups(h.path)
        assert stored == fresh == [(1, to_min(0), 1.0, 1.0, 1.0, 1)]
    finally:
        h.close()


def to_min(sec: int) -> int:
    """The rollup bucket (minutes since the epoch) of T0 + ``sec``."""
    return int((T0.timestamp() + sec) // 60)
