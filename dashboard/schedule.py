"""The dashboard services' schedule: a daemon thread's loop that calls a job on a weakly held service.

The attention and health services each run their work on their own threads, never in a browser
callback. :func:`every` is that loop, written once: it waits ``first_s``, then calls ``job(service)``
every ``every_s`` until ``stop`` is set or nothing refers to the service any more (the thread holds
it weakly, so an app dropped by its owner, as a test's, ends its threads). A failing job keeps the
schedule and is logged once until its message changes; the service's page says what failed.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import TypeVar

__all__ = ["every"]

log = logging.getLogger(__name__)

S = TypeVar("S")


def every(ref: weakref.ref[S], stop: threading.Event, first_s: float, every_s: float,
          job: Callable[[S], object], failed: str) -> None:
    """Call ``job(service)`` ``first_s`` after the start and then every ``every_s`` until ``stop`` is set."""
    wait = first_s
    last_error = ""
    while not stop.wait(wait):
        service = ref()
        if service is None:
            return
        try:
            job(service)
            last_error = ""
        except Exception as exc:  # keep the schedule; the page says the last run failed
            if str(exc) != last_error:
                log.exception(failed)
            last_error = str(exc)
        del service
        wait = every_s
