"""Background jobs run in threads of the dashboard's process (``dashboard.jobs``), with cooperative cancel.

Why: a fork of the threaded dashboard process can inherit an SQLite mutex held by another thread,
and the forked job then hangs at its first ``sqlite3.connect``. A thread has no such hazard.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import diskcache

from dashboard.jobs import ThreadJobManager


def _wait(cond: Any, limit_s: float = 10.0) -> bool:
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_a_job_runs_in_this_process_and_stores_its_result(tmp_path: Path) -> None:
    manager = ThreadJobManager(diskcache.Cache(str(tmp_path)))
    seen: dict[str, Any] = {}

    def fn(set_progress: Any, x: int) -> int:
        seen["pid"] = os.getpid()
        set_progress([1, 2])
        return x * 2

    job_fn = manager.make_job_fn(fn, progress=True)
    job = manager.call_job_fn("k1", job_fn, [21], {})
    assert _wait(lambda: manager.result_ready("k1"))
    assert manager.get_result("k1", job) == 42  # 21 x 2, written to diskcache as Dash reads it
    assert seen["pid"] == os.getpid()  # no fork: the job ran in a thread of this process
    assert not manager.job_running(job)


def test_cancel_ends_the_job_at_its_next_progress_report_and_nothing_more_is_written(tmp_path: Path) -> None:
    manager = ThreadJobManager(diskcache.Cache(str(tmp_path)))
    started, go_on = threading.Event(), threading.Event()
    reports: list[int] = []

    def fn(set_progress: Any, n: int) -> str:
        for i in range(n):
            if i == 1:
                started.set()
                go_on.wait(10)
            set_progress([i])
            reports.append(i)
        return "finished"

    job = manager.call_job_fn("k2", manager.make_job_fn(fn, progress=True), [5], {})
    assert started.wait(10) and manager.job_running(job)
    manager.terminate_job(job)  # what Dash calls on Cancel
    assert not manager.job_running(job)  # Dash reads this as "cancelled": no output
    go_on.set()
    assert _wait(lambda: manager.result_ready("k2"))
    # report 0 went through; the report of step 1 came after the cancel and ended the job: no result
    assert reports == [0]
    assert manager.handle.get("k2") == {"_dash_no_update": "_dash_no_update"}
