"""The rolling backtest end to end: emulated plant -> SQLite historian -> ``twin backtest --from --to``.

Eighteen hours of pod-berlin are emulated and stored; the rolling backtest forks at 10 h and 16 h
(6 h apart), each calibrated only from the history before it, and scores 2 h horizons.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
T0 = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)  # a Monday

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    config_mod = pytest.importorskip("connectors.config")
    plant_mod = pytest.importorskip("connectors.emulator.plant")
    store_mod = pytest.importorskip("connectors.store")
    from twin.live import apply, initial_state

    folder = tmp_path_factory.mktemp("rolling")
    db = folder / "h.db"
    text = (EXAMPLES / "fleet.toml").read_text()
    config_path = folder / "fleet.toml"
    config_path.write_text(text.replace('path = "../var/northwind.db"', f'path = "{db}"'))
    fleet = config_mod.load(config_path).fleet
    hist = store_mod.SqliteHistorian(db, fleet)
    plant = plant_mod.Plant(fleet, seed=3, start=T0, sites=["pod-berlin"])
    state = initial_state(fleet, T0)
    now, step = T0, timedelta(seconds=60)
    readings: list = []  # type: ignore[type-arg]
    events: list = []  # type: ignore[type-arg]
    while now < T0 + timedelta(hours=18):
        now += step
        batch = plant.readings(now)
        state, evs = apply(fleet, state, batch, now)
        readings += batch
        events += evs
        if now.minute == 0:
            hist.write(readings, [state.sites["pod-berlin"]], events)
            readings, events = [], []
    hist.write(readings, [state.sites["pod-berlin"]], events)
    hist.close()
    return config_path, db


def _rolling(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:  # type: ignore[type-arg]
    from app import main

    code = main(["backtest", str(config), "--from", (T0 + timedelta(hours=10)).isoformat(),
                 "--to", (T0 + timedelta(hours=16)).isoformat(), "--every", "6h", "--horizon", "2h",
                 "--site", "pod-berlin", "--replications", "4", "--workers", "0", "--calibrate-days", "0.4",
                 "--json", *extra])
    out = capsys.readouterr().out
    assert code == 0
    return json.loads(out)  # type: ignore[no-any-return]


def test_rolling_backtest_scores_every_origin(history: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    doc = _rolling(history[0], capsys)
    assert [o["as_of"] for o in doc["origins"]] == [(T0 + timedelta(hours=h)).isoformat() for h in (10, 16)]
    for o in doc["origins"]:
        assert o["second_order"] is True and o["replications"] == 4
        units = next(s for s in o["series"] if s["metric"] == "cumulative_units" and s["key"] == "pod-berlin")
        assert len(units["actual"]) == 2 and len(units["pit"]) == 2  # 2 h horizon, 1 h bins
        assert sum(units["pit_histogram"]) == 2 and units["crps"] >= 0.0
        assert units["naive"] == [None, None]  # no history a week earlier: no naive forecast, no skill
        assert units["skill"] is None
    summary = doc["summary"]
    assert summary["origins"] == 2
    units = next(s for s in summary["series"] if s["metric"] == "cumulative_units" and s["key"] == "pod-berlin")
    assert units["origins"] == 2 and units["points"] == 4
    assert len(units["coverage_by_hour"]) == 2
    # pooled coverage = mean of the per-hour coverages here (every hour has both origins)
    assert units["coverage"] == pytest.approx(sum(units["coverage_by_hour"]) / 2)
    assert sum(summary["pit_histogram"]) == sum(s["points"] for s in summary["series"] if s["crps"] is not None)
    # the per-site coverage rows: output is the site's units series, stock pools its SKUs by points
    (row,) = doc["coverage"]
    assert row["site"] == "pod-berlin"
    assert row["output_coverage"] == units["coverage"] and row["output_pit_coverage"] == units["pit_coverage"]
    stock = [s for s in summary["series"] if s["metric"] == "stock"]
    pooled = sum(s["pit_coverage"] * s["points"] for s in stock) / sum(s["points"] for s in stock)
    assert row["stock_pit_coverage"] == pytest.approx(pooled)
    assert row["stock_coverage_ok"] == (0.73 <= pooled <= 0.87)


def test_first_order_flag_and_determinism(history: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    first = _rolling(history[0], capsys, "--first-order")
    assert all(o["second_order"] is False for o in first["origins"])
    again = _rolling(history[0], capsys, "--first-order")
    assert again["summary"] == first["summary"]  # same seed, same numbers


def test_window_cache_reads_exactly_what_the_historian_returns(history: tuple[Path, Path]) -> None:
    # the cache must slice [t0, t1] as the store does: a calibration at an origin sees nothing after it
    from connectors.config import load
    from connectors.store import SqliteHistorian
    from twin.historian import SeriesKey
    from twin.sim.rolling import WindowCache

    config_path, db = history
    fleet = load(config_path).fleet
    hist = SqliteHistorian(db, fleet, readonly=True)
    try:
        cache = WindowCache(hist, T0, T0 + timedelta(hours=18))
        keys = [SeriesKey(site="pod-berlin", asset="PK1", signal=s.signal) for s in hist.signals("pod-berlin")
                if s.asset == "PK1"][:3]
        assert keys
        for a, b in ((1, 5), (4, 10), (0, 18)):
            t0, t1 = T0 + timedelta(hours=a), T0 + timedelta(hours=b)
            want = hist.series(keys, t0, t1, 10_000_000)
            got = cache.series(keys, t0, t1, 10_000_000)
            assert [r.points for r in got] == [r.points for r in want]
            assert cache.events("pod-berlin", t0, t1) == hist.events("pod-berlin", t0, t1)
    finally:
        hist.close()
