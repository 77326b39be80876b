"""Degradation in the emulated plant: hidden wear grows, resets, raises the hazard and shows in the signals.

Every test runs the example fleet's Berlin mill CNC1 (cnc-mill: MTBF 300 h, a 720 s unit cycle,
vibration, spindle temperature and power signals) flat out around the clock (``demand_driven=False``,
``follow_shifts=False``), so that operating hours and load (1, a unit machine) are known.
"""

from __future__ import annotations

import dataclasses
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.config import load
from connectors.emulator.plant import Plant
from connectors.emulator.truth import Truth, parse_truth
from twin.errors import ConfigError
from twin.spec import FleetSpec, MachineStatus

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 1, 5, tzinfo=UTC)
SITE, CNC = "pod-berlin", "CNC1"


@pytest.fixture(scope="module")
def mill() -> FleetSpec:
    """The example fleet cut down to Berlin's mill and one printer (the mill alone keeps the tests fast)."""
    fleet = load(ROOT / "examples" / "fleet.toml").fleet
    site = fleet.site(SITE)
    keep = tuple(m for m in site.machines if str(m.id) in (CNC, "P1"))
    return dataclasses.replace(fleet, sites=(dataclasses.replace(site, machines=keep),))


def _truth(fleet: FleetSpec, **figures: float) -> Truth:
    body = "\n".join(f"{k} = {v}" for k, v in figures.items())
    return parse_truth(f'[[degradation]]\ntemplate = "cnc-mill"\n{body}\n', fleet)


def _plant(fleet: FleetSpec, truth: Truth | None, seed: int = 3) -> Plant:
    return Plant(fleet, seed=seed, start=T0, truth=truth, demand_driven=False, follow_shifts=False)


def test_wear_grows_with_operating_hours(mill: FleetSpec) -> None:
    # no maintenance for 10^6 h and repairs that keep the wear: wear = start + 0.01 per operating hour
    truth = _truth(mill, wear_per_h=0.01, hazard_k=0, maintenance_every_h=1e6, repair_reset=0.0)
    plant = _plant(mill, truth)
    w0 = plant.wear(SITE, CNC)
    plant.advance(T0 + timedelta(hours=300))
    run_h = plant.stats(SITE, CNC).run_s / 3600.0
    assert 250 < run_h <= 300  # flat out, minus repairs (MTBF 300 h, MTTR 0.5 h)
    assert plant.wear(SITE, CNC) == pytest.approx(w0 + 0.01 * run_h, rel=1e-9)


def test_maintenance_and_repairs_reset_the_wear(mill: FleetSpec) -> None:
    # maintenance every 50 operating hours removes half of the wear; a repair removes all of it
    truth = _truth(mill, wear_per_h=0.02, hazard_k=5, maintenance_every_h=50, maintenance_reset=0.5,
                   repair_reset=1.0)
    plant = _plant(mill, truth)
    before_maint, after_maint, after_repair = [], [], []
    prev_status, prev_wear = plant.status(SITE, CNC), plant.wear(SITE, CNC)
    for minute in range(1, 600 * 60, 5):
        plant.advance(T0 + timedelta(minutes=minute))
        status, wear = plant.status(SITE, CNC), plant.wear(SITE, CNC)
        if status is MachineStatus.MAINTENANCE and prev_status is not MachineStatus.MAINTENANCE:
            before_maint.append(prev_wear)
            after_maint.append(wear)
        if prev_status is MachineStatus.FAULT and status is not MachineStatus.FAULT:
            after_repair.append(wear)
        prev_status, prev_wear = status, wear
    # 600 h at ~0.97 availability: ~11 maintenance stops; wear sampled 5 min before a stop grew by at
    # most 0.02 x 5/60 since, so half of it is within 0.001 of the value after the stop
    assert len(before_maint) >= 9
    for b, a in zip(before_maint, after_maint, strict=True):
        assert a == pytest.approx(b / 2, abs=0.001)
    assert after_repair and all(w < 0.02 * 5 / 60 + 1e-9 for w in after_repair)  # back to ~0 (it ran <= 5 min)
    # 50 h x 0.02 = 1 gained per interval and half removed at a stop: before stops w' = w / 2 + 1,
    # which settles at w = 2 (from below: it starts under 1), unless a repair cuts it short
    assert max(before_maint) < 2.0 + 0.02 * 0.25


