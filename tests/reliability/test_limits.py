"""Request limits (``twin.limits``): each one refused with a clear error where requests enter.

Monte Carlo (replications, horizon), the scenario parser (interventions, machines, demand factor,
durations, (s, Q) orders per review, non-finite numbers) and the historians' ``series`` when opened
with ``limits=`` (keys per request, points per series, range). Nothing is clamped silently: every
refusal names the limit, the value asked for and the maximum.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.historians import open_historian
from connectors.influx.historian import InfluxHistorian
from connectors.store import SqliteHistorian
from tests.twin.sim.helpers import tiny_fleet
from twin import limits
from twin.errors import ConfigError, HistorianError, SimulationError
from twin.historian import SeriesKey
from twin.limits import DEFAULT_LIMITS, Limits, check_series_request
from twin.readings import Reading
from twin.sim import montecarlo
from twin.sim.model import MachineData, ModelData, ProductData
from twin.sim.scenario import loads_scenario
from twin.spec import FleetSpec

T0 = datetime(2026, 1, 5, tzinfo=UTC)
DAY = 86_400.0
EMPTY = FleetSpec(id="f", name="F", sites=(), templates=())


def test_the_limits_are_the_documented_constants() -> None:
    assert (limits.MAX_REPLICATIONS, limits.MAX_HORIZON_S, limits.MAX_SERIES_RANGE_S) == (1000, 90 * DAY, 400 * DAY)
    assert (limits.MAX_POINTS_PER_SERIES, limits.MAX_SERIES_PER_REQUEST) == (10_000, 50)
    assert Limits() == DEFAULT_LIMITS
    assert DEFAULT_LIMITS.max_replications == limits.MAX_REPLICATIONS


# ----------------------------------------------------------------------------------------- Monte Carlo

def _model(horizon_s: float) -> ModelData:
    return ModelData(horizon_s=horizon_s, sites=("s",), products=(ProductData(id="p", routing=("pack",)),),
                     machines=(MachineData(id="m", site="s", role="pack", cycle_mean_s=60.0),))


def test_monte_carlo_refuses_too_many_replications_before_any_work() -> None:
    with pytest.raises(SimulationError, match=r"^replications: at most 1000 per request \(got 1001\)$"):
        montecarlo.run(_model(3600.0), replications=1001, seed=1)
    with pytest.raises(SimulationError, match=r"replications: must be >= 1 \(got 0\)"):
        montecarlo.run(_model(3600.0), replications=0, seed=1)
    # the check is eager: ``stream`` refuses at the call, not at the first chunk
    with pytest.raises(SimulationError, match="at most 1000"):
        montecarlo.stream(_model(3600.0), replications=5000, seed=1)
    montecarlo.stream(_model(3600.0), replications=1000, seed=1)  # at the limit: accepted (not iterated)


def test_monte_carlo_refuses_a_horizon_over_90_days() -> None:
    with pytest.raises(SimulationError, match=r"^horizon: at most 90 d per request \(got 91 d\)$"):
        montecarlo.run(_model(91 * DAY), replications=1, seed=1)
    with pytest.raises(SimulationError, match="horizon"):
        montecarlo.run(_model(3600.0), _model(100 * DAY), replications=1, seed=1)  # the scenario's too
    result = montecarlo.run(_model(3600.0), replications=2, seed=1)
    assert result.replications == 2
    # a server may set its own limits
    with pytest.raises(SimulationError, match="at most 2 per request"):
        montecarlo.run(_model(3600.0), replications=3, seed=1, limits=Limits(max_replications=2))


# ----------------------------------------------------------------------------------------- scenarios

FLEET = tiny_fleet()


@pytest.mark.parametrize(("text", "path", "words"), [
    ('[[machines_added]]\nsite = "s1"\ntemplate = "printer"\ncount = 51', "machines_added[0].count",
     "must be <= 50 (request limit) (got 51)"),
    ('[[machines_removed]]\nsite = "s1"\ntemplate = "printer"\ncount = 1000000', "machines_removed[0].count",
     "must be <= 50"),
    ('[[demand]]\nfactor = 101', "demand[0].factor", "must be <= 100 (request limit)"),
    ('[[machine_down]]\nmachine = "P1"\nstart_in_h = 1\nduration_h = 1e9', "machine_down[0].duration_h",
     "must be <= 87600 (request limit)"),
    ('[[machine_down]]\nmachine = "P1"\nstart_in_h = inf\nduration_h = 1', "machine_down[0].start_in_h", "finite"),
    ('[[cycle_time]]\nfactor = nan', "cycle_time[0].factor", "finite"),
    ('[[shipment_delay]]\nsku = "SUB"\ndelay_d = 1e300', "shipment_delay[0].delay_d", "request limit"),
    ('[[lead_time]]\nsku = "SUB"\nlead_time_d = 40000', "lead_time[0].lead_time_d", "request limit"),
    ('[[overflow]]\nfrom = "a"\nto = "b"\ntransfer_h = 1e12\nthreshold = 1', "overflow[0].transfer_h",
     "request limit"),
    # (s, Q): a review orders Q until the position passes s; s/Q = 1e9 orders would hang the model
    ('[[reorder_policy]]\nsku = "FIL"\nreorder_point = 1e9\nreorder_qty = 1', "reorder_policy[0].reorder_qty",
     "1000 orders per review"),
    ('[[reorder_policy]]\nsku = "FIL"\nreorder_point = 1e300\nreorder_qty = 1e290', "reorder_policy[0].reorder_point",
     "out of range"),
])
def test_scenario_limits_name_the_path(text: str, path: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        loads_scenario(text, "big.toml", FLEET if "overflow" not in text else None)
    lines = str(info.value).splitlines()
    assert any(line.startswith(f"big.toml: {path}: ") and words in line for line in lines), lines


def test_too_many_interventions() -> None:
    one = '[[cycle_time]]\nrole = "print"\nfactor = 1.1\n'
    assert len(loads_scenario(one * 100, "ok.toml").interventions) == 100
    with pytest.raises(ConfigError, match=r"big.toml: \(top level\): at most 100 interventions per scenario "
                                          r"\(request limit\) \(got 101\)"):
        loads_scenario(one * 101, "big.toml")
    # the reorder limit still lets a sane policy through: s/Q = 1000 exactly
    ok = loads_scenario('[[reorder_policy]]\nsku = "FIL"\nreorder_point = 1000\nreorder_qty = 1', "ok.toml", FLEET)
    assert ok.interventions[0].reorder_point == 1000.0  # type: ignore[union-attr]


# ----------------------------------------------------------------------------------------- series

KEY = SeriesKey(site="s1", asset="P1", signal="temp_c")


@pytest.fixture
def limited(tmp_path: Path) -> SqliteHistorian:
    w = SqliteHistorian(tmp_path / "h.sqlite", EMPTY)
    w.write([Reading(ts=T0 + timedelta(seconds=i), site="s1", asset="P1", signal="temp_c", value=float(i))
             for i in range(100)])
    w.close()
    return SqliteHistorian(tmp_path / "h.sqlite", EMPTY, readonly=True, limits=DEFAULT_LIMITS)


def test_series_limits_on_the_sqlite_historian(limited: SqliteHistorian) -> None:
    try:
        t1 = T0 + timedelta(seconds=99)
        (res,) = limited.series([KEY], T0, t1, 10_000)  # at the limits: served
        assert len(res.points) == 100
        assert len(limited.series([KEY] * 50, T0, T0 + timedelta(days=400), 100)) == 50
        with pytest.raises(HistorianError, match=r"max_points at most 10000 per series \(got 10001\)"):
            limited.series([KEY], T0, t1, 10_001)
        with pytest.raises(HistorianError, match=r"at most 50 series per request \(got 51\)"):
            limited.series([KEY] * 51, T0, t1, 100)
        with pytest.raises(HistorianError, match=r"range at most 400 d \(got 401 d, 2026-01-05"):
            limited.series([KEY], T0, T0 + timedelta(days=401), 100)
    finally:
        limited.close()


def test_without_limits_internal_readers_are_unbounded(tmp_path: Path) -> None:
    # calibration and export ask for raw points (10,000,000) of every signal: no limits unless asked
    h = SqliteHistorian(tmp_path / "h.sqlite", EMPTY)
    try:
        h.write([Reading(ts=T0, site="s1", asset="P1", signal="temp_c", value=1.0)])
        assert h.limits is None
        (res,) = h.series([KEY], T0, T0 + timedelta(days=3650), 10_000_000)
        assert [p.value for p in res.points] == [1.0]
    finally:
        h.close()


def test_open_reader_passes_the_limits(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    SqliteHistorian(path, EMPTY).close()
    cfg = SimpleNamespace(kind="sqlite", path=str(path), rollup_interval_s=60)
    h = open_historian(cfg, EMPTY, "read", limits=DEFAULT_LIMITS)
    try:
        with pytest.raises(HistorianError, match="max_points at most 10000"):
            h.series([KEY], T0, T0 + timedelta(hours=1), 20_000)
    finally:
        h.close()


def test_series_limits_on_the_influx_historian_refuse_before_any_query(port: int) -> None:
    # nothing listens on ``port``: the limit error proves the request never left the process
    h = InfluxHistorian(f"http://127.0.0.1:{port}", "org", "plant", "t", EMPTY, timeout_s=1, limits=DEFAULT_LIMITS)
    try:
        with pytest.raises(HistorianError, match=r"range at most 400 d \(got 1000 d"):
            h.series([KEY], T0, T0 + timedelta(days=1000), 100)
        with pytest.raises(HistorianError, match=r"at most 50 series per request \(got 60\)"):
            h.series([KEY] * 60, T0, T0 + timedelta(days=1), 100)
        with pytest.raises(HistorianError, match=r"query to .* failed"):  # within limits: it does ask
            h.series([KEY], T0, T0 + timedelta(days=1), 100)
    finally:
        h.close()


def test_check_series_request_directly() -> None:
    check_series_request(50, T0, T0 + timedelta(days=400), 10_000)  # every limit exactly: fine
    with pytest.raises(HistorianError, match="max_points must be at least 1"):
        check_series_request(1, T0, T0, 0)


def test_docstring_examples_of_the_limits_module() -> None:
    import doctest

    result = doctest.testmod(limits, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0
