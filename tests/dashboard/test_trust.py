"""Model trust: the view built from a rolling summary, its figures, the drift rule and its alarm lifecycle,
the drift alarm reaching a site's alarms through the query service, and a real background score."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from conftest import NOW

from dashboard import trust_figures
from dashboard.pages import trust as page
from dashboard.queries import QueryService
from dashboard.trust import (
    DRIFT_RULE,
    DriftAlarms,
    TrustRun,
    TrustService,
    TrustSettings,
    TrustView,
    drift_findings,
    trust_view,
)
from twin.calibrate import Calibration, ParamEstimate, Source
from twin.errors import ConfigError
from twin.historian import WriterRecorder
from twin.sim.backtest import RollingSummary, SeriesSummary
from twin.spec import FleetSpec, Priority

T = datetime(2026, 1, 7, 6, 0, tzinfo=UTC)
NAN = math.nan


def _series(metric: str, key: str, *, points: int, coverage: float, by_hour: tuple[float, ...],
            pit: tuple[int, ...], crps: float = NAN, mae: float = NAN, naive: float = NAN, daily: float = NAN,
            naive_daily: float = NAN, skill: float = NAN) -> SeriesSummary:
    return SeriesSummary(metric=metric, key=key, origins=25, points=points, coverage=coverage, pit_histogram=pit,
                         crps=crps, median_abs_error=mae, naive_abs_error=naive, daily_error=daily,
                         naive_daily_error=naive_daily, skill=skill, coverage_by_hour=by_hour)


def _run(output_coverage: float = 0.78, output_skill: float = 1 - 20 / 30) -> TrustRun:
    summary = RollingSummary(origins=25, coverage=NAN, pit_histogram=(), series=(
        _series("cumulative_units", "pod-lyon", points=100, coverage=output_coverage, by_hour=(0.9, 0.8, 0.6),
                pit=(14, 10, 9, 8, 9, 10, 8, 9, 10, 13), crps=12.34, daily=20.0, naive_daily=30.0,
                skill=output_skill),
        _series("stock", "pod-lyon/PA12-POWDER", points=60, coverage=0.5, by_hour=(0.6, 0.5, 0.4),
                pit=(20, 2, 2, 2, 2, 2, 2, 2, 2, 24), crps=3.0, mae=4.0, naive=5.0, skill=1 - 4 / 5),
        _series("stock", "pod-lyon/BOX-S", points=40, coverage=0.75, by_hour=(0.8, 0.75, 0.7),
                pit=(4,) * 10, crps=1.5, mae=2.0, naive=1.0, skill=1 - 2 / 1),
        # another site's series: not part of pod-lyon's panel
        _series("cumulative_units", "pod-berlin", points=100, coverage=0.1, by_hour=(0.1,), pit=(100,) + (0,) * 9),
    ))
    cal = Calibration(t0=T - timedelta(days=7), t1=T, estimates=(
        ParamEstimate(name="mtbf_h", subject="pod-lyon/CNC1", value=41.2, samples=9, source=Source.HISTORY,
                      default=40.0, unit="h"),
        ParamEstimate(name="mttr_h", subject="pod-lyon/CNC1", value=1.5, samples=2, source=Source.DEFAULT,
                      default=1.5, unit="h"),
        ParamEstimate(name="mtbf_h", subject="pod-berlin/P1", value=30.0, samples=12, source=Source.HISTORY,
                      default=40.0, unit="h"),
    ))
    return TrustRun(computed_at=T, origins=tuple(T - timedelta(days=7) + timedelta(hours=6 * i) for i in range(25)),
                    horizon_h=24.0, every_h=6.0, days=7.0, replications=20, summary=summary, calibration=cal)


def test_the_view_pools_a_sites_series_by_hand(fleet: FleetSpec) -> None:
    v = trust_view(_run(), fleet.site("pod-lyon"))
    assert v.status == "ok" and v.origins == 25
    assert v.output_coverage == pytest.approx(0.78)
    # stock pools its items by points: (0.5 * 60 + 0.75 * 40) / 100 = 0.60
    assert v.stock_coverage == pytest.approx(0.60)
    assert v.output_by_hour == pytest.approx((0.9, 0.8, 0.6))
    # by hour the items are averaged: (0.6 + 0.8) / 2, (0.5 + 0.75) / 2, (0.4 + 0.7) / 2
    assert v.stock_by_hour == pytest.approx((0.7, 0.625, 0.55))
    # PIT: output's, PA12's and BOX-S's counts bin by bin (pod-berlin left out); 200 values, 20 per bin if flat
    assert v.pit_histogram == (38, 16, 15, 14, 15, 16, 14, 15, 16, 41)
    assert v.pit_total == 200 and v.pit_flat == pytest.approx(20.0)
    # skill: output 1 - 20/30 = 0.333; stock 1 - mean(4, 2) / mean(5, 1) = 1 - 3/3 = 0
    assert v.output_skill == pytest.approx(1 / 3) and v.stock_skill == pytest.approx(0.0)
    assert v.output_crps == pytest.approx(12.34)
    assert [(r.label, r.unit) for r in v.rows] == [("output", "units"), ("PA12-POWDER", "kg"), ("BOX-S", "pcs")]
    # only the site's figures, the fallback to the configuration first
    assert [(p.name, p.subject, p.samples, p.from_history) for p in v.params] == [
        ("mttr_h", "CNC1", 2, False), ("mtbf_h", "CNC1", 9, True)]
    # 0.60 is not below 0.60 and a skill of 0 is not below 0: no drift
    assert v.findings == ()


def test_the_figures_show_the_views_numbers(fleet: FleetSpec) -> None:
    v = trust_view(_run(), fleet.site("pod-lyon"))
    cov = trust_figures.coverage_by_hour(v)
    by_name = {t.name: t for t in cov.data}
    assert list(by_name["output"].y) == [90.0, 80.0, 60.0]
    assert list(by_name["stock"].y) == [70.0, 62.5, 55.0]
    # amber only outside 73..87 %: output hours 1 (90) and 3 (60), stock hours 1..3 (70, 62.5, 55)
    off = by_name["outside 73–87 %"]
    assert sorted(zip(off.x, off.y, strict=True)) == [(1, 70.0), (1, 90.0), (2, 62.5), (3, 55.0), (3, 60.0)]
    assert all("outside 73–87 %" in t for t in off.customdata)  # the words beside the colour
    pit = trust_figures.pit_histogram(v)
    assert list(pit.data[0].y) == [38, 16, 15, 14, 15, 16, 14, 15, 16, 41]
    flat = pit.data[1]  # the flat line of a calibrated model: 200 values / 10 bins
    assert list(flat.y) == [20.0] * 10 and flat.name == "calibrated: 20 per bin"


def test_the_page_says_the_figures_in_words(fleet: FleetSpec) -> None:
    v = trust_view(_run(), fleet.site("pod-lyon"))
    parts = page.render_view(v)
    text = str(parts["kpis"])
    assert "78 %" in text and "60 %" in text and "+0.33" in text and "12.3 units" in text
    # stock at 60 % is outside 73..87: amber, and the reason in words
    assert "BANDS TOO NARROW (below 73 %)" in text
    assert "25 origins every 6 h" in parts["header"] and "2026-01-07 06:00 UTC" in parts["header"]
    assert parts["banner"] is None  # no drift
    assert "1 of 2 figures from history" in str(parts["params"])
    assert page.param_groups(v.params) == [("MTTR", 0, 1, "2"), ("MTBF", 1, 0, "9")]
    assert "WORSE THAN NAIVE" in str(parts["scores"])  # BOX-S: skill 1 - 2/1 = -1
    pending = page.render_view(TrustView(site="pod-lyon", status="pending"))
    assert "Not scored yet" in pending["header"]


def test_the_drift_rule() -> None:
    def view(**kw: float) -> TrustView:
        return TrustView(site="pod-lyon", status="ok", days=7.0, **kw)

    assert drift_findings(view(output_coverage=0.55)) == [
        "output P10–P90 coverage 55 % over the last 7 days (target 80 %)"]
    assert drift_findings(view(output_coverage=0.8)) == []
    # just below the limit: not "60 %" (which would not read as below 60 %)
    assert drift_findings(view(output_coverage=0.595)) == [
        "output P10–P90 coverage 59.5 % over the last 7 days (target 80 %)"]
    assert drift_findings(view(output_coverage=0.8, output_skill=-0.1)) == [
        "output skill against naive -0.10 over the last 7 days (target above 0)"]
    assert drift_findings(view(stock_coverage=0.52, stock_skill=-0.2)) == [
        "stock P10–P90 coverage 52 % over the last 7 days (target 80 %)",
        "stock skill against naive -0.20 over the last 7 days (target above 0)"]
    assert drift_findings(TrustView(site="pod-lyon", status="pending", output_coverage=0.1)) == []


def test_a_drift_alarm_is_raised_updated_and_cleared(fleet: FleetSpec) -> None:
    alarms = DriftAlarms()
    low = trust_view(_run(output_coverage=0.52), fleet.site("pod-lyon"))
    assert low.findings == ("output P10–P90 coverage 52 % over the last 7 days (target 80 %)",)
    alarms.update("pod-lyon", low.findings, T)
    [a] = alarms.current_alarms("pod-lyon")
    assert (a.rule, a.priority, a.active, a.raised_at) == (DRIFT_RULE, Priority.MEDIUM, True, T)
    assert a.message == "twin drift: output P10–P90 coverage 52 % over the last 7 days (target 80 %)"
    # the next score still drifts (now the skill too): the same instance, its message updated
    worse = trust_view(_run(output_coverage=0.52, output_skill=-0.1), fleet.site("pod-lyon"))
    alarms.update("pod-lyon", worse.findings, T + timedelta(days=1))
    [b] = alarms.current_alarms("pod-lyon")
    assert b.raised_at == T and "skill against naive -0.10" in b.message
    # back in range: cleared, kept for the journal
    alarms.update("pod-lyon", trust_view(_run(), fleet.site("pod-lyon")).findings, T + timedelta(days=2))
    assert alarms.current_alarms("pod-lyon") == []
    [past] = alarms.past_alarms("pod-lyon")
    assert (past.active, past.cleared_at, past.state) == (False, T + timedelta(days=2), "cleared/unacked")
    assert alarms.current_alarms("pod-berlin") == [] and alarms.past_alarms("pod-berlin") == []


def test_the_drift_alarm_reaches_the_sites_alarms_but_not_the_historian(historian, fleet: FleetSpec) -> None:  # type: ignore[no-untyped-def]
    message = "output P10–P90 coverage 52 % over the last 7 days (target 80 %)"
    before = QueryService(fleet=fleet, historian=historian, clock=lambda: NOW)
    tiles_before = {t.site: t for t in before.fleet_tiles()}
    alarms = DriftAlarms()
    alarms.update("pod-lyon", [message], NOW - timedelta(hours=1))
    q = QueryService(fleet=fleet, historian=historian, clock=lambda: NOW, derived_alarms=alarms)
    tiles = {t.site: t for t in q.fleet_tiles()}
    assert tiles["pod-lyon"].active_alarms == tiles_before["pod-lyon"].active_alarms + 1
    assert tiles["pod-berlin"].active_alarms == tiles_before["pod-berlin"].active_alarms
    drift = [a for a in q.site_view("pod-lyon").alarms if a.rule == DRIFT_RULE]
    assert [(a.priority, a.active, a.message) for a in drift] == [(Priority.MEDIUM, True, "twin drift: " + message)]
    journal = q.alarm_rows(sites=["pod-lyon"], priorities=None, states=["active"], hours=24)
    assert any(r.rule == DRIFT_RULE for r in journal)
    # cleared by the next score: gone from the site's list, in the journal as cleared
    alarms.update("pod-lyon", [], NOW)
    q2 = QueryService(fleet=fleet, historian=historian, clock=lambda: NOW, derived_alarms=alarms)
    assert not [a for a in q2.site_view("pod-lyon").alarms if a.rule == DRIFT_RULE]
    cleared = [r for r in q2.alarm_rows(sites=["pod-lyon"], priorities=None, states=None, hours=24)
               if r.rule == DRIFT_RULE]
    assert [(r.active, r.cleared_at) for r in cleared] == [(False, NOW)]
    # nothing of it in the history
    assert not [e for e in historian.events("pod-lyon", NOW - timedelta(days=1), NOW + timedelta(hours=1))
                if e.data.get("rule") == DRIFT_RULE]


def test_settings_out_of_range_are_named() -> None:
    with pytest.raises(ConfigError) as err:
        TrustSettings(replications=0, horizon_h=24.0 * 8).check()
    text = str(err.value)
    assert "trust.replications" in text and "trust.horizon_h" in text
    # origins: every 6 h from now - 7 d to now - 24 h (now taken to the hour): 25
    at = TrustSettings().origins(datetime(2026, 1, 8, 12, 40, tzinfo=UTC))
    assert len(at) == 25 and at[0] == datetime(2026, 1, 1, 12, tzinfo=UTC) and at[-1] == datetime(2026, 1, 7, 12,
                                                                                                   tzinfo=UTC)


SMALL = TrustSettings(days=0.4, every_h=3.0, horizon_h=2.0, replications=3, calibrate_days=0.1, first_delay_s=0.0)


def test_the_service_scores_the_history_and_the_page_reads_it(store_path, fleet: FleetSpec) -> None:  # type: ignore[no-untyped-def]
    from connectors.store import SqliteHistorian

    opened: list[SqliteHistorian] = []

    def open_reader() -> SqliteHistorian:
        opened.append(SqliteHistorian(store_path, fleet, readonly=True))
        return opened[-1]

    service = TrustService(fleet=fleet, open_historian=open_reader, clock=lambda: NOW, settings=SMALL)
    assert service.view("pod-lyon").status == "pending"
    run = service.run_now()
    # NOW is 12:00: origins from 12:00 - 9.6 h = 02:24 every 3 h up to 10:00: 02:24, 05:24, 08:24
    assert [t.strftime("%H:%M") for t in run.origins] == ["02:24", "05:24", "08:24"]
    v = service.view("pod-lyon")
    assert v.status == "ok" and v.computed_at == NOW and v.origins == 3
    assert 0.0 <= v.output_coverage <= 1.0
    assert len(v.output_by_hour) == 2  # a 2 h horizon: hours 1 and 2
    assert service.view("pod-lyon") is v  # the same view until the next score
    # the reader of each run is its own and closed afterwards; the alarms follow the findings
    assert len(opened) == 1
    assert bool(service.current_alarms("pod-lyon")) == bool(v.findings)


def test_the_scheduler_scores_in_its_own_thread(store_path, fleet: FleetSpec) -> None:  # type: ignore[no-untyped-def]
    from connectors.store import SqliteHistorian

    service = TrustService(fleet=fleet, open_historian=lambda: SqliteHistorian(store_path, fleet, readonly=True),
                           clock=lambda: NOW, settings=SMALL)  # first_delay_s=0: at once
    service.start()
    try:
        assert service.scored.wait(300)  # generous: only a hung scheduler fails
        assert service.view("pod-lyon").status == "ok"
    finally:
        service.stop()
    off = TrustService(fleet=fleet, open_historian=lambda: SqliteHistorian(store_path, fleet, readonly=True),
                       clock=lambda: NOW, settings=TrustSettings.parse("off"))
    off.start()  # disabled: no thread, and the page says so
    assert off.view("pod-lyon").status == "off" and off._thread is None


def test_the_window_ends_where_the_history_ends(store_path, fleet: FleetSpec) -> None:  # type: ignore[no-untyped-def]
    from connectors.store import SqliteHistorian

    # two days after the history stopped (a collector down): scored as if at the newest sample (NOW, to
    # the minute), not over two days of "nothing happened" that would read as drift
    later = NOW + timedelta(days=2)
    service = TrustService(fleet=fleet, open_historian=lambda: SqliteHistorian(store_path, fleet, readonly=True),
                           clock=lambda: later, settings=SMALL)
    run = service.run_now()
    assert [t.strftime("%d %H:%M") for t in run.origins] == ["07 02:24", "07 05:24", "07 08:24"]
    assert run.data_end is not None and abs(run.data_end - NOW) < timedelta(minutes=5)  # the fill's last tick
    view = service.view("pod-lyon")
    assert view.computed_at == later and view.data_end == run.data_end
    assert "History ends 2026-01-07 1" in page.header(view)


def test_a_drift_alarm_can_be_acknowledged_like_any_other(historian, fleet: FleetSpec) -> None:  # type: ignore[no-untyped-def]
    alarms = DriftAlarms()
    alarms.update("pod-lyon", ["output P10–P90 coverage 52 % over the last 7 days (target 80 %)"],
                  NOW - timedelta(hours=1))
    q = QueryService(fleet=fleet, historian=historian, clock=lambda: NOW, derived_alarms=alarms,
                     recorder=WriterRecorder(historian))
    # the operator's acknowledgement is recorded like any other (an ALARM_ACKNOWLEDGED event by the user);
    # the drift alarm itself is never written
    q.acknowledge(site="pod-lyon", key=f"{DRIFT_RULE}:model", user="ana", comment="recalibrating")
    q2 = QueryService(fleet=fleet, historian=historian, clock=lambda: NOW, derived_alarms=alarms)
    [row] = [a for a in q2.site_view("pod-lyon").alarms if a.rule == DRIFT_RULE]
    assert (row.state, row.acked_by, row.ack_comment) == ("active/acked", "ana", "recalibrating")
