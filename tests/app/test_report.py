"""``twin report``: a shift's report from emulated history, its numbers cross-checked against ``twin.kpi``.

One day of EMULATED history of the example fleet (``twin backfill``, every 60 s, into a real SQLite
store); the report of Berlin's early shift (06:00-14:00 Europe/Berlin = 05:00-13:00 UTC) is written
as HTML, PDF and CSV, and its figures are compared with the twin's own KPIs of the same snapshots.
"""

from __future__ import annotations

import csv
import io
import math
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tomli_w

from app import main
from app.report import report, shift_window
from connectors.config import load
from connectors.store import SqliteHistorian
from tests.conftest import EXAMPLES
from twin.kpi import machine_oee, site_oee
from twin.shift import ShiftReport

END = datetime(2026, 11, 26, tzinfo=UTC)  # a Thursday: the day before is a working Wednesday
START = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # Berlin's early shift, 06:00 local


def _twin(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


@dataclass(frozen=True, slots=True)
class History:
    config: Path
    folder: Path


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    folder = tmp_path_factory.mktemp("report")
    raw = tomllib.loads((EXAMPLES / "fleet.toml").read_text(encoding="utf-8"))
    raw["historian"]["path"] = str(folder / "history.db")
    raw["feeds"] = {"drop_dir": str(folder / "in"), "ledger": str(folder / "feeds.db")}
    config = folder / "fleet.toml"
    config.write_text(tomli_w.dumps(raw), encoding="utf-8")
    code, _, err = _twin("backfill", str(config), "--days", "1", "--seed", "7", "--end", END.isoformat(),
                         "--step", "60")
    assert code == 0, err
    return History(config=config, folder=folder)


@pytest.fixture
def store(history: History) -> Iterator[SqliteHistorian]:
    cfg = load(history.config)
    h = SqliteHistorian(cfg.historian.path, cfg.fleet, readonly=True)
    yield h
    h.close()


@pytest.fixture
def rep(history: History, store: SqliteHistorian) -> ShiftReport:
    fleet = load(history.config).fleet
    return report(store, fleet, "pod-berlin", shift_window(fleet.site("pod-berlin"), START.isoformat(), END))


def test_figures_are_the_twins_kpis(history: History, store: SqliteHistorian, rep: ShiftReport) -> None:
    fleet = load(history.config).fleet
    site = fleet.site("pod-berlin")
    before, after = store.state_at("pod-berlin", START), store.state_at("pod-berlin", START + timedelta(hours=8))
    assert before is not None and after is not None
    kpi = site_oee(site, before, after)
    assert rep.oee == kpi  # the report's OEE is the dashboard's, of the same two snapshots
    for row in rep.machines:
        m = site.machine(row.machine)
        assert m is not None
        b, a = before.machines[m.id], after.machines[m.id]
        assert row.oee == machine_oee(site, m, b, a, START, START + timedelta(hours=8))
    # 8 machines with a known status, 8 h each: 3840 min of planned time in the site's waterfall
    w = rep.waterfall
    assert w.planned_s == 8 * 8 * 3600
    assert math.fsum([*(s.seconds for s in w.steps), w.productive_s or 0.0]) == pytest.approx(w.planned_s)
    assert w.oee == pytest.approx(kpi.oee, rel=1e-9)
    # the Pareto holds every stop in planned time, and those are the availability loss
    lost = math.fsum(s.seconds for s in rep.stops if s.planned)
    assert math.fsum(r.seconds for r in rep.pareto) == pytest.approx(lost)
    assert lost == pytest.approx(w.planned_s - w.run_s)
    # output is the good count of the finishing (pack) machine, against the plan pro rata of the day:
    # 8 of the day's 16 planned hours
    pk1 = next(r for r in rep.machines if r.machine == "PK1")
    assert rep.output.actual == pk1.good
    assert rep.output.plan == pytest.approx(site.daily_plan_units * 8 / 16)


def test_cli_writes_html_pdf_and_csv(history: History, rep: ShiftReport, tmp_path: Path) -> None:
    code, out, err = _twin("report", str(history.config), "--site", "pod-berlin", "--shift", "2026-11-25T05:00Z",
                           "--out", str(tmp_path))
    assert code == 0, err
    folder = tmp_path / "pod-berlin_2026-11-25_early"
    assert f"OEE {100 * (rep.oee.oee or 0):.1f} %" in out
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert html.count("<svg") == 3  # Pareto, waterfall, alarm rate: static images in the page
    assert "Shift report: Berlin point-of-demand, early shift, 2026-11-25 06:00" in html
    with (folder / "pareto.csv").open(encoding="utf-8") as f:
        pareto = list(csv.DictReader(f))
    assert [r["reason"] for r in pareto] == [r.reason or "(needs a person)" for r in rep.pareto]
    with (folder / "summary.csv").open(encoding="utf-8") as f:
        summary = {r["figure"]: r["value"] for r in csv.DictReader(f)}
    assert summary["OEE"] == f"{100 * (rep.oee.oee or 0):.1f}"
    with (folder / "next_shift.csv").open(encoding="utf-8") as f:
        nxt = {r["figure"]: r["value"] for r in csv.DictReader(f)}
    # the next shift is Berlin's late one; its P10 <= P50 <= P90 units, over the default 20 replications
    assert (nxt["shift"], nxt["start"], nxt["replications"]) == ("late", "2026-11-25T13:00:00+00:00", "20")
    assert float(nxt["units P10"]) <= float(nxt["units P50"]) <= float(nxt["units P90"])
    assert "The next shift, as the twin projects it" in html
    pdf = folder / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftoppm"):  # the PDF renders: page 1 to PNG, as a person would look at it
        subprocess.run(["pdftoppm", "-r", "30", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
                       check=True, timeout=60)
        assert (tmp_path / "page-1.png").stat().st_size > 1000


def test_no_pdf_and_bad_shift(history: History, tmp_path: Path) -> None:
    code, _, err = _twin("report", str(history.config), "--site", "pod-berlin", "--shift", "2026-11-25T05:00Z",
                         "--out", str(tmp_path), "--no-pdf")
    assert code == 0, err
    assert not (tmp_path / "pod-berlin_2026-11-25_early" / "report.pdf").exists()
    code, _, err = _twin("report", str(history.config), "--site", "pod-berlin", "--shift", "2026-11-25T06:00Z",
                         "--out", str(tmp_path))
    assert code == 2
    assert ("no shift of site 'pod-berlin' starts at 2026-11-25T06:00:00+00:00 (shifts starting within 12 h of it: "
            "early 2026-11-25T05:00:00+00:00, late 2026-11-25T13:00:00+00:00)") in err
    code, _, err = _twin("report", str(history.config), "--site", "nowhere", "--shift", "last")
    assert code == 2 and "no site 'nowhere'" in err


def test_projection_of_the_next_shift_is_reproducible(history: History, store: SqliteHistorian) -> None:
    from app.report import project_next

    fleet = load(history.config).fleet
    window = shift_window(fleet.site("pod-berlin"), START.isoformat(), END)
    a = project_next(store, fleet, "pod-berlin", window, replications=10, seed=3)
    b = project_next(store, fleet, "pod-berlin", window, replications=10, seed=3)
    assert a is not None and a == b  # the same history and seed: the same projection
    # the late shift's plan: half of Berlin's 133 units a day
    assert a.plan == pytest.approx(fleet.site("pod-berlin").daily_plan_units / 2)
    assert a.units_p10 <= a.units_p50 <= a.units_p90


def test_last_shift(history: History) -> None:
    site = load(history.config).fleet.site("pod-berlin")
    # at 15:00 Berlin on the Wednesday the early shift has ended, the late one (14:00-22:00) has not
    w = shift_window(site, "last", datetime(2026, 11, 25, 14, 0, tzinfo=UTC))
    assert (w.name, w.start, w.end) == ("early", START, START + timedelta(hours=8))


def test_rendered_tables_carry_the_hand_worked_numbers() -> None:
    # the hand-worked early shift of tests/twin/test_downtime_report.py, rendered
    from app.report_render import render_html, tables
    from tests.twin.test_downtime_report import _inputs
    from twin.shift import build_report

    rep = build_report(_inputs())
    t = tables(rep)
    # 45 + 30 + 30 + 20 = 125 lost minutes: shares 36, 24, 24, 16 %
    assert t["pareto"][1:] == [
        ["nozzle_jam", "45.0", 1, "36.0", "36.0"], ["changeover", "30.0", 1, "24.0", "60.0"],
        ["scheduled_break", "30.0", 1, "24.0", "84.0"], ["breakdown", "20.0", 1, "16.0", "100.0"]]
    assert t["waterfall"][1] == ["planned time", "", "960.0", "100.0"]
    assert t["orders"][1:] == [["o1", "bracket", 4, "2026-01-05 09:00", "2026-01-05 10:00", "60.0", "shipped late"],
                               ["o2", "bracket", 4, "2026-01-05 12:00", "2026-01-05 11:00", "0.0", "shipped"],
                               ["o4", "bracket", 2, "2026-01-05 13:00", "", "60.0", "open, past due"]]
    html = render_html(rep)
    assert html.count("<svg") == 3 and "nozzle_jam" in html
    assert "No projection" in html  # build_report alone does not run the twin
