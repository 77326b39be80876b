"""``twin backtest --alarms`` end to end: emulated plant -> SQLite historian -> the predictive alarms' scores.

Eighteen hours of the example fleet are backfilled (``connectors.emulator.backfill``: readings,
states, events and the plant's order records), its orders due 6 h (custom-bracket) and 8 h
(machined-housing) after they arrive, so at an origin some open orders are due within the alarm
horizon and some finish late. Origins at 8 h and 11 h, alarm horizons of 6 h: both windows end
inside the history (at 14 h and 17 h). Every outcome the command reports is checked against the
store read directly.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
T0 = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)  # a Monday
ORIGINS = (T0 + timedelta(hours=8), T0 + timedelta(hours=11))
HORIZON = timedelta(hours=6)
REPS = 4

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from connectors.config import load
    from connectors.emulator.backfill import backfill
    from connectors.store import SqliteHistorian

    folder = tmp_path_factory.mktemp("alarms")
    db = folder / "h.db"
    text = (EXAMPLES / "fleet.toml").read_text().replace('path = "../var/northwind.db"', f'path = "{db}"')
    assert "due_h = 48" in text and "due_h = 72" in text
    text = text.replace("due_h = 48", "due_h = 6").replace("due_h = 72", "due_h = 8")
    config_path = folder / "fleet.toml"
    config_path.write_text(text)
    fleet = load(config_path).fleet
    store = SqliteHistorian(db, fleet)
    try:
        backfill(fleet, store, start=T0, end=T0 + timedelta(hours=18), step_s=60.0, seed=3)
    finally:
        store.close()
    return config_path


def _backtest(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    from app import main

    code = main(["backtest", str(config), "--from", ORIGINS[0].isoformat(), "--to", ORIGINS[1].isoformat(),
                 "--every", "3h", "--horizon", "2h", "--replications", str(REPS), "--workers", "0",
                 "--calibrate-days", "0.3", "--first-order", "--no-progress", "--alarms",
                 "--alarm-horizon-stockout", "6h", "--alarm-horizon-late", "6h", *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_alarm_outcomes_are_what_the_store_shows(history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from connectors.config import load
    from connectors.store import SqliteHistorian
    from twin.sim.alarm_backtest import stockout_level
    from twin.state import EventKind

    code, out, _ = _backtest(history, capsys, "--json")
    assert code == 0
    doc = json.loads(out)
    obs = [o for origin in doc["origins"] for o in origin["alarms"]]
    fleet = load(history).fleet
    store = SqliteHistorian(fleet_db(history), fleet, readonly=True)
    try:
        for t0 in ORIGINS:
            mine = [o for o in obs if o["origin"] == t0.isoformat()]
            # late_order_risk: the candidates are the orders open at the origin and due within 6 h
            want = {}
            for site in fleet.sites:
                state = store.state_at(str(site.id), t0)
                assert state is not None
                for order in state.orders:
                    if t0 < order.due <= t0 + HORIZON:
                        want[order.id] = order.due
            late = {o["candidate"]: o for o in mine if o["kind"] == "late_order_risk"}
            assert set(late) == set(want)
            for oid, due in want.items():
                site = late[oid]["site"]
                closed = [e for e in store.events(site, t0, due + timedelta(hours=7))
                          if e.kind is EventKind.ORDER_CLOSED and e.data.get("order") == oid]
                # late: closed after its due, or not closed by then (the history runs to 18 h, past every due)
                assert late[oid]["outcome"] is (not closed or closed[0].ts > due), oid
                p = late[oid]["probability"]
                assert 0.0 <= p <= 1.0 and p * REPS == pytest.approx(round(p * REPS))  # k of 4 replications
            # stockout_risk: every stocked SKU at every site; its outcome from the on-hand series
            stock = {o["candidate"]: o for o in mine if o["kind"] == "stockout_risk"}
            assert set(stock) == {f"{s.id}/{i.sku}" for s in fleet.sites for i in s.inventory}
            for key, o in stock.items():
                site, sku = key.split("/")
                level = stockout_level(fleet, sku)
                from twin.historian import SeriesKey

                (res,) = store.series([SeriesKey(site=site, asset=sku, signal="on_hand")], t0 - timedelta(hours=1),
                                      t0 + HORIZON, 10_000_000)
                before = [p.value for p in res.points if p.ts <= t0]
                after = [p.value for p in res.points if p.ts > t0]
                if before[-1] < level - 1e-9 or (level == 0 and before[-1] <= 0):
                    assert o["outcome"] is None  # already out at the origin: not a prediction
                else:
                    assert o["outcome"] is any(v < level - 1e-9 if level else v <= 1e-9 for v in after), key
    finally:
        store.close()
    assert any(o["outcome"] for o in obs if o["kind"] == "late_order_risk")  # the test has late orders to score
    # the summary counts what the observations say, at the configured 0.5
    late_score = next(s for s in doc["alarms"]["scores"] if s["kind"] == "late_order_risk")
    known = [o for o in obs if o["kind"] == "late_order_risk" and o["outcome"] is not None]
    tp = sum(1 for o in known if o["outcome"] and o["probability"] > 0.5)
    fp = sum(1 for o in known if not o["outcome"] and o["probability"] > 0.5)
    fn = sum(1 for o in known if o["outcome"] and o["probability"] <= 0.5)
    assert (late_score["tp"], late_score["fp"], late_score["fn"]) == (tp, fp, fn)
    assert late_score["observations"] == len(known)


def fleet_db(config: Path) -> Path:
    return config.parent / "h.db"


def test_alarm_table_in_text(history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _backtest(history, capsys, "--alarm-threshold-late", "0.25")
    assert code == 0
    rows = [ln.split() for ln in out.splitlines()]
    (late,) = [r for r in rows if r[:3] == ["late_order_risk", "0.25", "6h"]]
    assert [r[:3] for r in rows if r[:1] == ["stockout_risk"] and len(r) > 3 and r[2] == "6h"] == [
        ["stockout_risk", "0.50", "6h"]]
    # then the table: 0.1, 0.2, 0.3, 0.5, 0.7, 0.9 and the configured 0.25
    table = [r for r in rows if r[:1] == ["late_order_risk"] and r[2] != "6h"]
    assert [r[1] for r in table] == ["0.10", "0.20", "0.25", "0.30", "0.50", "0.70", "0.90"]
    # the same raised and TP counts in the rule's row (columns raised, TP) and its table row
    assert late[5:7] == table[2][2:4]


def test_bad_alarm_options_are_refused(history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _backtest(history, capsys, "--alarm-threshold-stockout", "1.5")
    assert code == 2 and "alarm-threshold-stockout" in err and "1.5" in err
    from app import main

    code = main(["backtest", str(history), "--at", ORIGINS[0].isoformat(), "--until", ORIGINS[1].isoformat(),
                 "--alarms"])
    err = capsys.readouterr().err
    assert code == 2 and "--alarms" in err and "rolling" in err


def test_the_scored_thresholds_and_horizons_are_the_plant_files_unless_a_flag_says_else() -> None:
    """``--alarms`` scores the rules as configured: the example's stockout_risk is 0.5 over 48 h and its
    late_order_risk 0.5 over 24 h; with those rules changed to 0.3 / 12 h and 0.7 / 6 h the scored
    settings follow them (hours x 3600 = seconds), and a flag overrides the file for its own setting only."""
    import argparse
    import dataclasses

    from app.backtest import _alarm_settings
    from connectors.config import load
    from twin.spec import AlarmKind

    fleet = load(EXAMPLES / "fleet.toml").fleet
    unset = argparse.Namespace(alarm_threshold_stockout=None, alarm_horizon_stockout=None,
                               alarm_threshold_late=None, alarm_horizon_late=None)
    got = _alarm_settings(unset, fleet)
    assert (got.stockout_threshold, got.stockout_horizon_s, got.late_threshold, got.late_horizon_s) == (
        0.5, 48 * 3600.0, 0.5, 24 * 3600.0)

    changed = {AlarmKind.STOCKOUT_RISK: (0.3, 12.0), AlarmKind.LATE_ORDER_RISK: (0.7, 6.0)}
    rules = tuple(dataclasses.replace(r, threshold=changed[r.kind][0], horizon_h=changed[r.kind][1])
                  if r.kind in changed else r for r in fleet.alarms)
    mine = dataclasses.replace(fleet, alarms=rules)
    got = _alarm_settings(unset, mine)
    assert (got.stockout_threshold, got.stockout_horizon_s, got.late_threshold, got.late_horizon_s) == (
        0.3, 12 * 3600.0, 0.7, 6 * 3600.0)
    flagged = argparse.Namespace(**{**vars(unset), "alarm_threshold_late": 0.9})
    got = _alarm_settings(flagged, mine)
    assert (got.stockout_threshold, got.late_threshold, got.late_horizon_s) == (0.3, 0.9, 6 * 3600.0)
