"""``[reports] on_shift_end``: the collector's source writes each shift's report once it has ended, and the
section's errors are named by path. Twelve hours of EMULATED history (``twin backfill``, every 60 s,
02:00-14:00 UTC) around the end of Berlin's early shift (06:00-14:00 Europe/Berlin = 05:00-13:00 UTC,
Wednesday 2026-11-25)."""

from __future__ import annotations

import asyncio
import csv
import io
import tomllib
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tomli_w

from app import main
from app.historians import open_historian
from app.report_schedule import ShiftEndReports
from connectors.config import load, load_text
from tests.conftest import EXAMPLES
from twin.errors import ConfigError

END = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
SHIFT_END = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)  # Berlin's early shift ends


def _config(folder: Path, reports: dict[str, object]) -> Path:
    raw = tomllib.loads((EXAMPLES / "fleet.toml").read_text(encoding="utf-8"))
    raw["historian"]["path"] = str(folder / "history.db")
    raw.pop("feeds", None)
    raw["reports"] = reports
    path = folder / "fleet.toml"
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("schedule")
    path = _config(folder, {"dir": "out", "on_shift_end": True, "pdf": False, "sites": ["pod-berlin"],
                            "delay_s": 60})
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["backfill", str(path), "--days", "0.5", "--seed", "7", "--end", END.isoformat(), "--step", "60"])
    assert code == 0, err.getvalue()
    return path


def test_the_section_is_read_and_its_errors_are_named_by_path(config: Path, tmp_path: Path) -> None:
    cfg = load(config)
    assert cfg.reports is not None
    assert (cfg.reports.dir, cfg.reports.on_shift_end, cfg.reports.pdf, cfg.reports.sites, cfg.reports.delay_s) == (
        config.parent / "out", True, False, ("pod-berlin",), 60.0)
    text = config.read_text(encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a folder", encoding="utf-8")
    bad = text.replace('dir = "out"', f'dir = "{tmp_path / "notes.txt"}"').replace(
        'sites = [\n    "pod-berlin",\n]', 'sites = ["pod-mars", "pod-berlin", "pod-berlin"]')
    with pytest.raises(ConfigError) as caught:
        load_text(bad.replace("delay_s = 60", "delay_s = 7200"), source=tmp_path / "plant.toml")
    assert "reports.delay_s" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_text(bad, source=tmp_path / "plant.toml")
    lines = str(caught.value).splitlines()
    assert f"{tmp_path / 'plant.toml'}: reports.dir: is a file, not a folder (got '{tmp_path / 'notes.txt'}')" in lines
    assert f"{tmp_path / 'plant.toml'}: reports.sites[0]: no site with this id (got 'pod-mars')" in lines
    assert f"{tmp_path / 'plant.toml'}: reports.sites[2]: listed twice (got 'pod-berlin')" in lines
    assert load_text(text.replace("[reports]", "[reports_off]").split("[reports_off]")[0]).reports is None


def test_each_shift_is_written_once_after_its_end(config: Path) -> None:
    cfg = load(config)
    assert cfg.reports is not None
    # the collector started at 12:00; at 13:00:59 the early shift has ended but its 60 s are not over
    times = iter([SHIFT_END - timedelta(hours=1), SHIFT_END + timedelta(seconds=59)])
    now = {"t": SHIFT_END + timedelta(seconds=59)}

    def clock() -> datetime:
        return next(times, now["t"])

    writer = ShiftEndReports(cfg.reports, cfg.fleet, lambda: open_historian(cfg.historian, cfg.fleet, "read"),
                             clock=clock)
    assert writer.next_due(SHIFT_END) == SHIFT_END + timedelta(seconds=60)

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(writer.run(stop))
        await asyncio.sleep(0)
        now["t"] = SHIFT_END + timedelta(seconds=60)  # the loop wakes at the due time (1 s) and writes
        for _ in range(600):
            if writer.written or writer.failures:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 30)

    asyncio.run(run())
    folder = cfg.reports.dir / "pod-berlin_2026-11-25_early"
    assert writer.written == [folder] and writer.failures == 0
    assert sorted(p.name for p in folder.iterdir())[:3] == ["alarm_bad_actors.csv", "alarm_journal.csv",
                                                            "alarm_rate.csv"]
    assert not (folder / "report.pdf").exists()  # pdf = false
    rows = csv.reader(io.StringIO((folder / "summary.csv").read_text(encoding="utf-8")))
    summary = {row[0]: row[1] for row in rows}
    # 06:00-14:00 local: 480 planned minutes; the shift as the report names it
    assert (summary["shift"], summary["planned time"], summary["start"]) == (
        "early", "480.0", "2026-11-25T05:00:00+00:00")
    assert writer.write_due(SHIFT_END + timedelta(hours=1)) == []  # written once
