"""Background callbacks run in threads of the dashboard's process, not in forked processes.

Dash's ``DiskcacheManager`` forks a process per background job. The dashboard's process has
threads of its own (the query refresher, the attention and health services, request threads) that
read SQLite, and SQLite's mutexes are not fork-safe: a fork taken while another thread is inside
SQLite leaves that mutex locked forever in the child, whose first ``sqlite3.connect`` then hangs
(seen: a what-if stuck in ``SqliteHistorian.__init__``, its panel on "Running…" for good).
:class:`ThreadJobManager` keeps diskcache as the place results and progress go (Dash polls it as
before) but runs each job in a daemon thread. The heavy part of a what-if, its replications, still
runs in the engine's own worker processes (``connectors.executors``), which never touch SQLite.

A thread cannot be killed, so cancelling is cooperative: ``terminate_job`` sets the job's flag, and
the job's next progress report ends it (:class:`Cancelled`, turned into "no update"), before it
writes any further progress or its result.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable
from typing import Any

import dash
from dash.exceptions import PreventUpdate

__all__ = ["Cancelled", "ThreadJobManager"]

_JOB_BASE = 1 << 40  # job handles: well above any process id, so no handle is mistaken for one


class Cancelled(PreventUpdate):
    """The job was cancelled: it ends at its next progress report and writes nothing more."""


class ThreadJobManager(dash.DiskcacheManager):
    """A ``DiskcacheManager`` whose jobs are threads: results and progress in diskcache, no fork."""

    def __init__(self, cache: Any, **kwargs: Any) -> None:
        # before the base class: its __init__ already makes the job functions of registered callbacks
        self._lock = threading.Lock()
        self._jobs: dict[int, tuple[threading.Thread, threading.Event]] = {}
        self._ids = itertools.count(_JOB_BASE + 1)
        self._local = threading.local()
        super().__init__(cache, **kwargs)  # type: ignore[no-untyped-call]

    def make_job_fn(self, fn: Callable[..., Any], progress: Any, key: Any = None) -> Any:
        if not progress:
            return super().make_job_fn(fn, progress, key)  # type: ignore[no-untyped-call]
        local = self._local

        @functools.wraps(fn)
        def checked(set_progress: Callable[[Any], None], *args: Any, **kwargs: Any) -> Any:
            def report(value: Any) -> None:
                flag = getattr(local, "cancel", None)
                if flag is not None and flag.is_set():
                    raise Cancelled()  # type: ignore[no-untyped-call]
                set_progress(value)

            result = fn(report, *args, **kwargs)
            flag = getattr(local, "cancel", None)
            if flag is not None and flag.is_set():
                raise Cancelled()  # type: ignore[no-untyped-call]
            return result

        return super().make_job_fn(checked, progress, key)  # type: ignore[no-untyped-call]

    def call_job_fn(self, key: Any, job_fn: Callable[..., None], args: Any, context: Any) -> int:
        job = next(self._ids)
        cancel = threading.Event()
        local = self._local

        def target() -> None:
            local.cancel = cancel
            try:
                job_fn(key, self._make_progress_key(key), args, context)  # type: ignore[no-untyped-call]
            finally:
                with self._lock:
                    self._jobs.pop(job, None)

        thread = threading.Thread(target=target, name=f"dashboard-job-{job - _JOB_BASE}", daemon=True)
        with self._lock:
            self._jobs[job] = (thread, cancel)
        thread.start()
        return job

    def job_running(self, job: Any) -> bool:
        with self._lock:
            entry = self._jobs.get(int(job)) if job else None
        return entry is not None and entry[0].is_alive() and not entry[1].is_set()

    def terminate_job(self, job: Any) -> None:
        if job is None:
            return
        with self._lock:
            entry = self._jobs.get(int(job))
        if entry is not None:
            entry[1].set()

    def terminate_unhealthy_job(self, job: Any) -> bool:
        if job and not self.job_running(job):
            self.terminate_job(job)
            return True
        return False
