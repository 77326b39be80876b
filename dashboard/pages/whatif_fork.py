"""The what-if fork's time and place: typed in the site's zone (24 h ISO), shown, checked against the history.

The form's "Fork at" field is text in the site's local time ("2026-11-29 14:30", or ISO with a T);
a scenario document and the URL (``?at=``) carry the same instant in UTC to the minute (``FORK_FMT``).
"""

from __future__ import annotations

import re
from typing import Any

from dashboard import theme, timefmt
from dashboard.queries import QueryService
from twin.errors import Problem
from twin.spec import FleetSpec

__all__ = ["FORK_FMT", "fork_at", "fork_field", "fork_note", "fork_problems", "zone_of"]

FORK_FMT = "%Y-%m-%dT%H:%M"  # the fork time in a scenario document and the URL: UTC, to the minute
TYPED = re.compile(r"\s*\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?\s*")  # what the field accepts (24 h ISO)


def fork_at(text: str | None, tz: str | None) -> str | None:
    """The fork time typed in the site's zone ``tz`` as the scenario's UTC time (``FORK_FMT``); None when empty.

    Accepts "2026-11-29 14:30" and ISO with a T ("2026-11-29T14:30", seconds allowed); anything else is a
    ``ValueError`` saying what was expected.

    >>> fork_at("2026-11-29 14:30", "Europe/Paris"), fork_at("2026-11-29T14:30", "UTC"), fork_at(" ", None)
    ('2026-11-29T13:30', '2026-11-29T14:30', None)
    """
    if text is None or not text.strip():
        return None
    t = timefmt.parse_input(text, tz) if TYPED.fullmatch(text) else None
    if t is None:
        raise ValueError(f"Fork at: expected a 24 h time like 2026-11-29 14:30 (or 2026-11-29T14:30), got {text!r}")
    return t.strftime(FORK_FMT)


def fork_field(at: str | None, tz: str | None) -> str:
    """A scenario's (or the URL's) UTC fork time as the field shows it: 24 h, in the site's zone ("" if none)."""
    t = timefmt.parse_url_time(at) if at else None
    return timefmt.fmt_input(t, tz) if t is not None else (at or "")


def zone_of(fleet: FleetSpec, site: str | None) -> str:
    """The zone of ``site`` (the fork time is typed and shown in it); UTC for none or an unknown one."""
    spec = next((s for s in fleet.sites if s.id == site), None)
    return spec.timezone if spec is not None else timefmt.FLEET_ZONE


def fork_problems(queries: QueryService, site: str, at: Any) -> list[Problem]:
    """A fork time after now or before the site's recorded history is refused, naming the history's range.

    Empty ``at`` forks from the live state (now). A fork needs a recorded state: one before the
    history would run from the configured initial state, one in the future from a state nobody has.
    """
    t = timefmt.parse_input(at, None) if at not in (None, "") else None
    if t is None:
        return []
    now = queries.now()
    start = queries.history_start(site)
    span = (f"the recorded history of {site} runs from {theme.fmt_ts(start)} to now ({theme.fmt_ts(now)})"
            if start is not None else f"{site} has no recorded history yet: fork from now (empty time)")
    if t > now:
        return [Problem(path="at", message=f"is in the future; {span}", got=at)]
    if start is None or t < start:
        return [Problem(path="at", message=f"is before the recorded history; {span}", got=at)]
    return []


def fork_note(queries: QueryService, site: str | None, at: str | None) -> str:
    """The line under the page title saying where the fork starts (in the site's time) and the site's history."""
    t = timefmt.parse_url_time(at) if at else None
    tz = zone_of(queries.fleet, site)
    note = (f"forked from the recorded state at {timefmt.fmt_datetime(t, tz)} ({timefmt.fmt_utc(t)})" if t
            else "forked from the live state (now)")
    start = queries.history_start(site) if site else None
    if start is not None:
        note += f" · history of {site} from {theme.fmt_ts(start)} to now"
    return note