def test_wear_raises_the_failure_rate_as_worked_out_by_hand(mill: FleetSpec) -> None:
    # Full maintenance every M = 100 operating hours, repairs keep the wear: wear is the saw-tooth
    # w(u) = r u with r = 0.01 / h, whatever the failures. Failures expected in one interval:
    #   int_0^M (1 + k (r u)^2) / MTBF du = (M + k r^2 M^3 / 3) / MTBF = (100 + 20e-4 x 1e6 / 3) / 300
    #   = 766.7 / 300 = 2.556 per 100 h, i.e. 25.6 per 1000 operating hours,
    # against 1000 / 300 = 3.33 without wear. 20,000 h give ~500 failures: relative standard error
    # 1 / sqrt(500) = 4.5 %; the 12 % tolerance is ~2.7 sigma (the seed is fixed: deterministic).
    truth = _truth(mill, wear_per_h=0.01, hazard_k=20, hazard_shape=2, maintenance_every_h=100,
                   maintenance_reset=1.0, repair_reset=0.0)
    end = T0 + timedelta(hours=20000)
    rates = []
    for t in (None, truth):
        plant = _plant(mill, t)
        plant.advance(end)
        st = plant.stats(SITE, CNC)
        rates.append(st.failures / (st.run_s / 3.6e6))
    without, with_wear = rates
    assert without == pytest.approx(1000 / 300, rel=0.3)  # ~60 failures: sd 13 %
    assert with_wear == pytest.approx(25.6, rel=0.12)


def test_condition_signals_rise_with_wear(mill: FleetSpec) -> None:
    # while running: vibration 2.5 + N(0, 0.3) + 1.5 x wear; power 7.5 kW x U(0.9, 1.1) x (1 + 0.2 x wear);
    # spindle temperature (38 degC hot) + N(0, 0.3) + 4 x wear: the least-squares slope of each
    # signal on the wear must be the truth file's figure (wear spans ~0..1.2 over 120 h intervals)
    truth = _truth(mill, wear_per_h=0.01, hazard_k=0, maintenance_every_h=120, vibration_per_wear=1.5,
                   temperature_per_wear=4, power_per_wear=0.2)
    plant = _plant(mill, truth)
    wear, vib, power, temp = [], [], [], []
    for minute in range(10, 1000 * 60, 20):
        values = plant.advance(T0 + timedelta(minutes=minute))
        if plant.status(SITE, CNC) is not MachineStatus.RUNNING or minute < 60:
            continue
        wear.append(plant.wear(SITE, CNC))
        vib.append(float(values[(SITE, CNC, "vibration_mm_s")] or 0))
        power.append(float(values[(SITE, CNC, "power_kw")] or 0))
        temp.append(float(values[(SITE, CNC, "spindle_temp_c")] or 0))
    assert len(wear) > 2000 and max(wear) > 1.0
    assert statistics.linear_regression(wear, vib).slope == pytest.approx(1.5, abs=0.1)
    assert statistics.linear_regression(wear, power).slope == pytest.approx(7.5 * 0.2, abs=0.15)
    assert statistics.linear_regression(wear, temp).slope == pytest.approx(4.0, abs=0.15)
    # the same plant without degradation: the signals know nothing of the (unseen) running hours
    plain = _plant(mill, None)
    vib0 = []
    for minute in range(10, 200 * 60, 20):
        values = plain.advance(T0 + timedelta(minutes=minute))
        if plain.status(SITE, CNC) is MachineStatus.RUNNING:
            vib0.append(float(values[(SITE, CNC, "vibration_mm_s")] or 0))
    assert statistics.fmean(vib0) == pytest.approx(2.5, abs=0.05)
    assert plain.wear(SITE, CNC) == 0.0 and plain.wear_state(SITE, CNC) is None


def test_off_by_default_and_per_template(mill: FleetSpec) -> None:
    # a template without an entry takes the old code path and random draws: the printer P1 of a plant
    # whose mills degrade does exactly what it does in a plant without degradation
    truth = _truth(mill, wear_per_h=0.05, hazard_k=50, vibration_per_wear=3)
    a, b = _plant(mill, truth), _plant(mill, Truth())
    end = T0 + timedelta(hours=2000)
    a.advance(end)
    b.advance(end)
    assert a.stats(SITE, "P1") == b.stats(SITE, "P1")
    assert a.stats(SITE, CNC).failures > 2 * b.stats(SITE, CNC).failures


def test_degradation_entries_are_checked(mill: FleetSpec) -> None:
    bad = """
[[degradation]]
template = "laser"
[[degradation]]
template = "cnc-mill"
wear_per_h = 0
maintenance_reset = 1.5
noise = 1
[[degradation]]
template = "cnc-mill"
"""
    with pytest.raises(ConfigError) as err:
        parse_truth(bad, mill, source="truth.toml")
    assert str(err.value).splitlines()[1:] == [
        "truth.toml: degradation[0].template: unknown template (got 'laser')",
        "truth.toml: degradation[1].noise: unknown key (got 1)",
        "truth.toml: degradation[1].wear_per_h: must be > 0 (got 0)",
        "truth.toml: degradation[1].maintenance_reset: must be >= 0 and <= 1 (got 1.5)",
        "truth.toml: degradation[2]: template 'cnc-mill' already set at degradation[1]",
    ]
