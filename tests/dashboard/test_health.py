"""The dashboard's health service over a real SQLite store of emulated history with degradation.

Fourteen days of Berlin (8 machines) backfilled every 5 minutes with the degrading truth
(``tests/twin/health/degrading_truth.toml``): enough failures of its four printers (15) for the Cox
model (10 at least); the other templates fall back to the constant-MTBF hazard and say so.
The service scores what a ``HealthMonitor`` of its own
gives at the same moment, on a reader of its own opened once per refresh; reading its view (what
every page does) opens no reader and reads nothing from the history.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.config import load
from connectors.emulator.backfill import backfill
from connectors.emulator.truth import load_truth
from connectors.store import SqliteHistorian
from dashboard.attention import AttentionService, AttentionSettings, Kind, Severity, attention_items, rank
from dashboard.health import HealthService, HealthSettings, fmt_risk
from dashboard.health_view import health_card, risk_figure
from dashboard.queries import QueryService
from twin.errors import ConfigError
from twin.health.monitor import HealthMonitor
from twin.historian import HistorianReader
from twin.spec import FleetSpec

ROOT = Path(__file__).resolve().parents[2]
TRUTH = ROOT / "tests" / "twin" / "health" / "degrading_truth.toml"
END = datetime(2026, 11, 30, 6, tzinfo=UTC)
START = END - timedelta(days=14)
SITE = "pod-berlin"


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[FleetSpec, Path]:
    full = load(ROOT / "examples" / "fleet.toml").fleet
    fleet = dataclasses.replace(full, sites=(full.site(SITE),))
    db = tmp_path_factory.mktemp("health") / "history.db"
    store = SqliteHistorian(db, fleet)
    try:
        backfill(fleet, store, start=START, end=END, step_s=300.0, seed=7, truth=load_truth(TRUTH, fleet))
    finally:
        store.close()
    return fleet, db


def counting_opener(fleet: FleetSpec, db: Path) -> tuple[Callable[[], HistorianReader], list[int]]:
    opened = [0]

    def open_reader() -> HistorianReader:
        opened[0] += 1
        return SqliteHistorian(db, fleet, readonly=True)

    return open_reader, opened


def test_the_service_scores_what_the_monitor_does_and_pages_read_nothing(stored: tuple[FleetSpec, Path]) -> None:
    fleet, db = stored
    open_reader, opened = counting_opener(fleet, db)
    service = HealthService(fleet=fleet, open_historian=open_reader, clock=lambda: END)
    assert service.view() is None  # nothing before the first refresh, and view() does not make one
    assert opened[0] == 0
    view = service.refresh()
    assert opened[0] == 1
    store = SqliteHistorian(db, fleet, readonly=True)
    try:
        mine = HealthMonitor(fleet).refresh(store, END)
    finally:
        store.close()
    assert sorted(view.machines) == sorted((SITE, str(m.id)) for m in fleet.site(SITE).machines)
    for h in mine.machines:
        got = view.machine(h.site, h.machine)
        assert got is not None
        assert got.risk.p == pytest.approx(h.risk.p) and got.risk.low == pytest.approx(h.risk.low)
        assert got.risk.high == pytest.approx(h.risk.high)
        trend = view.trends[(h.site, h.machine)]
        # the trend's last point is the risk now (same model, same features at the last grid time)
        assert trend.p[-1] == pytest.approx(h.risk.p, rel=1e-6, abs=1e-9) or h.status.value in ("off", "idle")
    # every page reads the view: no reader opened, nothing read
    for _ in range(20):
        assert service.view() is view
    assert opened[0] == 1
    # the model is refitted on the monitor's schedule (6 h), not per refresh: a second refresh keeps it
    model = service.monitor.model
    service.refresh()
    assert service.monitor.model is model and opened[0] == 2


def test_thread_starts_and_stops(stored: tuple[FleetSpec, Path]) -> None:
    fleet, db = stored
    open_reader, opened = counting_opener(fleet, db)
    service = HealthService(fleet=fleet, open_historian=open_reader, clock=lambda: END,
                            settings=HealthSettings(every_s=3600.0))
    service.start()
    try:
        assert service.refreshed.wait(60.0)
    finally:
        service.stop()
    assert service.view() is not None and opened[0] == 1  # once at the start; the next an hour later


def test_settings_errors_name_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        HealthSettings(high=1.5).check()
    assert "health.high" in str(err.value) and "0.01..0.99" in str(err.value)


def test_fmt_risk() -> None:
    # a no-break space before the % sign (\xa0): a phone never puts "%" alone on the next line
    got = [fmt_risk(p) for p in (0.0, 0.004, 0.449, 0.45, 0.999)]
    assert got == ["<1\xa0%", "<1\xa0%", "45\xa0%", "45\xa0%", ">99\xa0%"]


def _text(component: object) -> str:
    """All the text of a Dash component tree."""
    if isinstance(component, str | int | float):
        return str(component)
    if isinstance(component, list | tuple):
        return " ".join(_text(c) for c in component)
    children = getattr(component, "children", None)
    return _text(children) if children is not None else ""


def test_the_card_says_the_risk_its_interval_drivers_and_model(stored: tuple[FleetSpec, Path]) -> None:
    fleet, db = stored
    open_reader, _ = counting_opener(fleet, db)
    view = HealthService(fleet=fleet, open_historian=open_reader, clock=lambda: END).refresh()
    p3 = view.machine(SITE, "P3")
    assert p3 is not None and p3.model.kind == "cox" and p3.model.failures >= 10
    text = _text(health_card(view, SITE, "P3"))
    assert f"Failure within 8 h: {fmt_risk(p3.risk.p)}" in text.replace("  ", " ")
    assert f"90 %: {fmt_risk(p3.risk.low)}–{fmt_risk(p3.risk.high)}" in text
    assert f"fdm-printer: Cox time-varying model from {p3.model.failures} failures" in text and "of 4 machines" in text
    assert all(d.name in text for d in p3.drivers) and p3.drivers
    # a template without enough failures says it falls back to the constant MTBF hazard
    w1 = view.machine(SITE, "W1")
    assert w1 is not None and w1.model.kind == "constant"
    assert "constant-MTBF hazard" in _text(health_card(view, SITE, "W1"))
    # the trend has the risk and the drivers' signals with their learnt thresholds
    fig = risk_figure(view, SITE, "P3", tz="Europe/Berlin")
    names = [t.name for t in fig.data]
    assert names[0] == "P(failure within 8 h), %" and any("threshold" in n for n in names)
    assert fig.data[0].y[-1] == pytest.approx(round(100 * view.trends[(SITE, "P3")].p[-1], 2))


# On 24 November at 08:00 UTC (ten days in) printer P3 is worn: the Cox model, fitted on the ten days
# before (its printers' failures), gives it about 47 % within 8 h; the other printers are below 1 %.
WORN = datetime(2026, 11, 24, 8, tzinfo=UTC)


def test_a_high_risk_gets_an_attention_line_ranked_and_linked(stored: tuple[FleetSpec, Path]) -> None:
    fleet, db = stored
    open_reader, _ = counting_opener(fleet, db)
    health = HealthService(fleet=fleet, open_historian=open_reader, clock=lambda: WORN).refresh()
    p3 = health.machine(SITE, "P3")
    assert p3 is not None and p3.model.kind == "cox" and p3.risk.p >= 0.30
    assert [h.machine for h in health.high_risk()] == ["P3"]
    store = SqliteHistorian(db, fleet, readonly=True)
    try:
        queries = QueryService(fleet=fleet, historian=store, clock=lambda: WORN)
        view = queries.site_view(SITE)
        items = attention_items(fleet, [view], None, WORN, health=health)
        without = attention_items(fleet, [view], None, WORN)
    finally:
        store.close()
    risk = [i for i in items if i.kind is Kind.FAILURE_RISK]
    assert len(risk) == 1 and len(items) == len(without) + 1
    line = risk[0]
    assert line.severity is Severity.HIGH and line.entity == "P3"
    assert line.text == f"P3: {fmt_risk(p3.risk.p)} risk of a failure within 8 h"
    assert line.link == "/machine?site=pod-berlin&machine=P3"
    # at stake: the risk × what an FDM printer makes over its MTTR (12 parts per 4 h build = 3/h, MTTR 2 h)
    assert line.cost == pytest.approx(p3.risk.p * 2.0 * 3.0)
    assert items == rank(items)  # ranked with the others by severity and cost
    # with 50 % as the threshold (above P3's risk) there is no line
    high50 = dataclasses.replace(health, high=0.5)
    assert not [i for i in attention_items(fleet, [view], None, WORN, health=high50) if i.kind is Kind.FAILURE_RISK]


def test_the_attention_service_rebuilds_its_list_on_a_new_health_view(stored: tuple[FleetSpec, Path]) -> None:
    fleet, db = stored
    open_reader, _ = counting_opener(fleet, db)
    health = HealthService(fleet=fleet, open_historian=open_reader, clock=lambda: WORN)
    store = SqliteHistorian(db, fleet, readonly=True)
    try:
        queries = QueryService(fleet=fleet, historian=store, clock=lambda: WORN)
        attention = AttentionService(queries=queries, settings=AttentionSettings(enabled=False), health=health)
        before = attention.refresh()  # no health view yet: no risk line
        assert not [i for i in before.items if i.kind is Kind.FAILURE_RISK]
        health.refresh()
        after = attention.refresh()
        assert after is not before
        assert [i.entity for i in after.items if i.kind is Kind.FAILURE_RISK] == ["P3"]
        assert attention.refresh() is after  # nothing new: the same list
        attention.stop()
    finally:
        store.close()
