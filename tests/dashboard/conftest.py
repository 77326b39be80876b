"""Fixtures of the dashboard tests: the example fleet, a real SQLite historian filled with history,
query services at a fixed 'now', and a small deterministic what-if runner for the page logic."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.config import load
from connectors.store import SqliteHistorian
from dashboard.queries import QueryService
from dashboard.services import Services
from dashboard.whatif_view import Actual, FanBand, KpiDelta, OrderChance, WhatIfRequest, WhatIfResult
from twin.historian import WriterRecorder
from twin.spec import FleetSpec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import history  # noqa: E402  (tests/dashboard/history.py)

ROOT = HERE.parent.parent
NOW = datetime(2026, 1, 7, 12, 0, tzinfo=UTC)  # a Wednesday: every example site is in shift


@pytest.fixture(scope="session")
def fleet() -> FleetSpec:
    return load(ROOT / "examples" / "fleet.toml").fleet


@pytest.fixture(scope="session")
def store_path(tmp_path_factory: pytest.TempPathFactory, fleet: FleetSpec) -> Path:
    path = tmp_path_factory.mktemp("hist") / "twin.sqlite"
    h = SqliteHistorian(path, fleet)
    try:
        history.fill(h, fleet, NOW, hours=10.0, step_s=120.0)
    finally:
        h.close()
    return path


@pytest.fixture
def historian(store_path: Path, fleet: FleetSpec, tmp_path: Path) -> Iterator[SqliteHistorian]:
    # a private copy, so tests that acknowledge alarms do not leak into others
    copy = tmp_path / "twin.sqlite"
    copy.write_bytes(store_path.read_bytes())
    h = SqliteHistorian(copy, fleet)
    yield h
    h.close()


@pytest.fixture
def queries(historian: SqliteHistorian, fleet: FleetSpec) -> QueryService:
    return QueryService(fleet=fleet, historian=historian, clock=lambda: NOW, recorder=WriterRecorder(historian))


class FixedRunner:
    """A what-if runner with known numbers (the page logic is tested; the engine has its own tests)."""

    def run(self, request: WhatIfRequest, progress) -> WhatIfResult:  # type: ignore[no-untyped-def]
        at = request.at or NOW
        reps = request.replications
        for done in range(1, reps + 1):
            progress(done, reps)
        t = tuple(at + timedelta(hours=h) for h in range(0, int(request.horizon_h) + 1, 12))
        base = tuple(10.0 * (k + 1) for k in range(len(t)))
        scen = tuple(v * 0.9 for v in base)
        bands = (
            FanBand(kpi="units_done", unit="units", variant="baseline", t=t, p10=tuple(v * 0.8 for v in base), p50=base,
                 p90=tuple(v * 1.2 for v in base)),
            FanBand(kpi="units_done", unit="units", variant="scenario", t=t, p10=tuple(v * 0.8 for v in scen), p50=scen,
                 p90=tuple(v * 1.2 for v in scen)),
        )
        actual = Actual(kpi="units_done", unit="units", t=(at - timedelta(hours=24), at), values=(-5.0, 0.0))
        return WhatIfResult(
            name=str(request.scenario.get("name", "")), site=request.site, at=at, horizon_h=request.horizon_h,
            replications=reps, bands=bands, actuals=(actual,),
            deltas=(KpiDelta(kpi="on_time", unit="", baseline=0.9, scenario=0.8, delta=-0.1, ci_low=-0.15,
                             ci_high=-0.05),),
            orders=(OrderChance(order="O-1", due=at + timedelta(hours=30), p_baseline=0.9, p_scenario=0.6,
                                ci_low=0.5, ci_high=0.7),),
        )


@pytest.fixture
def services(queries: QueryService, tmp_path: Path) -> Services:
    return Services(queries=queries, whatif=FixedRunner(), cache_dir=tmp_path / "jobs")
