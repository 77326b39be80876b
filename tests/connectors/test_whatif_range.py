"""``twin whatif --at`` refuses a fork from the future or from before the recorded history, naming the range."""

from __future__ import annotations

import contextlib
import io
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tomli_w

from app import main
from connectors.config import load
from connectors.emulator.backfill import backfill
from connectors.store import SqliteHistorian

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "examples" / "scenarios" / "printer_maintenance.toml"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, datetime]:
    tmp = tmp_path_factory.mktemp("whatif-range")
    raw = tomllib.loads((ROOT / "examples" / "fleet.toml").read_text(encoding="utf-8"))
    raw["historian"]["path"] = str(tmp / "history.db")
    raw.pop("feeds", None)
    path = tmp / "plant.toml"
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    fleet = load(path).fleet
    start = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)
    store = SqliteHistorian(tmp / "history.db", fleet)
    backfill(fleet, store, start=start, end=start + timedelta(hours=2), step_s=300.0, seed=3)
    store.close()
    return path, start


def _whatif(path: Path, at: datetime) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["whatif", str(path), "--scenario", str(SCENARIO), "--at", at.isoformat(), "--horizon", "2h",
                     "--replications", "4", "--workers", "0", "--no-progress", "--calibrate-days", "0"])
    return code, err.getvalue()


def test_a_fork_before_the_history_is_refused_with_its_range(config: tuple[Path, datetime]) -> None:
    path, start = config
    code, err = _whatif(path, start - timedelta(days=1))
    assert code == 2
    # every site's history starts at the backfill's first sample, found to the minute
    assert f"pod-berlin from {start.isoformat(timespec='minutes')}" in err and "is before the recorded history" in err


def test_a_fork_from_the_future_is_refused(config: tuple[Path, datetime]) -> None:
    path, _ = config
    code, err = _whatif(path, datetime.now(UTC) + timedelta(days=2))
    assert code == 2 and "is in the future" in err


def test_a_fork_inside_the_history_runs(config: tuple[Path, datetime]) -> None:
    path, start = config
    code, err = _whatif(path, start + timedelta(hours=1))
    assert code == 0, err
